"""A plain-NumPy reference of ``ltrend.fit``, kept obvious rather than fast.

It follows the method's contract step by step, and solves each least-squares fit
by ``numpy.linalg.lstsq`` on a column-scaled Vandermonde matrix, a different route
from the Rust core's closed-form orthogonal polynomials, so that agreement between
the two means something. The tests compare the two on many inputs.

Examples
--------
>>> import numpy as np
>>> from ltrend import reference
>>> scores = np.concatenate([np.linspace(1.0, 1.2, 200), [3.0, 4.5, 7.0]])
>>> reference.fit(scores).n_anomalies
3
"""

from __future__ import annotations

import math
from typing import Any, SupportsIndex

import numpy as np
import numpy.typing as npt

from ltrend._fit import DEFAULT_MAX_DEGREE
from ltrend._peel import DEFAULT_FENCE, DEFAULT_MAX_ROUNDS, PeelResult, peel_with
from ltrend._result import DegreeRow, Result, rank_abscissa
from ltrend._validation import (
    NanPolicy,
    as_scores,
    check_max_degree,
    check_method,
    check_nan_policy,
)

__all__ = ["fit", "peel"]

#: Beyond 2^400 squares and sums may overflow; below 2^-400 squares underflow.
_SAFE_EXPONENT = 400


def _scaled_variance(values: npt.NDArray[np.float64]) -> tuple[float, int]:
    """``var(values)`` with ddof = 0 as ``(v, k)``, the variance being ``v * 4**k``.

    ``(0.0, 0)`` exactly for a constant set. Variance ignores shifts, so it is
    taken of the distances from the minimum (which keeps the digits of a small
    spread far from zero, 1e100 + 1e91 noise, that np.var alone loses), and
    those are measured in units of a power of two near their largest, so that
    their squares neither underflow (a spread of 1e-200) nor overflow (1e200).
    """
    low, high = float(values.min()), float(values.max())
    if low == high:
        return 0.0, 0
    shift = 0
    with np.errstate(over="ignore"):
        if math.isinf(high - low):
            # Beyond the largest float: halve, which loses only subnormal digits.
            values, shift = np.ldexp(values, -1), 1
    distances = values - values.min()
    k = int(np.frexp(distances.max())[1])
    return float(np.var(np.ldexp(distances, -k))), k + shift


def _compactness(
    normal: npt.NDArray[np.float64], anomalous: npt.NDArray[np.float64]
) -> float:
    """``(var(A)/|A|) / (var(N)/|N|)`` with the contract's edge cases."""
    if normal.size == 0 or anomalous.size == 0:
        return float("nan")
    var_normal, k_normal = _scaled_variance(normal)
    if var_normal == 0.0:
        return float("inf")
    var_anomalous, k_anomalous = _scaled_variance(anomalous)
    ratio = (var_anomalous / anomalous.size) / (var_normal / normal.size)
    # The scale back, rounded once: +inf or 0 only beyond float64's range.
    with np.errstate(over="ignore", under="ignore"):
        return float(np.ldexp(ratio, 2 * (k_anomalous - k_normal)))


def _extreme_exponent(s: npt.NDArray[np.float64]) -> int:
    """``e`` with the largest ``|s|`` in ``[2^(e-1), 2^e)``, when outside ``2^±400``.

    0 (no rescaling) for scores of ordinary magnitude, as in the core.
    """
    largest = float(max(abs(s[0]), abs(s[-1])))
    if largest == 0.0:
        return 0
    exponent = int(np.frexp(largest)[1])
    return exponent if abs(exponent) > _SAFE_EXPONENT else 0


def _least_squares(
    t: npt.NDArray[np.float64], y: npt.NDArray[np.float64], degree: int
) -> npt.NDArray[np.float64]:
    """Power coefficients (ascending) of the degree-``degree`` fit of ``y`` on ``t``."""
    vandermonde = np.vander(t, degree + 1, increasing=True)
    column_norms = np.linalg.norm(vandermonde, axis=0)
    scaled, *_ = np.linalg.lstsq(vandermonde / column_norms, y, rcond=None)
    coefficients: npt.NDArray[np.float64] = scaled / column_norms
    return coefficients


