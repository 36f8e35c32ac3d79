"""Timing of ``ltrend.Monitor``: batch throughput, one refit, one update.

Run on purpose (the normal test run skips benchmarks)::

    python -m pytest benches/test_bench_monitor.py --benchmark-only

``benches/monitor_targets.py`` measures the monitor's three speed targets in
one run and prints each against its goal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import ltrend

#: A refit interval no benchmark reaches, for timing updates outside a refit.
NEVER = 2**40


def stream(n: int, seed: int) -> npt.NDArray[np.float64]:
    """Lognormal scores with 1 % far anomalies: an L-shaped stream."""
    rng = np.random.default_rng(seed)
    scores = rng.lognormal(size=n)
    scores[rng.random(n) < 0.01] += 20.0
    return scores


def filled(window: int, refit_every: int) -> ltrend.Monitor:
    """A monitor whose window is full and which has a threshold."""
    monitor = ltrend.Monitor(
        window=window, refit_every=refit_every, min_scores=min(window, refit_every)
    )
    monitor.update_many(stream(window, seed=0))
    if monitor.threshold is None:
        monitor.refit()
    return monitor


@pytest.mark.parametrize("window", [10_000, 100_000])
def test_update_many_throughput(benchmark: Any, window: int) -> None:
    monitor = filled(window, refit_every=window // 10)
    batch = stream(1_000_000, seed=1)
    # Check once, outside the timed calls: a refit equals ltrend.fit.
    monitor.update_many(batch[: window // 10])
    assert monitor.threshold == ltrend.fit(monitor.window_scores()).threshold
    benchmark.group = f"update_many of 1e6 scores, refit_every = {window // 10}"
    benchmark.pedantic(monitor.update_many, args=(batch,), rounds=5, iterations=1)


@pytest.mark.parametrize("n", [100_000, 1_000_000])
@pytest.mark.parametrize("name", ["Monitor.refit", "ltrend.fit presorted"])
def test_refit_against_fit(benchmark: Any, name: str, n: int) -> None:
    benchmark.group = f"refit window={n} vs fit of a presorted array"
    if name == "ltrend.fit presorted":
        presorted = np.sort(stream(n, seed=2))
        benchmark.pedantic(ltrend.fit, args=(presorted,), rounds=10, iterations=1)
        return
    monitor = filled(n, refit_every=NEVER)
    fresh = iter(np.split(stream(10_000 * 11, seed=3), 11))

    def arrive() -> tuple[tuple[()], dict[str, Any]]:
        # 1e4 new scores since the last refit, as with refit_every = 1e4.
        monitor.update_many(next(fresh))
        return (), {}

    arrive()
    monitor.refit()
    assert monitor.threshold == ltrend.fit(monitor.window_scores()).threshold
    benchmark.pedantic(monitor.refit, setup=arrive, rounds=10, iterations=1)


def test_single_update(benchmark: Any) -> None:
    monitor = filled(100_000, refit_every=NEVER)
    benchmark.group = "update of one score, window=1e5, outside a refit"
    benchmark(monitor.update, 0.5)
    assert monitor.status().n_refits == 1
