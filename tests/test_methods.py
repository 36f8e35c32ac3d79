"""The L-trend methods of ``ltrend.fit(..., method=...)``: core against reference.

Every method is checked three ways: against its NumPy twin in
``ltrend.reference`` on random, adversarial and real scores; against a
brute-force or closed-form statement of its rule; and on hand-worked curves.
``method="paper"`` is also pinned to the reference's paper path, computed
independently, so that adding methods cannot change it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import ltrend
from ltrend import reference

from parity import assert_agree
from split_parity import (
    TIE_RTOL,
    _core_view,
    _exponential_depth,
    _knee_depth,
    _log_curve,
    _log_knee_depth,
    _log_knee_depth_of,
    _two_segment_sse,
)

MAX_EXAMPLES = int(os.environ.get("LTREND_HYPOTHESIS_EXAMPLES", "200"))
SPLIT_METHODS = tuple(m for m in ltrend.METHODS if m != "paper")

FloatArray = npt.NDArray[np.float64]


def _curves() -> st.SearchStrategy[FloatArray]:
    """Scores with ties, L shapes, offsets and tiny spreads."""
    base = arrays(
        np.float64,
        st.integers(3, 80),
        elements=st.floats(-1e3, 1e3, allow_nan=False, width=64),
    )
    tied = arrays(
        np.float64, st.integers(3, 80), elements=st.sampled_from([0.0, 1.0, 2.0, 7.5])
    )
    return st.tuples(
        st.one_of(base, tied),
        st.sampled_from([0.0, 1e6]),
        st.integers(0, 4),
        st.sampled_from([0, 0, -700, 700]),
    ).map(
        lambda t: np.ldexp(
            np.concatenate([t[0], 50.0 + 10.0 * np.arange(t[2])]) + t[1], t[3]
        )
    )


def _tail_aware_of(scores: FloatArray, fit: Any) -> int | None:
    """``tail_aware``'s breakpoint composed, as docs/methods.md states it, from
    the other methods of one implementation (``ltrend.fit`` or the reference)."""
    s = _core_view(np.sort(scores[np.isfinite(scores)]))
    if s[0] == s[-1]:
        return None
    if _log_knee_depth_of(s) >= _exponential_depth(s.size):
        found: int | None = fit(scores, method="log_knee").breakpoint
        return found
    counts = [
        n
        for n in (fit(scores, method=m).n_anomalies for m in ("knee", "two_segment"))
        if n > 0
    ]
    if not counts:
        return None
    product = counts[0] * counts[-1]
    count = round(math.sqrt(product))  # exact: sqrt(product) is never a half
    return int(np.searchsorted(s, s[s.size - count], side="left"))


def _knee_point(s: FloatArray, breakpoint: int) -> int:
    """The last normal point: the last rank below the breakpoint's score."""
    return breakpoint - 1


def assert_split_parity(scores: FloatArray, method: str) -> None:
    """Core and reference choose the same split, or two tied candidates."""
    core = ltrend.fit(scores, method=method)
    twin = reference.fit(scores, method=method)
    original = np.sort(scores[np.isfinite(scores)])
    s = _core_view(original)
    assert core.degree is None
    assert core.table == ()
    if core.breakpoint == twin.breakpoint:
        assert core.threshold == twin.threshold
        np.testing.assert_array_equal(core.mask, twin.mask)
    elif method == "tail_aware":
        # Each twin is its own composition of the methods checked above; they may
        # differ only where those do, or where the depth ties the reference's.
        bent, bar = _log_knee_depth_of(s), _exponential_depth(s.size)
        if not math.isclose(bent, bar, rel_tol=TIE_RTOL, abs_tol=1e-12):
            assert core.breakpoint == _tail_aware_of(scores, ltrend.fit)
            assert twin.breakpoint == _tail_aware_of(scores, reference.fit)
    else:
        assert core.breakpoint is not None
        assert twin.breakpoint is not None
        if method == "two_segment":
            a = _two_segment_sse(s, core.breakpoint)
            b = _two_segment_sse(s, twin.breakpoint)
            scale = max(abs(a), abs(b), float(np.var(s)) * s.size * 1e-12)
            assert abs(a - b) <= TIE_RTOL * scale + 1e-12 * scale
        else:
            depth = _log_knee_depth if method == "log_knee" else _knee_depth
            a = depth(s, _knee_point(s, core.breakpoint))
            b = depth(s, _knee_point(s, twin.breakpoint))
            assert math.isclose(a, b, rel_tol=TIE_RTOL, abs_tol=1e-12)
    # Whatever was chosen, the result is self-consistent.
    if core.breakpoint is None:
        assert core.threshold == math.inf
        assert core.n_anomalies == 0
    else:
        assert core.threshold == original[core.breakpoint]
        assert core.n_anomalies == s.size - core.breakpoint
        assert s[core.breakpoint - 1] < s[core.breakpoint]
    np.testing.assert_array_equal(core.mask, scores >= core.threshold)


