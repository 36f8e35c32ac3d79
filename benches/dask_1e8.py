"""``ltrend.dask.fit`` on 1e8 float64 scores, on a local cluster short of memory.

A script, not part of the test run (it takes minutes)::

    nice python benches/dask_1e8.py                  # the run in docs/performance.md
    nice python benches/dask_1e8.py --n 2e7 --compare 2e6    # a quicker look
    nice python benches/dask_1e8.py --method tail_aware      # a breakpoint method

The scores (a normal base and 1 % anomalies, see ``generate``) are made chunk by
chunk on the workers from fixed seeds and are never whole in one process. The
cluster has ``--workers`` worker processes of one thread, each with a memory
limit (``--memory-limit``) below the size of the data. For each mode the script
restarts the workers (so that each one's peak RSS is that run's), fits, and
reports the wall time, the peak RSS of every worker, whether a worker was lost
and how much Dask spilled to disk; it also times one read of the input, for
scale. Then it times ``ltrend.fit`` on ``--compare`` scores in memory (best of
3), checks ``ltrend.dask.fit`` on those same scores against it, and prints the
ratio of the Dask run's time to the in-memory time. ``--method`` picks the
method; a breakpoint method runs in the exact mode only (the approximate mode
refuses it).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from typing import Any

import dask.array as da
import numpy as np
import numpy.typing as npt
from distributed import Client, LocalCluster

import ltrend
import ltrend.dask

#: Share of anomalies in the generated scores.
ANOMALY_RATE = 0.01
SEED = 2024


def _block(block_id: tuple[int, ...], size: int) -> npt.NDArray[np.float64]:
    """One chunk: N(0, 1) with 1 % replaced by N(8, 3), from the chunk's own seed."""
    rng = np.random.default_rng([SEED, block_id[0]])
    scores = rng.standard_normal(size)
    hit = rng.random(size) < ANOMALY_RATE
    scores[hit] = rng.normal(8.0, 3.0, int(hit.sum()))
    return scores


def generate(n: int, chunk: int) -> da.Array:
    """``n`` scores in chunks of ``chunk``, each made where it is computed."""
    sizes = (chunk,) * (n // chunk) + ((n % chunk,) if n % chunk else ())

    def make(block_id: tuple[int, ...]) -> npt.NDArray[np.float64]:
        return _block(block_id, sizes[block_id[0]])

    return da.map_blocks(
        make, chunks=(sizes,), dtype=np.float64, meta=np.empty(0, np.float64)
    )


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _spilled_mb(dask_worker: Any) -> float:
    """MiB this worker has written to disk when spilling (from its metric digests)."""
    written = sum(
        value
        for key, value in dask_worker.digests_total.items()
        if isinstance(key, tuple) and "disk-write" in key and key[-1] == "bytes"
    )
    return float(written) / 2**20


def measured_fit(client: Client, x: da.Array, **options: Any) -> dict[str, Any]:
    client.restart()
    pids = client.run(os.getpid)
    start = time.perf_counter()
    result = ltrend.dask.fit(x, **options)
    wall = time.perf_counter() - start
    return {
        "result": result,
        "wall": wall,
        "peaks": client.run(_peak_rss_mb),
        "lost_workers": pids != client.run(os.getpid),
        "spilled": client.run(_spilled_mb),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=float, default=1e8)
    parser.add_argument("--chunk", type=float, default=1e6)
    parser.add_argument("--compare", type=float, default=1e7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="500MiB")
    parser.add_argument("--method", default="paper", choices=ltrend.METHODS)
    args = parser.parse_args()
    method = args.method
    modes = ltrend.dask.MODES if method == "paper" else ("exact",)
    n, chunk, small = int(args.n), int(args.chunk), int(args.compare)

    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=args.memory_limit,
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
    ):
        limits = [
            w["memory_limit"] / 2**20
            for w in client.scheduler_info()["workers"].values()
        ]
        print(
            f"{n:.3g} float64 scores = {n * 8 / 2**20:.0f} MiB in chunks of "
            f"{chunk:.3g};"
            f" {args.workers} workers with a limit of "
            f"{', '.join(f'{m:.0f}' for m in limits)} MiB each"
        )
        x = generate(n, chunk)
        runs = {
            mode: measured_fit(client, x, mode=mode, method=method) for mode in modes
        }
        exact = runs["exact"]["result"]
        for mode, run in runs.items():
            result = run["result"]
            error = abs(result.threshold - exact.threshold) / abs(exact.threshold)
            peaks = ", ".join(f"{p:.0f}" for p in run["peaks"].values())
            print(
                f"{mode:>11}: {run['wall']:6.1f} s, peak RSS per worker {peaks} MiB, "
                f"lost workers: {run['lost_workers']}, spilled "
                f"{sum(run['spilled'].values()):.0f} MiB; {method}: "
                f"degree {result.degree}, breakpoint {result.breakpoint}, "
                f"threshold {result.threshold:.12g} (rel. diff. to exact {error:.1e}),"
                f" {result.n_anomalies} anomalies"
            )

        # For scale: one read of the input (the fits read it 3 + waves times).
        start = time.perf_counter()
        x.sum().compute()
        print(
            f"one read of the input (generate and sum): "
            f"{time.perf_counter() - start:.1f} s"
        )

        # In memory: the same generator, gathered in this process.
        z = generate(small, chunk).compute()
        timings = []
        for _ in range(3):
            start = time.perf_counter()
            expected = ltrend.fit(z, method=method)
            timings.append(time.perf_counter() - start)
        best = min(timings)
        check = ltrend.dask.fit(generate(small, chunk), method=method)
        same = (
            check.degree == expected.degree
            and check.breakpoint == expected.breakpoint
            and check.n_anomalies == expected.n_anomalies
            and abs(check.threshold - expected.threshold)
            <= 1e-9 * abs(expected.threshold)
        )
        print(
            f"ltrend.fit on {small:.3g} in memory: {best:.2f} s (best of 3); "
            f"ltrend.dask.fit on the same scores equal: {same} "
            f"(rel. diff. {abs(check.threshold / expected.threshold - 1):.1e})"
        )
        print(
            f"ratio: dask exact on {n:.3g} / in-memory on {small:.3g} = "
            f"{runs['exact']['wall'] / best:.1f}"
        )


if __name__ == "__main__":
    main()
