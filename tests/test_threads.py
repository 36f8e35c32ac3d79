"""The core releases the GIL and holds no shared state: concurrent calls are exact.

Monitors are shared behind a lock in the core; fits share nothing.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import ltrend


def test_concurrent_fits_equal_serial_fits() -> None:
    rng = np.random.default_rng(0)
    arrays = [
        np.concatenate([rng.normal(size=20_000 + 1000 * i), rng.normal(7, 2, 100)])
        for i in range(16)
    ]
    arrays += [a.astype(np.float32) for a in arrays[:4]]
    serial = [ltrend.fit(a) for a in arrays]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(ltrend.fit, arrays))
    for one, other in zip(serial, parallel, strict=True):
        assert one.threshold == other.threshold
        assert one.table == other.table
        np.testing.assert_array_equal(one.mask, other.mask)


def test_one_array_shared_by_many_threads() -> None:
    scores = np.random.default_rng(1).lognormal(size=100_000)
    expected = ltrend.fit(scores)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: ltrend.fit(scores), range(16)))
    assert all(r.threshold == expected.threshold for r in results)


# --- 8 threads sharing monitors while fitting -------------------------------------

N_THREADS = 8
N_MONITORS = 2
N_BATCHES = 25
BATCH = 200


def _thread_scores(thread: int) -> list[np.ndarray]:
    """One thread's batches: an L shape of distinct continuous values."""
    rng = np.random.default_rng(100 + thread)
    batches = []
    for _ in range(N_BATCHES):
        batch = rng.lognormal(size=BATCH)
        far = rng.random(BATCH) < 0.03
        batch[far] += rng.normal(12.0, 2.0, int(far.sum()))
        batches.append(batch)
    return batches


def test_eight_threads_sharing_monitors_and_fitting_equal_a_serial_run() -> None:
    """Two monitors, four threads each, each thread also fitting between batches.

    Afterwards the order in which the batches reached each monitor is read back
    from its window (large enough to keep every score), the batches are replayed
    serially in that order, and every mask, counter and byte of the state must
    be what the threads saw: nothing lost, duplicated, interleaved or torn.
    """
    per_monitor = N_THREADS // N_MONITORS * N_BATCHES * BATCH

    def new_monitor() -> ltrend.Monitor:
        return ltrend.Monitor(window=per_monitor, refit_every=1_500, min_scores=2_000)

    monitors = [new_monitor() for _ in range(N_MONITORS)]
    scores = [_thread_scores(t) for t in range(N_THREADS)]
    identity = {
        value: (thread, b)
        for thread, batches in enumerate(scores)
        for b, batch in enumerate(batches)
        for value in batch.tolist()
    }
    assert len(identity) == N_THREADS * N_BATCHES * BATCH, "precondition: distinct"
    rng = np.random.default_rng(99)
    fit_inputs = [rng.lognormal(size=50_000 + 5_000 * t) for t in range(N_THREADS)]
    serial_fits = [ltrend.fit(x) for x in fit_inputs]

    masks: dict[tuple[int, int], np.ndarray] = {}
    fits: dict[tuple[int, int], ltrend.Result] = {}
    snapshots: list[bytes] = []
    barrier = threading.Barrier(N_THREADS)

    def work(thread: int) -> None:
        monitor = monitors[thread % N_MONITORS]
        barrier.wait()
        for b, batch in enumerate(scores[thread]):
            masks[thread, b] = monitor.update_many(batch)
            if b % 5 == 0:
                fits[thread, b] = ltrend.fit(fit_inputs[(thread + b) % N_THREADS])
            if b % 5 == 3:
                snapshots.append(monitor.to_bytes())
            # Give the other threads a turn, as a service between requests would.
            time.sleep(0)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    for (thread, b), result in fits.items():
        expected = serial_fits[(thread + b) % N_THREADS]
        assert result.threshold == expected.threshold
        assert result.table == expected.table
        np.testing.assert_array_equal(result.mask, expected.mask)

    # A snapshot taken while other threads update is a whole state between batches.
    for data in snapshots:
        assert ltrend.Monitor.from_bytes(data).n_seen % BATCH == 0
    switches = 0
    for m, monitor in enumerate(monitors):
        window = monitor.window_scores()
        owners = [identity[value] for value in window.tolist()]
        # Every score of this monitor's threads arrived once (a multiset check).
        sent = sorted(
            v
            for t in range(m, N_THREADS, N_MONITORS)
            for x in scores[t]
            for v in x.tolist()
        )
        assert sorted(window.tolist()) == sent
        # Batches arrived whole and in order: read the arrival order back.
        order = [owners[i] for i in range(0, len(owners), BATCH)]
        for k, (thread, b) in enumerate(order):
            assert owners[k * BATCH : (k + 1) * BATCH] == [(thread, b)] * BATCH
            np.testing.assert_array_equal(
                window[k * BATCH : (k + 1) * BATCH], scores[thread][b]
            )
        switches += sum(a[0] != b[0] for a, b in itertools.pairwise(order))
        replay = new_monitor()
        for thread, b in order:
            np.testing.assert_array_equal(
                replay.update_many(scores[thread][b]), masks[thread, b]
            )
        assert replay.to_bytes() == monitor.to_bytes()
        status = monitor.status()
        assert status.n_seen == per_monitor
        threads_of_m = range(m, N_THREADS, N_MONITORS)
        flagged = sum(
            int(masks[t, b].sum()) for t in threads_of_m for b in range(N_BATCHES)
        )
        assert status.n_flagged == flagged
    # Precondition: the threads did interleave (on any machine with two cores,
    # or with one, since every thread yields between batches).
    assert switches > N_THREADS
    print(
        f"figure: threads = {N_THREADS}, monitors = {N_MONITORS}, "
        f"batches = {N_THREADS * N_BATCHES} of {BATCH} scores, "
        f"fits = {len(fits)}, snapshots = {len(snapshots)}, "
        f"thread switches between batches = {switches}"
    )