@pytest.mark.parametrize("method", SPLIT_METHODS)
@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(scores=_curves())
def test_split_methods_match_the_reference(method: str, scores: FloatArray) -> None:
    assert_split_parity(scores, method)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(scores=_curves())
def test_two_segment_is_the_best_breakpoint(scores: FloatArray) -> None:
    """No cut between distinct scores has a smaller two-line error (brute force)."""
    result = ltrend.fit(scores, method="two_segment")
    s = _core_view(np.sort(scores))
    candidates = [k for k in range(2, s.size - 1) if s[k - 1] < s[k]]
    if not candidates:
        assert result.breakpoint is None
        return
    assert result.breakpoint in candidates
    errors = np.array([_two_segment_sse(s, k) for k in candidates])
    chosen = _two_segment_sse(s, result.breakpoint)
    scale = max(float(np.abs(errors).max()), 1e-300)
    assert chosen <= errors.min() + 1e-9 * scale


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(scores=_curves())
def test_knee_is_the_point_farthest_below_the_chord(scores: FloatArray) -> None:
    result = ltrend.fit(scores, method="knee")
    s = _core_view(np.sort(scores))
    if s[-1] == s[0]:
        assert result.breakpoint is None
        return
    depth = np.array([_knee_depth(s, i) for i in range(s.size)])
    if depth.max() <= 0.0:
        assert result.breakpoint is None
        return
    assert result.breakpoint is not None
    knee = _knee_point(s, result.breakpoint)
    assert depth[knee] >= depth.max() - 1e-12
    # Everything above the knee point's score is anomalous, nothing at or below.
    assert result.n_anomalies == int(np.count_nonzero(s > s[knee]))


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(scores=_curves())
def test_log_knee_is_the_knee_of_the_signed_log_curve(scores: FloatArray) -> None:
    result = ltrend.fit(scores, method="log_knee")
    s = _core_view(np.sort(scores))
    curve = _log_curve(s)
    if curve is None or curve[-1] == curve[0]:
        assert result.breakpoint is None
        return
    depth = np.array([_knee_depth(curve, i) for i in range(s.size)])
    if depth.max() <= 1e-12:
        # At most a rounding-level dent below the chord: either answer is right.
        return
    assert result.breakpoint is not None
    knee = _knee_point(s, result.breakpoint)
    assert depth[knee] >= depth.max() - 1e-9
    assert result.n_anomalies == int(np.count_nonzero(s > s[knee]))


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(scores=_curves())
def test_tail_aware_picks_its_scale_by_the_exponential_reference(
    scores: FloatArray,
) -> None:
    s = _core_view(np.sort(scores))
    depth, bar = _log_knee_depth_of(s), _exponential_depth(s.size)
    if math.isclose(depth, bar, rel_tol=1e-9, abs_tol=1e-12):
        return  # a tie between the two scales: either is right
    result = ltrend.fit(scores, method="tail_aware")
    assert result.breakpoint == _tail_aware_of(scores, ltrend.fit)
    if depth > bar:
        assert result.breakpoint == ltrend.fit(scores, method="log_knee").breakpoint


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(scores=_curves())
def test_paper_is_unchanged(scores: FloatArray) -> None:
    """``method="paper"`` is the default and still the paper's path: it agrees
    with the reference's independent paper computation by the contract's rule."""
    core = ltrend.fit(scores, method="paper")
    default = ltrend.fit(scores)
    assert core.threshold == default.threshold
    assert core.degree == default.degree
    np.testing.assert_equal(core.table, default.table)  # NaN rows compare equal
    np.testing.assert_array_equal(core.mask, default.mask)
    assert core.breakpoint is None
    assert_agree(core, reference.fit(scores, method="paper"), scores)


