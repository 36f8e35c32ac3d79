"""The two sorts behind the core agree: NumPy's (``ltrend.fit``) and the radix sort.

``ltrend.fit`` sorts with NumPy and hands the sorted copy to ``_core.fit_sorted``;
``_core.fit`` sorts with the core's own radix sort (the Rust API's path). Both
must give the same result to the last bit of the threshold, since the sorted
values are the same and so is every later pass.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import ltrend
from ltrend import _core

moderate = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
specials = st.sampled_from([0.0, -0.0, 5e-324, -5e-324, np.nan, np.inf, -np.inf])


def assert_same(scores: npt.NDArray[np.floating], nan_policy: str = "omit") -> None:
    fast = ltrend.fit(scores, nan_policy=nan_policy)  # type: ignore[arg-type]
    radix = _core.fit(scores, max_degree=5, nan_policy=nan_policy)
    assert fast.threshold == radix.threshold
    assert fast.degree == radix.degree
    assert fast.n_omitted == radix.n_omitted
    # assert_array_equal takes NaN (a degree without a split) as equal to NaN.
    np.testing.assert_array_equal(np.array(fast.table), np.array(radix.rows))
    np.testing.assert_array_equal(fast.mask, radix.mask)
    # Same values; NumPy may put -0.0 and +0.0 in either order, the radix sort
    # puts -0.0 first, and the two compare equal.
    np.testing.assert_array_equal(fast.sorted_scores(), radix.sorted_scores)


@given(
    arrays(
        np.float64,
        st.integers(3, 400),
        elements=st.one_of(moderate, specials),
    )
)
def test_numpy_and_radix_sorts_give_the_same_fit(
    scores: npt.NDArray[np.float64],
) -> None:
    if np.count_nonzero(np.isfinite(scores)) < 3:
        return
    assert_same(scores)
    assert_same(scores.astype(np.float32))


@pytest.mark.parametrize("n", [70_000, 300_000])
@pytest.mark.parametrize("shape", ["l_shape", "ties", "offset"])
def test_sizes_where_the_core_goes_parallel(n: int, shape: str) -> None:
    rng = np.random.default_rng(n)
    scores = {
        "l_shape": np.concatenate([rng.normal(size=n), rng.normal(8, 3, n // 100)]),
        "ties": rng.poisson(3.0, n).astype(np.float64),
        "offset": 1e9 + rng.standard_normal(n),
    }[shape]
    scores[::997] = np.nan
    assert_same(scores)
    assert_same(scores.astype(np.float32))


def test_fit_sorted_refuses_mismatched_inputs() -> None:
    z = np.arange(10.0)
    with pytest.raises(TypeError, match="sorted: must have the dtype of scores"):
        _core.fit_sorted(
            z, np.sort(z).astype(np.float32), max_degree=5, nan_policy="raise"
        )
    with pytest.raises(ValueError, match="sorted: expected at most 10 values"):
        _core.fit_sorted(z, np.arange(11.0), max_degree=5, nan_policy="raise")
    with pytest.raises(TypeError, match="scores: expected a 1-D float64 or float32"):
        _core.fit_sorted(
            z.astype(np.int64),  # type: ignore[arg-type]
            z,
            max_degree=5,
            nan_policy="raise",
        )


def test_fit_sorted_reports_the_first_non_finite_score() -> None:
    z = np.array([1.0, 2.0, np.nan, 3.0, np.inf, 4.0])
    with pytest.raises(
        ValueError, match=r"2 NaN or infinite value\(s\), the first at index 2"
    ):
        ltrend.fit(z)