def _in_safe_range(s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``s`` scaled by a power of two (exact) when beyond ``2^±400``, as the core
    does; a breakpoint is a rank, so it is the same on either."""
    exponent = _extreme_exponent(s)
    if not exponent:
        return s
    scaled: npt.NDArray[np.float64] = np.ldexp(s, -exponent)
    return scaled


def _two_segment_breakpoint(s: npt.NDArray[np.float64]) -> int | None:
    """The breakpoint of the best two-line least-squares fit of ``(i, s[i])``.

    Textbook route, different from the core's Welford states: prefix sums of
    ``x``, ``y``, ``x^2``, ``xy``, ``y^2`` (``y`` centred on the median and scaled
    by the spread, ``x`` the ranks over ``n``) and, per segment,
    ``SSE = Syy - Sy^2/m - (Sxy - Sx Sy/m)^2 / (Sxx - Sx^2/m)``.
    """
    n = s.size
    s = _in_safe_range(s)
    spread = float(s[-1] - s[0])
    if n < 4 or spread == 0.0:
        return None
    x = np.arange(n, dtype=np.float64) / n
    y = (s - np.median(s)) / spread

    def prefix(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.concatenate([[0.0], np.cumsum(values)])

    sums = [prefix(v) for v in (np.ones(n), x, y, x * x, x * y, y * y)]

    def sse(
        lo: npt.NDArray[np.intp], hi: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.float64]:
        m, sx, sy, sxx, sxy, syy = (p[hi] - p[lo] for p in sums)
        cxx = sxx - sx * sx / m
        cxy = sxy - sx * sy / m
        cyy = syy - sy * sy / m
        result: npt.NDArray[np.float64] = np.maximum(cyy - cxy * cxy / cxx, 0.0)
        return result

    k = np.arange(2, n - 1)
    k = k[s[k - 1] < s[k]]
    if k.size == 0:
        return None
    total = sse(np.zeros_like(k), k) + sse(k, np.full_like(k, n))
    # argmin keeps the first of equal values: ties go to the smallest k.
    return int(k[np.argmin(total)])


def _knee_breakpoint(s: npt.NDArray[np.float64]) -> int | None:
    """First rank above the point of ``(i, s[i])`` farthest below its chord."""
    n = s.size
    s = _in_safe_range(s)
    spread = float(s[-1] - s[0])
    if n < 3 or spread == 0.0:
        return None
    x = np.linspace(0.0, 1.0, n)
    # Signed distance below the chord from the first to the last point, in the
    # unit square (up to the factor 1/sqrt(2)).
    below = x - (s - s[0]) / spread
    knee = int(np.argmax(below))
    if below[knee] <= 0.0:
        return None
    return int(np.searchsorted(s, s[knee], side="right"))


def _log_curve(s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | None:
    """``sign(z) log1p(|z|)`` of ``z = (s - median) / (Q3 - Q1)`` (the unit is the
    mean absolute deviation from the median when the quartiles coincide); ``None``
    when the scores have no spread."""
    q1, median, q3 = np.percentile(s, [25.0, 50.0, 75.0])
    unit = float(q3 - q1)
    if unit <= 0.0:
        unit = float(np.mean(np.abs(s - median)))
    if not (unit > 0.0 and math.isfinite(unit)):
        return None
    distance = s - median
    with np.errstate(over="ignore", divide="ignore"):
        z = distance / unit
        # Where the ratio overflows, log1p(|z|) equals log|distance| - log(unit).
        magnitude = np.where(
            np.isfinite(z),
            np.log1p(np.abs(z)),
            np.log(np.abs(distance)) - math.log(unit),
        )
    curve: npt.NDArray[np.float64] = np.copysign(magnitude, distance)
    return curve


def _log_knee_breakpoint(s: npt.NDArray[np.float64]) -> int | None:
    """The knee of the signed-log curve: the split above its point farthest below
    its chord (the map is increasing, so the split is one of ``s`` too)."""
    if s.size < 3:
        return None
    curve = _log_curve(_in_safe_range(s))
    if curve is None:
        return None
    return _knee_breakpoint(curve)


def _knee_depth(curve: npt.NDArray[np.float64]) -> float:
    """How far the point of ``(i, curve[i])`` farthest below its chord lies below
    it in the unit square; 0 when no point is below."""
    spread = float(curve[-1] - curve[0])
    if spread == 0.0:
        return 0.0
    below = np.linspace(0.0, 1.0, curve.size) - (curve - curve[0]) / spread
    return max(float(below.max()), 0.0)


def _exponential_depth(n: int) -> float:
    """The knee depth of the signed-log curve of the exponential quantiles
    ``-log(1 - (i + 1/2) / n)`` (the Hazen positions)."""
    quantiles = -np.log1p(-(np.arange(n, dtype=np.float64) + 0.5) / n)
    curve = _log_curve(quantiles)
    return 0.0 if curve is None else _knee_depth(curve)


def _tail_aware_breakpoint(s: npt.NDArray[np.float64]) -> int | None:
    """The log knee when the signed-log curve is at least as bent as the
    exponential reference's, else the top ``round(sqrt(a b))`` scores (with their
    ties), ``a`` and ``b`` the counts of the raw knee and the two-line fit."""
    n = s.size
    if n < 3 or s[0] == s[-1]:
        return None
    curve = _log_curve(_in_safe_range(s))
    depth = 0.0 if curve is None else _knee_depth(curve)
    if depth > 0.0 and depth >= _exponential_depth(n):
        return _log_knee_breakpoint(s)
    counts = [
        n - k
        for k in (_knee_breakpoint(s), _two_segment_breakpoint(s))
        if k is not None
    ]
    if not counts:
        return None
    # Python's integers are exact: the nearest integer to sqrt(a * b) is never a
    # tie, since (c + 1/2)^2 is not an integer.
    product = math.prod(counts) if len(counts) == 2 else counts[0] ** 2
    root = math.isqrt(product)
    count = root + 1 if product > root * root + root else root
    return int(np.searchsorted(s, s[n - count], side="left"))


def _split_result(
    z: npt.NDArray[np.floating[Any]],
    finite: npt.NDArray[np.bool_],
    s: npt.NDArray[np.float64],
    breakpoint: int | None,
    n_bad: int,
    method: str,
) -> Result:
    threshold = float("inf") if breakpoint is None else float(s[breakpoint])
    mask = finite & (z.astype(np.float64) >= threshold)
    return Result(
        threshold=threshold,
        degree=None,
        mask=mask,
        table=(),
        sorted_scores=s,
        center=0.0,
        coefficients=np.zeros((0, 1)),
        n_omitted=n_bad,
        method=method,
        breakpoint=breakpoint,
    )


def fit(
    scores: npt.ArrayLike,
    *,
    max_degree: SupportsIndex = DEFAULT_MAX_DEGREE,
    nan_policy: NanPolicy = "raise",
    method: str = "paper",
) -> Result:
    """Reference twin of :func:`ltrend.fit`: same arguments, same ``Result``."""
    z = as_scores(scores)
    degree_cap = check_max_degree(max_degree)
    policy = check_nan_policy(nan_policy)
    check_method(method)

    finite = np.isfinite(z)
    n_bad = int(z.size - np.count_nonzero(finite))
    if n_bad and policy == "raise":
        first = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"scores: found {n_bad} NaN or infinite value(s), the first at index "
            f'{first}; remove them or pass nan_policy="omit" to leave them out'
        )
    s = np.sort(z[finite].astype(np.float64))
    n = s.size
    if n < 3:
        raise ValueError(
            f"scores: need at least 3 finite scores to fit a threshold, got {n}"
        )

    if method == "two_segment":
        return _split_result(z, finite, s, _two_segment_breakpoint(s), n_bad, method)
    if method == "knee":
        return _split_result(z, finite, s, _knee_breakpoint(s), n_bad, method)
    if method == "log_knee":
        return _split_result(z, finite, s, _log_knee_breakpoint(s), n_bad, method)
    if method == "tail_aware":
        return _split_result(z, finite, s, _tail_aware_breakpoint(s), n_bad, method)

    top = min(degree_cap, n - 2)
    t = rank_abscissa(n)
    # Fitting s * 2^-e is exact (powers of two commute with every step) and keeps
    # squares from overflowing or underflowing when the scores are extreme.
    exponent = _extreme_exponent(s)
    work = np.ldexp(s, -exponent)
    coefficients = np.zeros((top, top + 1))
    rows = []
    for degree in range(1, top + 1):
        beta = _least_squares(t, work, degree)
        tau = float(np.max(np.polynomial.polynomial.polyval(t, beta)))
        # A fit that rises past the largest float maps back to +inf, above every
        # score; one that maps back to a subnormal rounds. Either way the split
        # is the one that threshold makes on the scores as given (METHOD.md
        # step 4), as the mask does.
        with np.errstate(over="ignore", under="ignore"):
            coefficients[degree - 1, : degree + 1] = np.ldexp(beta, exponent)
            threshold = float(np.ldexp(tau, exponent))
        normal, anomalous = s[s < threshold], s[s >= threshold]
        rows.append(
            DegreeRow(
                degree, threshold, _compactness(normal, anomalous), anomalous.size
            )
        )

    candidates = [row for row in rows if not np.isnan(row.compactness)]
    if candidates:
        # max() keeps the first of equal values: ties go to the lowest degree.
        best = max(candidates, key=lambda row: row.compactness)
        threshold, chosen = best.threshold, best.degree
    else:
        threshold, chosen = float("inf"), None
    mask = finite & (z.astype(np.float64) >= threshold)
    return Result(
        threshold=threshold,
        degree=chosen,
        mask=mask,
        table=tuple(rows),
        sorted_scores=s,
        center=0.0,
        coefficients=coefficients,
        n_omitted=n_bad,
        method=method,
    )


def peel(
    scores: npt.ArrayLike,
    *,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    fence: float = DEFAULT_FENCE,
    max_degree: SupportsIndex = DEFAULT_MAX_DEGREE,
    nan_policy: NanPolicy = "raise",
    method: str = "paper",
) -> PeelResult:
    """Reference twin of :func:`ltrend.peel`, built on the reference :func:`fit`."""
    return peel_with(
        fit,
        scores,
        max_rounds=max_rounds,
        fence=fence,
        max_degree=max_degree,
        nan_policy=nan_policy,
        method=method,
    )