# ---------------------------------------------------------------- hand-worked cases


@pytest.mark.parametrize("method", SPLIT_METHODS)
def test_a_clean_l_is_cut_at_its_corner(method: str) -> None:
    # Base 0, 1, ..., 9 (slope 1) and branch 100, 200, 300 (slope 100): two lines
    # fit exactly when split at rank 10, and the knee (x - y largest) is rank 9.
    scores = np.concatenate([np.arange(10.0), [100.0, 200.0, 300.0]])
    for impl in (ltrend.fit, reference.fit):
        result = impl(scores[::-1].copy(), method=method)
        assert (result.breakpoint, result.threshold, result.n_anomalies) == (
            10,
            100.0,
            3,
        )
        np.testing.assert_array_equal(result.mask, scores[::-1] >= 100.0)


def test_two_segment_worked_example() -> None:
    # s = 0, 0, 1, 1, 5, 9: the cuts between distinct scores with two points a
    # side are k = 2 (0 0 | 1 1 5 9) and k = 4 (0 0 1 1 | 5 9).
    # k = 4: the right side has two points (error 0); the left, 0 0 1 1 on
    # x = 0..3, gets the line 0.4 x - 0.1, residuals 0.1 -0.3 0.3 -0.1, error 0.2.
    # k = 2: the right side 1 1 5 9 on x = 2..5 gets the line 2.8 x - 5.8,
    # residuals 1.2 -1.6 -0.4 0.8, error 4.8; the left side is exact.
    scores = np.array([0.0, 0.0, 1.0, 1.0, 5.0, 9.0])
    assert math.isclose(_two_segment_sse(scores, 4), 0.2, rel_tol=1e-12)
    assert math.isclose(_two_segment_sse(scores, 2), 4.8, rel_tol=1e-12)
    for impl in (ltrend.fit, reference.fit):
        result = impl(scores, method="two_segment")
        assert (result.breakpoint, result.threshold) == (4, 5.0)


def test_knee_worked_example() -> None:
    # s = 0, 0, 0, 0, 1, 1, 10 on x = i/6: x - y = 0, 1/6, 2/6, 3/6, 4/6 - 0.1,
    # 5/6 - 0.1, 0. The knee is rank 5 (the last 1); only 10 lies above it.
    scores = np.array([1.0, 0.0, 10.0, 0.0, 1.0, 0.0, 0.0])
    for impl in (ltrend.fit, reference.fit):
        result = impl(scores, method="knee")
        assert (result.breakpoint, result.threshold, result.n_anomalies) == (6, 10.0, 1)


def test_log_knee_worked_example() -> None:
    # Base 0.00 .. 0.19 (20 scores), a branch 1.0, 1.5 and one far score 100.
    # Median 0.11, Q1 0.055, Q3 0.165, unit 0.11; the log curve runs from
    # ln(1 + 1) at 0 (negative side) to ln(1 + 99.89/0.11) = 6.81 at 100. Rank 19
    # (0.19, log 0.55) lies 0.70 below the chord, rank 20 (1.0, log 2.21) 0.52 and
    # rank 21 (1.5, log 2.61) 0.51, so the knee is rank 19 and 1.0, 1.5, 100 are
    # anomalous. The plain knee, scaled by 100, puts its knee at rank 21.
    scores = np.concatenate([np.arange(20) * 0.01, [1.0, 1.5, 100.0]])
    for impl in (ltrend.fit, reference.fit):
        found = impl(scores[::-1].copy(), method="log_knee")
        assert (found.breakpoint, found.threshold, found.n_anomalies) == (20, 1.0, 3)
        assert impl(scores, method="knee").breakpoint == 22


def test_log_knee_reads_a_tied_majority_through_the_mean_deviation() -> None:
    # Five of six scores tie at 0, so Q1 == Q3 and the unit is the mean absolute
    # deviation from the median, 5/6: the curve is 0 x5 then ln(1 + 6) and the
    # knee is the last 0.
    scores = np.array([0.0, 0.0, 5.0, 0.0, 0.0, 0.0])
    for impl in (ltrend.fit, reference.fit):
        found = impl(scores, method="log_knee")
        assert (found.breakpoint, found.threshold, found.n_anomalies) == (5, 5.0, 1)


