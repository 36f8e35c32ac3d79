"""Property tests over the whole Python API with arbitrary floats.

Every test draws scores from the full float64 range: subnormals, +-0.0, huge and
tiny magnitudes, NaN and +-inf where the API accepts them, heavy ties, sorted and
reverse-sorted input, and lengths from 0 to 100_000. It then checks the rules of
METHOD.md (the contract), the parity with the NumPy reference, and that nothing
but a documented ValueError or TypeError ever comes out.

Depth: ``LTREND_HYPOTHESIS_EXAMPLES`` (see conftest.py); ``pytest
--hypothesis-show-statistics`` prints how many inputs each test tried.

Every rule of METHOD.md, and the parity with the reference, hold over the whole
float range (``test_extreme_magnitudes_*``, ``ANY_FINITE``: plain and
log-uniform floats, so that subnormals, 1e+-300 and ordinary values mix in one
array). The tests of every method, of the options and of the wrappers draw
``MODERATE`` scores (|z| between 1e-100 and 1e100, or zero) as well.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import event, example, given, note
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import ltrend
from ltrend import Monitor, cli, metrics, reference
from ltrend._io import read_scores
from ltrend._validation import NanPolicy

from parity import TIGHT_CLUSTER_FAR_FROM_THE_BULK, assert_agree
from test_monitor import NaiveMonitor

Scores = npt.NDArray[np.float64]

#: Every finite float64 with a uniformly drawn binary exponent, so that one
#: array mixes magnitudes from the subnormals to 1.8e308 (plain floats() mostly
#: draws moderate values and the boundary ones).
LOG_UNIFORM = st.builds(
    math.ldexp,
    st.floats(-1.0, 1.0, exclude_min=True, exclude_max=True),
    st.integers(-1074, 1024),
)
#: Every finite float64: subnormals, +-0.0, +-1.8e308, and mixes of them.
ANY_FINITE = st.one_of(st.floats(allow_nan=False, allow_infinity=False), LOG_UNIFORM)
#: Scores whose squares and variance ratios stay far from overflow and underflow.
MODERATE = st.one_of(
    st.sampled_from([0.0, -0.0]),
    st.floats(1e-100, 1e100),
    st.floats(-1e100, -1e-100),
)
#: The smallest positive float64, the spacing of the subnormals.
SUBNORMAL = math.ldexp(1.0, -1074)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
#: Longest input drawn: the issue asks for lengths up to 1e5.
MAX_LENGTH = 100_000
#: Inputs up to this length are drawn value by value (best shrinking); longer
#: ones are built from a few drawn values by a seeded generator.
ELEMENTWISE = 300


@st.composite
def score_arrays(
    draw: st.DrawFn,
    elements: st.SearchStrategy[float] = ANY_FINITE,
    *,
    min_size: int = 0,
    max_size: int = MAX_LENGTH,
) -> Scores:
    """1-D float64 scores of any length, in drawn, sorted or reverse order.

    Long arrays mix a pool of drawn values (ties) with a bulk ``offset + scale *
    noise`` and a heavy upper tail, so that an L shape, exact ties and drawn
    magnitudes all appear at sizes where drawing each value would be too slow.
    """
    if max_size <= ELEMENTWISE or draw(st.booleans()):
        size = st.integers(min_size, min(max_size, ELEMENTWISE))
        scores: Scores = draw(arrays(np.float64, size, elements=elements))
    else:
        n = draw(st.integers(max(min_size, ELEMENTWISE + 1), max_size))
        pool = np.array(draw(st.lists(elements, min_size=1, max_size=12)))
        offset, scale = draw(elements), draw(elements)
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            bulk = offset + scale * rng.standard_normal(n)
            tail = rng.random(n) < 0.02
            bulk[tail] = offset + scale * (4.0 + rng.exponential(4.0, int(tail.sum())))
        # The bulk may overflow where the pool's values do not: fall back to them.
        ties = (rng.random(n) < draw(st.floats(0.0, 1.0))) | ~np.isfinite(bulk)
        scores = np.where(ties, rng.choice(pool, n), bulk)
    order = draw(st.sampled_from(["drawn", "sorted", "reversed"]))
    if order == "sorted":
        scores = np.sort(scores)
    elif order == "reversed":
        scores = np.sort(scores)[::-1].copy()
    note(f"n={scores.size} order={order}")
    event("length " + next(k for k, top in LENGTH_BUCKETS if scores.size <= top))
    return scores


#: How ``pytest --hypothesis-show-statistics`` groups the lengths drawn.
LENGTH_BUCKETS = [
    ("0 to 2", 2),
    ("3 to 300", ELEMENTWISE),
    ("301 to 10,000", 10_000),
    ("10,001 to 100,000", MAX_LENGTH),
]


def with_non_finite(
    draw: Callable[[st.SearchStrategy[Any]], Any], scores: Scores
) -> Scores:
    """A copy of ``scores`` with some entries replaced by NaN or +-inf."""
    if scores.size == 0:
        return scores
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dirty = scores.copy()
    where = rng.random(scores.size) < draw(st.floats(0.0, 0.5))
    dirty[where] = rng.choice([math.nan, math.inf, -math.inf], int(where.sum()))
    return dirty


# --- the rules of METHOD.md -------------------------------------------------------


def _scaled_log_variance(values: Scores) -> float:
    """``log(var(values))`` (ddof 0), computed without overflow or underflow.

    Dividing by a power of two is exact, so the scaled copy keeps every digit of
    scores near 1e308 and of subnormal ones alike.
    """
    top = float(np.max(np.abs(values)))
    exponent = math.frexp(top)[1]
    scaled = np.ldexp(values, -exponent)
    spread = scaled - scaled.min()
    return math.log(float(np.var(spread))) + 2 * exponent * math.log(2.0)


def check_rules(
    result: ltrend.Result,
    scores: npt.NDArray[Any],
    *,
    max_degree: int = 5,
    numeric: bool = True,
) -> None:
    """Assert the contract's rules for one result of ``fit(scores)``.

    Structural rules always; with ``numeric`` also that each compactness is the
    paper's ratio (to a relative 1e-7, overflow to +inf allowed only when the
    true ratio is beyond float64) and each candidate is at least the smallest
    score (the maximum of a least-squares fit is at least the mean it passes
    through).
    """
    z = np.asarray(scores)
    finite = np.isfinite(z)
    s = np.sort(z[finite].astype(np.float64))
    n = s.size
    assert result.n_omitted == z.size - n
    assert result.n_scores == z.size
    np.testing.assert_array_equal(result.sorted_scores(), s.astype(z.dtype))
    # Degrees 1 to min(max_degree, n - 2).
    assert [row.degree for row in result.table] == list(
        range(1, min(max_degree, n - 2) + 1)
    )
    for row in result.table:
        assert not math.isnan(row.threshold), row
        # A = {z >= tau_d}: the count follows from the reported candidate.
        assert row.n_anomalies == n - int(np.searchsorted(s, row.threshold, "left"))
        if numeric:
            # The maximum of a fit through the scores' mean is finite or +inf
            # (an upward overflow), never below the smallest score.
            low, high = float(s[0]), float(s[-1])
            assert row.threshold != -math.inf, row
            assert row.threshold >= low - 1e-9 * max(abs(low), abs(high)), row
        normal, anomalous = s[s < row.threshold], s[s >= row.threshold]
        if normal.size == 0 or anomalous.size == 0:
            assert math.isnan(row.compactness), row
            continue
        if not numeric:
            continue
        assert not math.isnan(row.compactness), row
        if normal.min() == normal.max():
            assert row.compactness == math.inf, row
        elif anomalous.min() == anomalous.max():
            assert row.compactness == 0.0, row
        else:
            expected = (
                _scaled_log_variance(anomalous)
                - math.log(anomalous.size)
                - _scaled_log_variance(normal)
                + math.log(normal.size)
            )
            if row.compactness == math.inf:
                assert expected > math.log(np.finfo(np.float64).max) - 1e-7, row
            elif row.compactness < np.finfo(np.float64).tiny:
                # A ratio in the subnormals (or rounded to 0) holds only the
                # digits above 2^-1074: there it is held to that spacing.
                true = math.exp(min(expected, 0.0))
                assert abs(row.compactness - true) <= 2 * SUBNORMAL + 1e-7 * true, row
            else:
                assert math.log(row.compactness) == pytest.approx(expected, abs=1e-7), (
                    row
                )
    # The degree: the largest compactness, ties to the lowest degree.
    candidates = [row for row in result.table if not math.isnan(row.compactness)]
    assert not math.isnan(result.threshold)
    if candidates:
        best = max(row.compactness for row in candidates)
        chosen = next(row for row in candidates if row.compactness == best)
        assert result.degree == chosen.degree
        assert result.threshold == chosen.threshold
        assert result.n_anomalies == chosen.n_anomalies
    else:
        assert result.degree is None
        assert result.threshold == math.inf
        assert result.n_anomalies == 0
    # The mask: finite scores at or above the threshold, in input order.
    with np.errstate(invalid="ignore"):
        expected_mask = finite & (z.astype(np.float64) >= result.threshold)
    np.testing.assert_array_equal(result.mask, expected_mask)
    assert result.n_anomalies == int(np.count_nonzero(result.mask))


def same_table(a: ltrend.Result, b: ltrend.Result) -> bool:
    """Whether two per-degree tables are equal, NaN compactness included."""
    return [tuple(map(repr, row)) for row in a.table] == [
        tuple(map(repr, row)) for row in b.table
    ]


def assert_twins_agree(
    core: ltrend.Result, ref: ltrend.Result, scores: npt.ArrayLike, method: str
) -> None:
    """The parity rule of the method: the paper's here, the split methods' (tied
    breakpoints may differ) in test_methods.py, so here each must be a
    self-consistent split of the same scores."""
    if method == "paper":
        assert_agree(core, ref, scores)
        return
    z = np.asarray(scores, dtype=np.float64)
    for result in (core, ref):
        assert result.degree is None
        assert result.n_omitted == core.n_omitted
        np.testing.assert_array_equal(
            result.mask, np.isfinite(z) & (z >= result.threshold)
        )


def fit_both(
    scores: npt.ArrayLike, method: str = "paper", **options: Any
) -> tuple[ltrend.Result, ltrend.Result]:
    core = ltrend.fit(scores, method=method, **options)
    ref = reference.fit(scores, method=method, **options)
    return core, ref


# --- fit: every method, moderate magnitudes: every rule and the parity ------------


@pytest.mark.parametrize("method", ltrend.METHODS)
@given(scores=score_arrays(MODERATE, min_size=3), max_degree=st.integers(1, 10))
def test_fit_keeps_every_rule_and_matches_the_reference(
    method: str, scores: Scores, max_degree: int
) -> None:
    core, ref = fit_both(scores, method, max_degree=max_degree)
    if method == "paper":
        check_rules(core, scores, max_degree=max_degree)
        check_rules(ref, scores, max_degree=max_degree)
    assert_twins_agree(core, ref, scores, method)


@pytest.mark.parametrize("method", ltrend.METHODS)
@given(data=st.data(), scores=score_arrays(MODERATE, max_size=2_000))
def test_non_finite_scores_raise_or_are_omitted(
    method: str, data: st.DataObject, scores: Scores
) -> None:
    dirty = with_non_finite(data.draw, scores)
    n_bad = int(np.count_nonzero(~np.isfinite(dirty)))
    n_good = dirty.size - n_bad
    for fit in (ltrend.fit, reference.fit):
        if n_bad:
            first = int(np.flatnonzero(~np.isfinite(dirty))[0])
            with pytest.raises(ValueError, match=f"found {n_bad} NaN.*index {first}"):
                fit(dirty, method=method)
        if n_good < 3:
            with pytest.raises(ValueError, match=f"at least 3.*got {n_good}"):
                fit(dirty, method=method, nan_policy="omit")
    if n_good < 3:
        return
    core, ref = fit_both(dirty, method, nan_policy="omit")
    clean = ltrend.fit(dirty[np.isfinite(dirty)], method=method)
    assert core.n_omitted == n_bad
    assert core.threshold == clean.threshold
    assert same_table(core, clean)
    assert not core.mask[~np.isfinite(dirty)].any()
    if method == "paper":
        check_rules(core, dirty)
    assert_twins_agree(core, ref, dirty, method)


@given(scores=score_arrays(ANY_FINITE, min_size=3))
def test_order_dtype_and_layout_never_change_the_result(scores: Scores) -> None:
    result = ltrend.fit(scores)
    before = scores.copy()
    shuffled = np.random.default_rng(0).permutation(scores)
    strided = np.repeat(scores, 2)[::2]
    for other in (ltrend.fit(shuffled), ltrend.fit(scores[::-1]), ltrend.fit(strided)):
        assert repr(other.threshold) == repr(result.threshold)
        assert same_table(other, result)
        np.testing.assert_array_equal(other.sorted_scores(), result.sorted_scores())
    np.testing.assert_array_equal(scores, before)
    # float32 input gives the result of the same values as float64.
    with np.errstate(over="ignore"):
        narrow = scores.astype(np.float32)
    if np.count_nonzero(np.isfinite(narrow)) >= 3:
        a = ltrend.fit(narrow, nan_policy="omit")
        b = ltrend.fit(narrow.astype(np.float64), nan_policy="omit")
        assert repr(a.threshold) == repr(b.threshold)
        assert same_table(a, b)
        np.testing.assert_array_equal(a.mask, b.mask)


@given(scores=score_arrays(ANY_FINITE, max_size=2))
def test_fewer_than_three_scores_are_refused(scores: Scores) -> None:
    for fit in (ltrend.fit, reference.fit):
        with pytest.raises(ValueError, match=f"at least 3.*got {scores.size}"):
            fit(scores)


@pytest.mark.parametrize(
    "shape", ["l_shape", "sorted", "reversed", "ties", "tiny_spread"]
)
def test_the_largest_inputs_keep_every_rule(shape: str) -> None:
    rng = np.random.default_rng(8)
    base = rng.standard_normal(MAX_LENGTH)
    scores = {
        "l_shape": np.where(rng.random(MAX_LENGTH) < 0.01, 8.0 + base, base),
        "sorted": np.sort(np.exp(base)),
        "reversed": np.sort(np.exp(base))[::-1].copy(),
        "ties": np.round(base * 2.0) / 2.0,
        "tiny_spread": 1e9 + 1e-6 * base,
    }[shape]
    core, ref = fit_both(scores, max_degree=10)
    check_rules(core, scores, max_degree=10)
    assert_agree(core, ref, scores)


# --- fit over the full float range ---------------------------------------------


# Inputs on which main failed when these tests were written: squared
# deviations that overflow near 1e308, a subnormal spread whose squares
# underflow to zero (a false var(N) = 0, so +inf compactness), a side whose
# spread is far below the largest score (its squares underflow, on the curve as
# given or on the curve rescaled by the largest magnitude), and candidates whose
# count, taken on the rescaled curve, disagreed with the split they make on the
# scores as given. Rescaling beyond 2^+-400 fixed the first four; measuring such
# a side in units of its own spread, and counting each candidate on the scores
# as given, fixed the others.
EXTREME_EXAMPLES = [
    np.array([1e308, -1e308, 5e307, 0.0, 1.0, 1e308]),
    np.array([1e308, 1.7e308, 1.0e308, 1.1e308, 1.79e308]),
    np.array([np.finfo(np.float64).max, -np.finfo(np.float64).max, 0.0]),
    np.array([5e-324, 1e-323, 0.0, 2e-323, 5e-324, 1e-320]),
    # No rescaling; N = {0, 1.8e-277} has squares below the smallest float, so
    # var(N) underflowed to 0 and the compactness was +inf where |A| = 1 gives 0.
    np.array([0.0, 1.7858417106760597e-277, 0.5]),
    # Rescaled by 2^-780 for the outlier, the normal side's squares underflowed.
    np.array([-1.192092896e-07, -3.719838746210229e16, 1.4826, 6.440407714003536e234]),
    # Degree 1's candidate maps back to 5e-324, a score: counted on the rescaled
    # curve it flagged nothing, while the split it makes flags 2 scores.
    np.array([0.0, 5e-324, 5e-324]),
    # Found by fuzz/fuzz_targets/fit.rs on main: rescaled for -7.3e211, the
    # score -1.2e-119 becomes -0.0, so degree 1 counted it at or above its
    # candidate 0.0, while the mask (on the scores as given) does not.
    np.array([-7.343562278240081e211] * 5 + [-1.1837e-119, 3.7005e95, -2.6915e40]),
    # Found by a search of tight clusters far from the bulk, at
    # ordinary magnitudes: the two scores near 0 form A, far from the median
    # -5.5e13, where the core's merged means keep steps of 2^-7 only, so its
    # Comp_1 was 1.8 % off (the rule and the parity failed).
    np.array(TIGHT_CLUSTER_FAR_FROM_THE_BULK),
]


def with_extreme_examples(test: Callable[..., None]) -> Callable[..., None]:
    """``test`` run first on every input of EXTREME_EXAMPLES (degrees 5 and 10)."""
    for scores in EXTREME_EXAMPLES:
        for max_degree in (5, 10):
            test = example(scores=scores, max_degree=max_degree)(test)
    return test


@given(scores=score_arrays(ANY_FINITE, min_size=3), max_degree=st.integers(1, 10))
@with_extreme_examples
def test_any_finite_floats_keep_the_structural_rules(
    scores: Scores, max_degree: int
) -> None:
    """No exception, no NaN threshold, a mask and table consistent with it."""
    check_rules(
        ltrend.fit(scores, max_degree=max_degree),
        scores,
        numeric=False,
        max_degree=max_degree,
    )


@given(scores=score_arrays(ANY_FINITE, min_size=3), max_degree=st.integers(1, 10))
@with_extreme_examples
def test_extreme_magnitudes_keep_every_rule(scores: Scores, max_degree: int) -> None:
    for fit in (ltrend.fit, reference.fit):
        check_rules(fit(scores, max_degree=max_degree), scores, max_degree=max_degree)
    # float32 scores (those that overflow it are left out) are their float64 values.
    with np.errstate(over="ignore"):
        narrow = scores.astype(np.float32)
    if np.count_nonzero(np.isfinite(narrow)) >= 3:
        result = ltrend.fit(narrow, max_degree=max_degree, nan_policy="omit")
        check_rules(result, narrow, max_degree=max_degree)


@given(scores=score_arrays(ANY_FINITE, min_size=3), max_degree=st.integers(1, 10))
@with_extreme_examples
def test_extreme_magnitudes_match_the_reference(
    scores: Scores, max_degree: int
) -> None:
    core, ref = fit_both(scores, max_degree=max_degree)
    assert_agree(core, ref, scores)


# --- peel ----------------------------------------------------------------------


@given(
    data=st.data(),
    scores=score_arrays(ANY_FINITE, min_size=3, max_size=20_000),
    max_rounds=st.integers(1, 6),
    fence=st.floats(0.0, 10.0),
    omit=st.booleans(),
)
def test_peel_rounds_are_consistent(
    data: st.DataObject, scores: Scores, max_rounds: int, fence: float, omit: bool
) -> None:
    z = with_non_finite(data.draw, scores) if omit else scores
    if np.count_nonzero(np.isfinite(z)) < 3:
        return
    peeled = ltrend.peel(
        z, max_rounds=max_rounds, fence=fence, nan_policy="omit" if omit else "raise"
    )
    first = ltrend.fit(z, nan_policy="omit")
    assert len(peeled.rounds) <= max_rounds
    assert peeled.round_of.shape == z.shape
    assert not peeled.round_of[~np.isfinite(z)].any()
    np.testing.assert_array_equal(peeled.mask, peeled.round_of > 0)
    remaining = int(np.count_nonzero(np.isfinite(z)))
    for number, row in enumerate(peeled.rounds, start=1):
        taken = peeled.round_of == number
        assert row.round == number
        assert row.n_anomalies == int(np.count_nonzero(taken)) > 0
        assert np.all(z[taken] >= row.threshold)
        remaining -= row.n_anomalies
        assert row.n_remaining == remaining
        if number == 1:
            assert row.threshold == first.threshold
            np.testing.assert_array_equal(taken, first.mask)
    if not peeled.rounds:
        assert peeled.stop_reason == "no anomaly"
        assert peeled.threshold == math.inf
    elif peeled.stop_reason == "round limit":
        assert len(peeled.rounds) == max_rounds
    elif peeled.stop_reason == "too few scores":
        assert remaining < 3


# --- metrics -------------------------------------------------------------------


def brute_best_f1(truth: npt.NDArray[np.bool_], scores: Scores) -> float:
    """The best F1 over every distinct score as a threshold, one at a time."""
    best = 0.0
    for t in np.unique(scores[~np.isnan(scores)]):
        best = max(best, metrics.f1(truth, scores >= t))
    return best


@given(
    data=st.data(),
    n=st.integers(0, 120),
    elements=st.sampled_from(["finite", "any", "ties"]),
    threshold=st.floats(),
)
def test_metrics_are_exact_and_bounded(
    data: st.DataObject, n: int, elements: str, threshold: float
) -> None:
    values = {
        "finite": ANY_FINITE,
        "any": st.floats(),
        "ties": st.sampled_from([0.0, -0.0, 1.0, math.inf, -math.inf]),
    }[elements]
    scores = data.draw(arrays(np.float64, n, elements=values))
    truth = data.draw(arrays(np.bool_, n))
    predicted = scores >= threshold
    counts = metrics.confusion(truth, predicted)
    assert sum(counts) == n
    assert counts.tp + counts.fn == int(truth.sum())
    for name in ("precision", "recall", "f1"):
        assert 0.0 <= getattr(metrics, name)(truth, predicted) <= 1.0
    assert -1.0 - 1e-12 <= metrics.matthews(truth, predicted) <= 1.0 + 1e-12

    best, at = metrics.best_f1(truth, scores)
    assert best == brute_best_f1(truth, scores)
    if truth.any() and best > 0.0:
        assert metrics.f1(truth, scores >= at) == best
        # The lowest threshold that reaches the best F1.
        lower = scores[~np.isnan(scores) & (scores < at)]
        assert all(metrics.f1(truth, scores >= t) < best for t in np.unique(lower))
    ratio = metrics.f1_ratio(truth, scores, threshold)
    if truth.any() and best > 0.0:
        assert 0.0 <= ratio <= 1.0
    else:
        assert math.isnan(ratio)


def test_best_f1_ignores_nan_scores() -> None:
    # NaN is never at or above a threshold, so it is never predicted anomalous;
    # counting NaN as a candidate cut once reported an F1 no threshold reaches.
    truth = np.array([1, 0, 1, 0, 1])
    scores = np.array([np.nan, 1.0, 2.0, np.nan, 3.0])
    best, at = metrics.best_f1(truth, scores)
    assert (best, at) == (0.8, 2.0)
    assert metrics.f1(truth, scores >= at) == best
    assert metrics.f1_ratio(truth, scores, 2.0) == 1.0
    assert metrics.best_f1([1, 0], [np.nan, np.nan]) == (0.0, math.inf)


# --- Monitor -------------------------------------------------------------------


@pytest.mark.parametrize("method", ltrend.METHODS)
@given(
    data=st.data(),
    window=st.integers(3, 80),
    refit_every=st.integers(1, 100),
    min_fraction=st.floats(0.0, 1.0),
    omit=st.booleans(),
    scale=st.sampled_from(["moderate", "any"]),
)
def test_monitor_follows_fit_on_any_floats(
    method: str,
    data: st.DataObject,
    window: int,
    refit_every: int,
    min_fraction: float,
    omit: bool,
    scale: str,
) -> None:
    elements = MODERATE if scale == "moderate" else ANY_FINITE
    scores = data.draw(score_arrays(elements, max_size=600))
    if omit:
        scores = with_non_finite(data.draw, scores)
    min_scores = 3 + round(min_fraction * (window - 3))
    policy: NanPolicy = "omit" if omit else "raise"
    monitor = Monitor(
        window=window,
        refit_every=refit_every,
        min_scores=min_scores,
        nan_policy=policy,
        method=method,
    )
    naive = NaiveMonitor(window, refit_every, min_scores, policy, method)
    cuts = np.sort(data.draw(arrays(np.int64, 4, elements=st.integers(0, scores.size))))
    flagged = 0
    for batch in np.split(scores, cuts):
        mask = monitor.update_many(batch)
        assert mask.tolist() == [naive.update(z) for z in batch.tolist()]
        flagged += int(mask.sum())
        assert monitor.window_scores().tolist() == list(naive.window)
        assert monitor.threshold == naive.threshold
        # The monitor's own snapshot is always accepted and restores it exactly.
        restored = Monitor.from_bytes(monitor.to_bytes())
        assert restored.to_bytes() == monitor.to_bytes()
        assert restored.method == method
        monitor = restored
    status = monitor.status()
    assert status.n_seen == scores.size
    assert status.n_flagged == flagged
    assert status.n_refits == naive.n_refits
    assert status.threshold is None or not math.isnan(status.threshold)


# --- the command line ----------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``ltrend ARGV`` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, stderr: str) -> None:
    assert code == cli.EXIT_BAD_INPUT
    assert stderr.startswith("ltrend: error: ")
    assert stderr.count("\n") == 1
    assert "Traceback" not in stderr


@given(
    scores=score_arrays(ANY_FINITE, max_size=5_000),
    form=st.sampled_from(["csv", "txt", "npy64", "npy32"]),
    max_degree=st.integers(1, 10),
)
def test_cli_fit_equals_the_api_on_any_floats(
    scores: Scores, form: str, max_degree: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if form.startswith("npy"):
            path = Path(tmp) / "scores.npy"
            with np.errstate(over="ignore"):
                stored = scores.astype(np.float32 if form == "npy32" else np.float64)
            np.save(path, stored)
        else:
            path = Path(tmp) / f"scores.{form}"
            header = "score\n" if form == "csv" else "# one score a line\n"
            # repr() round-trips every float64 exactly.
            path.write_text(header + "".join(f"{z!r}\n" for z in scores.tolist()))
            stored = scores
        code, out, err = run_cli(
            "fit", str(path), "--json", "--max-degree", str(max_degree),
            "--nan-policy", "omit",
        )  # fmt: skip
    finite = int(np.count_nonzero(np.isfinite(stored)))
    if finite < 3:
        assert_one_line_error(code, err)
        assert ("no scores" if stored.size == 0 else f"got {finite}") in err
        return
    assert code == 0, err
    expected = ltrend.fit(stored, max_degree=max_degree, nan_policy="omit")
    summary = json.loads(out)
    threshold = summary["threshold"]
    assert (threshold == "inf" and expected.threshold == math.inf) or (
        threshold == expected.threshold
    )
    assert summary["n_anomalies"] == expected.n_anomalies
    assert summary["degree"] == expected.degree


@given(
    content=st.one_of(
        st.binary(max_size=2_000),
        st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass")),
        # A valid .npy header followed by anything.
        st.binary(max_size=300).map(
            lambda b: (
                b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': "
                b"False, 'shape': (12,), }" + b" " * 59 + b"\n" + b
            )
        ),
    ),
    suffix=st.sampled_from([".csv", ".tsv", ".txt", ".npy", ""]),
    column=st.sampled_from([None, "0", "-1", "score", "3"]),
)
# Found by this test: csv.Error (a traceback) on a carriage return inside a field.
@example(content=b"\r\x00", suffix=".csv", column=None)
@example(content=b"score\r1.0\r2.0\r3.0\r", suffix=".csv", column=None)
def test_cli_fit_on_any_bytes_succeeds_or_says_why_in_one_line(
    content: bytes, suffix: str, column: str | None
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"scores{suffix}"
        path.write_bytes(content)
        options = [] if column is None else ["--column", column]
        code, out, err = run_cli("fit", str(path), *options)
    if code == 0:
        assert out.startswith("source ")
        assert err == ""
    else:
        assert_one_line_error(code, err)


@given(
    data=st.data(),
    n_columns=st.integers(1, 4),
    n_rows=st.integers(1, 40),
    header=st.booleans(),
    delimiter=st.sampled_from([",", "\t", ";", " "]),
)
def test_a_table_column_is_read_exactly(
    data: st.DataObject, n_columns: int, n_rows: int, header: bool, delimiter: str
) -> None:
    # Columns of small integers (labels, ids) hold fields that look like
    # column indices; the others hold any float, written exactly by repr().
    integer = data.draw(st.lists(st.booleans(), min_size=n_columns, max_size=n_columns))
    table = np.column_stack(
        [
            data.draw(
                arrays(np.float64, n_rows, elements=st.integers(-3, 3).map(float))
                if is_int
                else arrays(np.float64, n_rows, elements=ANY_FINITE)
            )
            for is_int in integer
        ]
    )
    names = [f"col{i}" for i in range(n_columns)]
    index = data.draw(st.integers(-n_columns, n_columns - 1))
    by_name = header and data.draw(st.booleans())
    column = names[index] if by_name else str(index)
    lines = [delimiter.join(names)] if header else []
    lines += [
        delimiter.join(
            str(int(v)) if is_int else repr(v)
            for v, is_int in zip(row, integer, strict=True)
        )
        for row in table.tolist()
    ]
    suffix = {",": ".csv", "\t": ".tsv"}.get(delimiter, ".txt")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"table{suffix}"
        path.write_text("\n".join(lines) + "\n")
        chosen = None if n_columns == 1 and not data.draw(st.booleans()) else column
        loaded = read_scores(str(path), column=chosen)
    np.testing.assert_array_equal(loaded.scores, table[:, index])


def test_a_numeric_first_row_is_data_even_if_it_holds_the_column_name(
    tmp_path: Path,
) -> None:
    # Found by the test above: `--column 0` on a headerless table whose first row
    # held a 0 took that row for a header, dropped it and read the wrong column.
    path = tmp_path / "scores.csv"
    path.write_text("0.93,0\n0.12,1\n0.5,0\n")
    assert read_scores(str(path), column="0").scores.tolist() == [0.93, 0.12, 0.5]
    assert read_scores(str(path), column="1").scores.tolist() == [0.0, 1.0, 0.0]


@given(content=st.binary(max_size=4_000))
def test_cli_snapshot_on_any_bytes_says_why_in_one_line(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "monitor.snapshot"
        path.write_bytes(content)
        code, _, err = run_cli("snapshot", str(path))
    assert_one_line_error(code, err)
    assert "snapshot: " in err


# --- scikit-learn wrapper --------------------------------------------------------


@given(scores=score_arrays(MODERATE, min_size=3, max_size=5_000))
def test_sklearn_wrapper_labels_as_fit(scores: Scores) -> None:
    from ltrend.sklearn import LTrendThreshold

    expected = ltrend.fit(scores)
    for shape in (scores, scores.reshape(-1, 1)):
        thresholder = LTrendThreshold().fit(shape)
        assert thresholder.threshold_ == expected.threshold
        np.testing.assert_array_equal(thresholder.labels_, expected.mask)
        np.testing.assert_array_equal(thresholder.predict(shape), expected.mask)