# --- the GIL is released during heavy calls ---------------------------------------


def _runs_beside(call: Callable[[], object]) -> int:
    """How many steps another Python thread took while ``call`` ran.

    The switch interval is raised far beyond the call's duration, so while the
    calling thread holds the GIL no other Python thread can run: a count above
    zero means the call released it.
    """
    steps = 0
    stop = threading.Event()
    started = threading.Event()

    def count() -> None:
        nonlocal steps
        started.set()
        while not stop.is_set():
            steps += 1
            time.sleep(0)

    interval = sys.getswitchinterval()
    counter = threading.Thread(target=count)
    counter.start()
    started.wait()
    sys.setswitchinterval(100.0)
    try:
        # Let a wait for the GIL that began under the old interval run out.
        time.sleep(0.01)
        before = steps
        call()
        during = steps - before
    finally:
        sys.setswitchinterval(interval)
        stop.set()
        counter.join()
    return during


def test_heavy_calls_release_the_gil() -> None:
    scores = np.random.default_rng(7).lognormal(size=2_000_000)
    monitor = ltrend.Monitor(window=1_000_000, refit_every=200_000)
    snapshot = ltrend.Monitor(window=1_000_000, refit_every=1_000_000)
    snapshot.update_many(scores[:1_000_000])
    data = snapshot.to_bytes()
    calls: dict[str, Callable[[], object]] = {
        "fit": lambda: ltrend.fit(scores),
        "update_many": lambda: monitor.update_many(scores),
        "from_bytes": lambda: ltrend.Monitor.from_bytes(data),
    }
    # Precondition: a call that holds the GIL for as long lets nothing run.
    assert _runs_beside(lambda: sum(range(20_000_000))) == 0
    for name, call in calls.items():
        # Another thread may not get a CPU at once on a loaded machine: retry.
        assert any(_runs_beside(call) > 0 for _ in range(5)), name