def test_tail_aware_worked_examples() -> None:
    # Light tail: median 1, Q1 0, Q3 1, so the log curve is -ln 3, -ln 2 (x3),
    # 0 (x4), ln 2 (x2), whose knee (rank 7) lies 7/9 - ln 3 / ln 6 = 0.165
    # below the chord, less than the exponential reference for n = 10 (0.206).
    # knee flags the two 2s, two_segment the six 1s and 2s: sqrt(12) = 3.46, so
    # the top 3, and rank 7 is a 1 whose run starts at rank 4.
    light = np.array([1.0, 0.0, 2.0, 1.0, -1.0, 0.0, 1.0, 2.0, 0.0, 1.0])
    assert math.isclose(
        _log_knee_depth_of(np.sort(light)), 7 / 9 - math.log(3) / math.log(6)
    )
    assert 0.2 < _exponential_depth(10) < 0.21
    # Heavy tail: base 0.00 .. 0.19, branch 1.0, 1.5 and a far 100 (the log_knee
    # worked example, depth 0.70 against 0.24): the log knee's three anomalies.
    heavy = np.concatenate([np.arange(20) * 0.01, [1.0, 1.5, 100.0]])
    assert _log_knee_depth_of(heavy) > 0.69 > 0.25 > _exponential_depth(23)
    for impl in (ltrend.fit, reference.fit):
        found = impl(light, method="tail_aware")
        assert (found.breakpoint, found.threshold, found.n_anomalies) == (4, 1.0, 6)
        assert impl(light, method="log_knee").n_anomalies == 2
        found = impl(heavy[::-1].copy(), method="tail_aware")
        assert (found.breakpoint, found.threshold, found.n_anomalies) == (20, 1.0, 3)


@pytest.mark.parametrize(
    ("method", "scores"),
    [
        ("two_segment", np.full(7, 2.5)),
        # Three scores cannot give two points to each side.
        ("two_segment", np.array([0.0, 1.0, 9.0])),
        # The only cut between distinct scores leaves one point on top.
        ("two_segment", np.array([0.0, 0.0, 0.0, 0.0, 1.0])),
        ("knee", np.full(7, 2.5)),
        ("knee", np.array([1.0, 2.0, 3.0, 4.0, 5.0])),
        ("knee", np.array([0.0, 4.0, 5.0])),
        ("log_knee", np.full(7, 2.5)),
        # Median 4, unit Q3 - Q1 = 2.5: the log curve -0.96, 0, 0.34 is concave.
        ("log_knee", np.array([0.0, 4.0, 5.0])),
        ("tail_aware", np.full(7, 2.5)),
        # Light (no log knee at all), the raw knee sees a concave curve and
        # three scores are too few for two_segment.
        ("tail_aware", np.array([0.0, 4.0, 5.0])),
    ],
    ids=[
        "2seg-constant",
        "2seg-three",
        "2seg-lone-top",
        "knee-constant",
        "knee-straight",
        "knee-concave",
        "log-knee-constant",
        "log-knee-concave",
        "tail-aware-constant",
        "tail-aware-concave",
    ],
)
def test_no_split_flags_nothing(method: str, scores: FloatArray) -> None:
    for impl in (ltrend.fit, reference.fit):
        result = impl(scores, method=method)
        assert result.breakpoint is None
        assert result.threshold == math.inf
        assert result.n_anomalies == 0
        assert not result.mask.any()


@pytest.mark.parametrize("method", SPLIT_METHODS)
def test_options_and_errors_are_shared_with_paper(method: str) -> None:
    scores = np.array([0.1, np.nan, 0.3, 0.2, 9.0, 0.25, 8.0, np.inf])
    with pytest.raises(ValueError, match="NaN or infinite"):
        ltrend.fit(scores, method=method)
    result = ltrend.fit(scores, method=method, nan_policy="omit")
    assert result.n_omitted == 2
    assert not result.mask[[1, 7]].any()
    with pytest.raises(ValueError, match="at least 3"):
        ltrend.fit([1.0, 2.0], method=method)
    with pytest.raises(ValueError, match="max_degree"):
        ltrend.fit(scores, method=method, max_degree=0, nan_policy="omit")
    as32 = ltrend.fit(
        np.array([0.0, 0.1, 0.2, 0.3, 5.0, 6.0], np.float32), method=method
    )
    as64 = ltrend.fit(
        np.array([0.0, 0.1, 0.2, 0.3, 5.0, 6.0], np.float32).astype(float),
        method=method,
    )
    assert (as32.threshold, as32.breakpoint) == (as64.threshold, as64.breakpoint)


