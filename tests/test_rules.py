"""One hand-worked case per rule of the method's contract (METHOD.md)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import ltrend
from ltrend import reference

from parity import FitFunction

IMPLEMENTATIONS = [ltrend.fit, reference.fit]
# Millesimal values: hand computations below stay clear of underflow and overflow.
milli = st.integers(-(10**6), 10**6).map(lambda i: i / 1000)


@pytest.fixture(params=IMPLEMENTATIONS, ids=["core", "reference"])
def fit(request: pytest.FixtureRequest) -> FitFunction:
    implementation: FitFunction = request.param
    return implementation


def l_shaped(seed: int = 0) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0, 1, 2000), rng.normal(8, 2, 40)])


def test_sort_transform_ignores_input_order(fit: FitFunction) -> None:
    scores = l_shaped()
    order = np.random.default_rng(1).permutation(scores.size)
    a, b = fit(scores), fit(scores[order])
    assert a.threshold == b.threshold
    assert a.table == b.table
    np.testing.assert_array_equal(a.mask[order], b.mask)
    np.testing.assert_array_equal(a.sorted_scores(), np.sort(scores))


def test_degrees_run_to_max_degree_but_never_past_n_minus_2(fit: FitFunction) -> None:
    assert [r.degree for r in fit(l_shaped()).table] == [1, 2, 3, 4, 5]
    assert [r.degree for r in fit(l_shaped(), max_degree=2).table] == [1, 2]
    assert [r.degree for r in fit(l_shaped(), max_degree=10).table] == list(
        range(1, 11)
    )
    assert [r.degree for r in fit([0.0, 1.0, 5.0, 6.0]).table] == [1, 2]
    assert [r.degree for r in fit([0.0, 1.0, 5.0]).table] == [1]


@pytest.mark.parametrize("degree", [1, 2, 3, 4, 5])
def test_candidate_is_the_max_of_the_least_squares_fit(
    fit: FitFunction, degree: int
) -> None:
    scores = l_shaped(2)
    s = np.sort(scores)
    ranks = np.arange(s.size, dtype=np.float64)
    # An independent least-squares fit on raw ranks (NumPy's Polynomial.fit).
    fitted = np.polynomial.Polynomial.fit(ranks, s, degree)(ranks)
    row = fit(scores).table[degree - 1]
    assert row.threshold == pytest.approx(fitted.max(), rel=1e-9)
    result = fit(scores)
    np.testing.assert_allclose(
        result.fitted_curve(degree), fitted, rtol=1e-9, atol=1e-9 * np.abs(s).max()
    )


def test_score_equal_to_the_threshold_is_anomalous(fit: FitFunction) -> None:
    # A straight line is fitted exactly by degree 1, so its candidate is the
    # largest score itself; with ">" instead of ">=" nothing would be flagged.
    result = fit([3.0, 0.0, 4.0, 1.0, 2.0])
    assert result.table[0].threshold == 4.0, "precondition: an exact fit"
    assert result.degree == 1
    assert result.threshold == 4.0
    assert result.mask.tolist() == [False, False, True, False, False]
    # |A| = 1 and var(N) > 0: compactness 0.
    assert result.table[0].compactness == 0.0


@given(arrays(np.float64, st.integers(3, 200), elements=milli))
def test_mask_is_scores_at_or_above_threshold(scores: npt.NDArray[np.float64]) -> None:
    for fit in IMPLEMENTATIONS:
        result = fit(scores)
        np.testing.assert_array_equal(result.mask, scores >= result.threshold)
        assert result.n_anomalies == int(np.count_nonzero(result.mask))
        if result.degree is not None:
            chosen = result.table[result.degree - 1]
            assert chosen.threshold == result.threshold
            assert chosen.n_anomalies == result.n_anomalies


@given(arrays(np.float64, st.integers(3, 200), elements=milli))
def test_compactness_is_the_papers_ratio(scores: npt.NDArray[np.float64]) -> None:
    result = ltrend.fit(scores)
    for row in result.table:
        anomalous = scores[scores >= row.threshold]
        normal = scores[scores < row.threshold]
        assert row.n_anomalies == anomalous.size
        if anomalous.size == 0 or normal.size == 0:
            assert math.isnan(row.compactness)
        elif np.ptp(normal) == 0:
            assert row.compactness == math.inf
        else:
            # A constant side has variance exactly 0 (np.var may leave ~1e-30).
            var_anomalous = 0.0 if np.ptp(anomalous) == 0 else np.var(anomalous)
            expected = (var_anomalous / anomalous.size) / (np.var(normal) / normal.size)
            assert row.compactness == pytest.approx(expected, rel=1e-7, abs=1e-300)


def test_empty_side_is_not_a_candidate(fit: FitFunction) -> None:
    # On a concave curve the line's maximum overshoots the largest score.
    scores = np.sqrt(np.arange(100.0))
    result = fit(scores)
    empty = [row for row in result.table if row.n_anomalies == 0]
    assert empty, "precondition: some degree overshoots every score"
    for row in empty:
        assert math.isnan(row.compactness)
        assert result.degree != row.degree


def test_zero_variance_normal_side_is_a_perfect_split(fit: FitFunction) -> None:
    result = fit([0.0, 0.0, 0.0, 0.0, 10.0])
    assert result.table[0].compactness == math.inf
    assert result.degree == 1
    assert result.mask.tolist() == [False, False, False, False, True]


def test_single_anomaly_has_zero_compactness_unless_normal_is_flat(
    fit: FitFunction,
) -> None:
    scores = np.concatenate([np.linspace(0.0, 1.0, 50), [30.0]])
    result = fit(scores)
    singles = [row for row in result.table if row.n_anomalies == 1]
    assert singles, "precondition: some degree flags exactly one score"
    assert all(row.compactness == 0.0 for row in singles)


def test_ties_in_compactness_go_to_the_lowest_degree() -> None:
    scores = np.concatenate([np.zeros(30), [10.0, 11.0]])
    for fit in IMPLEMENTATIONS:
        result = fit(scores)
        infinite = [r.degree for r in result.table if r.compactness == math.inf]
        assert len(infinite) >= 2, "precondition: several perfect splits"
        assert result.degree == min(infinite)


@pytest.mark.parametrize("value", [0.0, -3.5, 1e9, 0.1])
def test_no_candidate_means_no_anomaly(fit: FitFunction, value: float) -> None:
    result = fit(np.full(25, value))
    assert result.degree is None
    assert result.threshold == math.inf
    assert result.n_anomalies == 0
    assert not result.mask.any()
    assert all(math.isnan(r.compactness) for r in result.table)


@pytest.mark.parametrize("scores", [[], [1.0], [1.0, 2.0]])
def test_fewer_than_three_scores(fit: FitFunction, scores: list[float]) -> None:
    with pytest.raises(
        ValueError, match=f"at least 3 finite scores.*got {len(scores)}"
    ):
        fit(scores)


def test_non_finite_scores_are_refused_by_default(fit: FitFunction) -> None:
    scores = [1.0, 2.0, 3.0, np.inf, 5.0, np.nan, -np.inf]
    with pytest.raises(ValueError, match=r"found 3 NaN or infinite.*index 3"):
        fit(scores)


def test_omitted_scores_are_left_out_and_labelled_normal(fit: FitFunction) -> None:
    scores = l_shaped()
    dirty = scores.copy()
    dirty[[5, 17, 2039]] = [np.nan, np.inf, -np.inf]
    clean = np.delete(scores, [5, 17, 2039])
    omitted, plain = fit(dirty, nan_policy="omit"), fit(clean)
    assert omitted.n_omitted == 3
    assert plain.n_omitted == 0
    assert omitted.threshold == plain.threshold
    assert omitted.table == plain.table
    assert not omitted.mask[[5, 17, 2039]].any()
    np.testing.assert_array_equal(np.delete(omitted.mask, [5, 17, 2039]), plain.mask)
    with pytest.raises(ValueError, match="got 2"):
        fit([np.nan, 1.0, np.inf, 2.0], nan_policy="omit")


def test_float32_gives_the_float64_result() -> None:
    scores32 = l_shaped().astype(np.float32)
    a = ltrend.fit(scores32)
    b = ltrend.fit(scores32.astype(np.float64))
    assert a.threshold == b.threshold
    assert a.table == b.table
    np.testing.assert_array_equal(a.mask, b.mask)
    assert isinstance(a.threshold, float)
    # The working copy stays float32: no float64 copy of the scores is made.
    assert a.sorted_scores().dtype == np.float32
