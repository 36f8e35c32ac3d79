"""Timing of ``ltrend.fit`` beside ``np.sort``, the NumPy reference and PyThresh.

Run on purpose (the normal test run skips benchmarks)::

    python -m pytest benches --benchmark-only
    python -m pytest benches --benchmark-only -k "n1e6 and l_shape"  # one input
    LTREND_BENCH_HUGE=1 python -m pytest benches --benchmark-only  # adds n = 1e8

Every group holds one input (shape, dtype, n) and every candidate timed on it, so
the ratios of a group come from one run. Each ``ltrend.fit`` entry also records,
in ``extra_info``, the peak memory that tracemalloc saw during one call (NumPy
reports its allocations to tracemalloc; the core allocates through NumPy for
everything of size n, and only O(n / 4096) of its own) relative to the input.
``benches/perf_targets.py`` prints the issue's targets as one table.
"""

from __future__ import annotations

import os
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import ltrend
from ltrend import reference

Scores = npt.NDArray[np.floating[Any]]

SIZES = [1_000, 10_000, 100_000, 1_000_000, 10_000_000]
if os.environ.get("LTREND_BENCH_HUGE"):
    SIZES.append(100_000_000)

#: Above these sizes a candidate is left out: it would take minutes.
LIMITS = {"reference.fit": 1_000_000, "pythresh": 1_000_000}


def l_shaped(n: int, dtype: type) -> Scores:
    """A long flat base (normal noise) with a steep tail of 1 % anomalies."""
    rng = np.random.default_rng(n)
    k = max(1, n // 100)
    scores = np.empty(n, dtype=dtype)
    scores[: n - k] = rng.normal(0.0, 1.0, n - k)
    scores[n - k :] = rng.normal(8.0, 3.0, k)
    rng.shuffle(scores)
    return scores


def heavy_ties(n: int, dtype: type) -> Scores:
    """Counts as scores: a few dozen distinct values, most of them repeated."""
    rng = np.random.default_rng(n + 1)
    k = max(1, n // 100)
    scores = np.empty(n, dtype=dtype)
    scores[: n - k] = rng.poisson(3.0, n - k)
    scores[n - k :] = rng.poisson(25.0, k)
    rng.shuffle(scores)
    return scores


SHAPES = {"l_shape": l_shaped, "ties": heavy_ties}


def _pythresh(name: str) -> Callable[[Scores], object]:
    module = pytest.importorskip(f"pythresh.thresholds.{name.lower()}")
    thresholder = getattr(module, name)()

    def run(scores: Scores) -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return thresholder.eval(scores)

    return run


CANDIDATES: dict[str, Callable[[], Callable[[Scores], object]]] = {
    "ltrend.fit": lambda: ltrend.fit,
    "np.sort": lambda: np.sort,
    "reference.fit": lambda: reference.fit,
    # The fastest PyThresh thresholders (benches/perf_targets.py ranks them).
    "pythresh.ZSCORE": lambda: _pythresh("ZSCORE"),
    "pythresh.IQR": lambda: _pythresh("IQR"),
    "pythresh.HIST": lambda: _pythresh("HIST"),
}

_inputs: dict[tuple[str, str, int], Scores] = {}


def scores_for(shape: str, dtype: str, n: int) -> Scores:
    """The benchmark input, made once per session (large ones take seconds)."""
    key = (shape, dtype, n)
    if key not in _inputs:
        _inputs.clear()
        _inputs[key] = SHAPES[shape](n, np.dtype(dtype).type)
    return _inputs[key]


def peak_over_input(scores: Scores) -> float:
    """Peak traced memory of one ``ltrend.fit`` call, over the input's size."""
    tracemalloc.start()
    try:
        ltrend.fit(scores)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (peak + scores.nbytes) / scores.nbytes


@pytest.mark.parametrize("n", SIZES, ids=lambda n: f"n{n:.0e}".replace("+0", ""))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("name", list(CANDIDATES))
def test_fit_speed(benchmark: Any, name: str, shape: str, dtype: str, n: int) -> None:
    family = name.split(".")[0]
    if n > LIMITS.get(name, LIMITS.get(family, n)):
        pytest.skip(f"{name} would take minutes at n = {n:.0e}")
    scores = scores_for(shape, dtype, n)
    run = CANDIDATES[name]()
    benchmark.group = f"{shape} {dtype} n={n:.0e}"
    if name == "ltrend.fit":
        # Check the result once, outside the timed calls.
        if n <= 1_000_000:
            expected = reference.fit(scores).threshold
            assert ltrend.fit(scores).threshold == pytest.approx(expected, rel=1e-9)
        benchmark.extra_info["peak_memory_over_input"] = round(
            peak_over_input(scores), 3
        )
    if n >= 10_000_000 or (name == "reference.fit" and n >= 100_000):
        benchmark.pedantic(run, args=(scores,), rounds=3, iterations=1)
    else:
        benchmark(run, scores)