@pytest.mark.parametrize("method", SPLIT_METHODS)
@pytest.mark.parametrize("exponent", [-1060, -700, 700, 1020])
def test_extreme_magnitudes_split_like_ordinary_ones(
    method: str, exponent: int
) -> None:
    base = np.concatenate([np.arange(40) % 7 * 0.1, [3.0, 3.5, 4.5]])
    plain = ltrend.fit(base, method=method)
    for impl in (ltrend.fit, reference.fit):
        scaled = impl(np.ldexp(base, exponent), method=method)
        assert scaled.breakpoint == plain.breakpoint
        assert scaled.threshold == np.ldexp(plain.threshold, exponent)


def test_unknown_methods_are_refused() -> None:
    with pytest.raises(ValueError, match="method"):
        ltrend.fit([1.0, 2.0, 3.0], method="Knee")
    with pytest.raises(ValueError, match="method"):
        reference.fit([1.0, 2.0, 3.0], method="linear")
    assert ltrend.METHODS[0] == "paper"
    assert set(ltrend.METHODS) == {"paper", *SPLIT_METHODS}


@pytest.mark.parametrize("method", SPLIT_METHODS)
def test_result_explains_a_split(method: str) -> None:
    scores = np.concatenate([np.linspace(1.0, 1.2, 50), [3.0, 4.0]])
    result = ltrend.fit(scores, method=method)
    assert result.to_dict()["breakpoint"] == result.breakpoint == 50
    assert method in str(result)
    with pytest.raises(ValueError, match="fits no polynomial"):
        result.fitted_curve()


# ---------------------------------------------------------------- real scores


def _data_dir() -> Path | None:
    here = Path(__file__).resolve().parents[1]
    for path in (
        Path(os.environ.get("LTREND_DATA", "/nonexistent")),
        here.parent / "shared" / "data",
        Path("/work/shared/data"),
    ):
        if (path / "adbench").is_dir():
            return path
    return None


def _real_scores() -> list[tuple[str, FloatArray]]:
    root = _data_dir()
    if root is None:
        return []
    found = []
    for name in (
        "CV_by_ResNet18/CIFAR10_0",
        "CV_by_ResNet18/MVTec-AD_screw",
        "Classical/6_cardio",
    ):
        path = root / "adbench" / f"{name}.npz"
        if not path.is_file():
            continue
        with np.load(path) as archive:
            x = archive["X"].astype(np.float64)
        centred = x - x.mean(axis=0)
        found.append((name, np.einsum("ij,ij->i", centred, centred)))
    return found


@pytest.mark.parametrize("method", ltrend.METHODS)
def test_methods_agree_on_real_scores(method: str) -> None:
    real = _real_scores()
    if not real:
        pytest.skip("shared benchmark data not found (set LTREND_DATA)")
    for _, scores in real:
        if method == "paper":
            core, twin = ltrend.fit(scores), reference.fit(scores)
            assert core.degree == twin.degree
            assert math.isclose(core.threshold, twin.threshold, rel_tol=1e-9)
        else:
            assert_split_parity(scores, method)
            assert_split_parity(scores.astype(np.float32), method)


def _cached_benchmark_scores() -> list[FloatArray]:
    """The score sets of ``benches/quality.py``, if its cache is present."""
    cache = Path(__file__).resolve().parents[1] / "benches" / ".cache" / "scores"
    found = []
    for path in sorted(cache.glob("*.npz")):
        with np.load(path) as archive:
            found.append(archive["scores"].astype(np.float64))
    return found


@pytest.mark.parametrize("method", SPLIT_METHODS)
def test_methods_agree_on_the_benchmark_scores(method: str) -> None:
    cached = _cached_benchmark_scores()
    if not cached:
        pytest.skip("no benchmark score cache (run python benches/quality.py)")
    for scores in cached:
        assert_split_parity(scores, method)
