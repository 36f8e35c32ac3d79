"""Measure the three speed targets of ``ltrend.Monitor`` in one run.

Build with ``maturin develop --release`` (or ``pip install .``) first, then::

    python benches/monitor_targets.py

Each line gives the target, the measured value, the goal and pass/fail. Times
are the best of several repeats (the least disturbed by other processes). The
exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

import ltrend

#: A refit interval no measurement reaches, for timing outside a refit.
NEVER = 2**40


def stream(n: int, seed: int) -> npt.NDArray[np.float64]:
    """Lognormal scores with 1 % far anomalies: an L-shaped stream."""
    rng = np.random.default_rng(seed)
    scores = rng.lognormal(size=n)
    scores[rng.random(n) < 0.01] += 20.0
    return scores


def best_of(repeats: int, run: Callable[[], object]) -> float:
    """The shortest wall time of ``repeats`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def throughput(repeats: int) -> tuple[float, float, float]:
    """Scores per second through ``update_many`` at window 1e5, refit_every 1e4.

    The stream goes in as batches of 1e4 scores aligned with the refits, so each
    timed call judges 1e4 scores and runs exactly one refit: the periodic unit of
    the sustained rate. Returns the rate of the fastest call (the least disturbed
    by other processes), of the median call, and over all calls by CPU time.
    """
    batch, calls = 10_000, 40 * repeats
    monitor = ltrend.Monitor(window=100_000, refit_every=batch)
    monitor.update_many(stream(200_000, seed=0))
    scores = stream(batch * calls, seed=1)
    walls = []
    start_cpu = time.thread_time()
    for k in range(calls):
        chunk = scores[k * batch : (k + 1) * batch]
        start = time.perf_counter()
        monitor.update_many(chunk)
        walls.append(time.perf_counter() - start)
    cpu = time.thread_time() - start_cpu
    assert monitor.status().n_refits == 200_000 // batch + calls
    assert monitor.threshold == ltrend.fit(monitor.window_scores()).threshold
    return batch / min(walls), batch / float(np.median(walls)), batch * calls / cpu


def refit_ratio(repeats: int, fresh: int) -> tuple[float, float, float]:
    """(refit seconds, fit seconds, ratio) at window 1e6, ``fresh`` new scores."""
    n = 1_000_000
    presorted = np.sort(stream(n, seed=2))
    fit_seconds = best_of(repeats, lambda: ltrend.fit(presorted))
    monitor = ltrend.Monitor(window=n, refit_every=NEVER, min_scores=n)
    monitor.update_many(stream(n, seed=3))
    arrivals = stream(fresh * repeats, seed=4)
    refit_seconds = float("inf")
    for k in range(repeats):
        monitor.update_many(arrivals[k * fresh : (k + 1) * fresh])
        start = time.perf_counter()
        monitor.refit()
        refit_seconds = min(refit_seconds, time.perf_counter() - start)
    assert monitor.threshold == ltrend.fit(monitor.window_scores()).threshold
    return refit_seconds, fit_seconds, refit_seconds / fit_seconds


def single_update(repeats: int) -> float:
    """Seconds per ``Monitor.update`` call at window 1e5, outside a refit."""
    monitor = ltrend.Monitor(window=100_000, refit_every=NEVER, min_scores=100_000)
    monitor.update_many(stream(100_000, seed=5))
    calls = 20_000
    values = stream(calls, seed=6).tolist()
    update = monitor.update

    def run() -> None:
        for z in values:
            update(z)

    seconds = best_of(repeats, run)
    assert monitor.status().n_refits == 1
    return seconds / calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="best of this many")
    args = parser.parse_args()
    repeats = max(1, args.repeats)

    print(f"ltrend {ltrend.__version__}, numpy {np.__version__}, ", end="")
    print(f"Python {platform.python_version()}, {platform.machine()}, ", end="")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{'target':<58}{'measured':>14}  {'goal':<11}result")
    failures = 0

    def report(target: str, measured: str, goal: str, ok: bool | None) -> None:
        nonlocal failures
        verdict = "info" if ok is None else ("pass" if ok else "FAIL")
        failures += ok is False
        print(f"{target:<58}{measured:>14}  {goal:<11}{verdict}")

    rate, median_rate, cpu_rate = throughput(repeats)
    report(
        "update_many, window 1e5, refit_every 1e4 (scores/s)",
        f"{rate / 1e6:.2f} M/s",
        ">= 5 M/s",
        rate >= 5e6,
    )
    print(
        f"    median call {median_rate / 1e6:.2f} M/s; all calls by CPU time of the "
        f"calling thread {cpu_rate / 1e6:.2f} M/s"
    )
    refit, fit, ratio = refit_ratio(repeats, fresh=10_000)
    report(
        "refit at window 1e6 (1e4 new scores) / fit of presorted 1e6",
        f"{ratio:.2f}x",
        "<= 2x",
        ratio <= 2.0,
    )
    print(f"    refit {refit * 1e3:.1f} ms, ltrend.fit(presorted) {fit * 1e3:.1f} ms")
    refit, fit, ratio = refit_ratio(max(1, repeats // 2), fresh=1_000_000)
    report(
        "  same, every score new (refit_every >= window, full sort)",
        f"{ratio:.2f}x",
        "",
        None,
    )
    seconds = single_update(repeats)
    report(
        "update of one score, window 1e5, outside a refit",
        f"{seconds * 1e6:.2f} us",
        "< 2 us",
        seconds < 2e-6,
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
