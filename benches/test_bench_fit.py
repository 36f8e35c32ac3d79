"""Timing of ``ltrend.fit`` beside ``np.sort`` and the NumPy reference.

Run on purpose (the normal test run skips benchmarks)::

    python -m pytest benches --benchmark-only --benchmark-group-by=param:n
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import ltrend
from ltrend import reference

SIZES = [1_000, 100_000, 1_000_000]


def l_shaped(n: int) -> npt.NDArray[np.float64]:
    """A long flat base with a steep tail of 1 % anomalies."""
    rng = np.random.default_rng(n)
    k = max(1, n // 100)
    return np.concatenate([rng.normal(0.0, 1.0, n - k), rng.normal(8.0, 3.0, k)])


CANDIDATES: dict[str, Callable[[npt.NDArray[np.float64]], Any]] = {
    "ltrend.fit": ltrend.fit,
    "np.sort": np.sort,
    "reference.fit": reference.fit,
}


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_fit_speed(benchmark: Any, name: str, n: int) -> None:
    if name == "reference.fit" and n > 100_000:
        pytest.skip("the reference is kept obvious, not fast")
    scores = l_shaped(n)
    if name == "ltrend.fit":
        # Check the result once, outside the timed calls.
        expected = reference.fit(scores).threshold
        assert ltrend.fit(scores).threshold == pytest.approx(expected, rel=1e-9)
    benchmark.group = f"fit n={n}"
    benchmark(CANDIDATES[name], scores)
