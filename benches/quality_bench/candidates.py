"""Methods of the L-trend family studied before any went into the Rust core.

Each is a plain NumPy function ``scores -> mask`` on the sorted curve
``(i, s[i])``; ``benches/method_study.py`` scores them on the benchmark's cached
scores and picks by leave-one-group-out. The winners live in ``ltrend.fit``
(``method=...``); the rest stay here as the record of what was tried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

import ltrend

FloatArray = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Candidate = Callable[[FloatArray], Mask]

#: Tukey's bisquare constant (95 % efficiency under Gaussian noise).
BISQUARE_C = 4.685
#: Reweighting rounds of the robust fits; they settle well before this.
IRLS_ROUNDS = 20
#: The skew-normal shapes a light tail's base is tried against (0 is Gaussian).
SKEW_SHAPE_MAX = 10.0
SKEW_SHAPES = 41


def _top(scores: FloatArray, count: float) -> Mask:
    """The ``count`` highest scores (rounded, at least 1, at most n - 1)."""
    s = np.sort(scores)
    k = int(np.clip(round(count), 1, s.size - 1))
    return scores >= s[s.size - k]


def fit_method(method: str, **options: int) -> Candidate:
    """``ltrend.fit(scores, method=method, **options).mask``."""

    def apply(scores: FloatArray) -> Mask:
        return ltrend.fit(scores, method=method, **options).mask

    return apply


def paper_loosest(scores: FloatArray) -> Mask:
    """The paper's candidates, but the lowest candidate threshold wins."""
    result = ltrend.fit(scores)
    taus = [r.threshold for r in result.table if not np.isnan(r.compactness)]
    return scores >= min(taus) if taus else result.mask


def peel(scores: FloatArray) -> Mask:
    """The iterative cleaning of METHOD.md (``ltrend.peel``)."""
    return ltrend.peel(scores).mask


def _bisquare_fit(t: FloatArray, y: FloatArray, degree: int) -> FloatArray:
    """Fitted values of a robust (IRLS, Tukey bisquare) polynomial fit."""
    design = np.vander(t, degree + 1, increasing=True)
    weights = np.ones_like(y)
    fitted = y
    for _ in range(IRLS_ROUNDS):
        root = np.sqrt(weights)
        beta, *_ = np.linalg.lstsq(design * root[:, None], y * root, rcond=None)
        fitted = design @ beta
        residual = y - fitted
        scale = 1.4826 * float(np.median(np.abs(residual))) or 1e-12
        u = residual / (BISQUARE_C * scale)
        weights = np.where(np.abs(u) < 1.0, (1.0 - u * u) ** 2, 0.0)
    return fitted


def robust_paper(max_degree: int) -> Candidate:
    """The paper's method with robust (IRLS bisquare) polynomial fits."""

    def apply(scores: FloatArray) -> Mask:
        s = np.sort(scores)
        t = np.linspace(-1.0, 1.0, s.size)
        centre = float(np.median(s))
        best: tuple[float, float] | None = None
        for degree in range(1, min(max_degree, s.size - 2) + 1):
            tau = float(np.max(_bisquare_fit(t, s - centre, degree))) + centre
            normal, anomalous = s[s < tau], s[s >= tau]
            if normal.size == 0 or anomalous.size == 0:
                continue
            var_n = float(normal.var())
            comp = (
                np.inf
                if var_n == 0
                else (anomalous.var() / anomalous.size) / (var_n / normal.size)
            )
            if best is None or comp > best[0]:
                best = (float(comp), tau)
        if best is None:
            return np.zeros(scores.shape, dtype=bool)
        return scores >= best[1]

    return apply


def hinge(scores: FloatArray) -> Mask:
    """Continuous two-segment fit: ``a + b i + c max(0, i - k)``, best ``k``."""
    y = np.sort(scores)
    n = y.size
    t = np.arange(n, dtype=np.float64) / (n - 1)
    v = (y - np.median(y)) / (np.ptp(y) or 1.0)

    def suffix(a: FloatArray) -> FloatArray:
        return np.concatenate([np.cumsum(a[::-1])[::-1], [0.0]])

    n_s, t_s, tt_s, y_s, ty_s = (suffix(a) for a in (np.ones(n), t, t * t, v, t * v))
    ks = np.arange(2, n - 2)
    kk = t[ks]
    sh = t_s[ks] - kk * n_s[ks]
    shh = tt_s[ks] - 2 * kk * t_s[ks] + kk * kk * n_s[ks]
    sth = tt_s[ks] - kk * t_s[ks]
    shy = ty_s[ks] - kk * y_s[ks]
    a = np.empty((ks.size, 3, 3))
    b = np.empty((ks.size, 3))
    a[:, 0, 0], a[:, 0, 1], a[:, 1, 1] = n, t.sum(), (t * t).sum()
    a[:, 1, 0] = a[:, 0, 1]
    a[:, 0, 2] = a[:, 2, 0] = sh
    a[:, 1, 2] = a[:, 2, 1] = sth
    a[:, 2, 2] = shh
    b[:, 0], b[:, 1], b[:, 2] = v.sum(), (t * v).sum(), shy
    beta = np.linalg.solve(a, b[..., None])[..., 0]
    sse = (v * v).sum() - np.einsum("ij,ij->i", beta, b)
    k = int(ks[np.argmin(sse)])
    return scores >= y[k]


def knee_slope(factor: float) -> Candidate:
    """The point farthest below the line of ``factor`` times the chord's slope."""

    def apply(scores: FloatArray) -> Mask:
        s = np.sort(scores)
        if s[-1] == s[0]:
            return np.zeros(scores.shape, dtype=bool)
        depth = factor * np.linspace(0.0, 1.0, s.size) - (s - s[0]) / (s[-1] - s[0])
        k = int(np.argmax(depth))
        return scores > s[k]

    return apply


def signed_log(scores: FloatArray, unit: float = 1.0) -> FloatArray:
    """``sign(z) log(1 + |z|)`` of ``z = (s - median) / (unit * IQR)``.

    The curve's tail is compressed so that the knee is read on the shape of the
    base as much as on the height of the largest scores.
    """
    s = np.asarray(scores, dtype=np.float64)
    q1, median, q3 = np.percentile(s, [25.0, 50.0, 75.0])
    scale = float(q3 - q1) or float(np.mean(np.abs(s - median))) or 1.0
    z = (s - median) / (unit * scale)
    return np.sign(z) * np.log1p(np.abs(z))


def log_knee(unit: float = 1.0, top: float = 1.0) -> Candidate:
    """The knee (``knee_slope(1)``) of the sorted curve after :func:`signed_log`,
    optionally on its top ``top`` share only (``unit=1, top=1`` is
    ``method="log_knee"``, which the study calls through ``ltrend.fit``)."""

    def apply(scores: FloatArray) -> Mask:
        s = np.sort(scores)
        start = int(s.size * (1.0 - top))
        t = signed_log(s, unit)[start:]
        if t[-1] == t[0]:
            return np.zeros(scores.shape, dtype=bool)
        depth = np.linspace(0.0, 1.0, t.size) - (t - t[0]) / (t[-1] - t[0])
        k = int(np.argmax(depth))
        if depth[k] <= 0.0:
            return np.zeros(scores.shape, dtype=bool)
        return scores > s[start + k]

    return apply


def log_two_segment(scores: FloatArray) -> Mask:
    """The two-segment fit of the sorted curve after :func:`signed_log`."""
    s = np.sort(scores)
    found = ltrend.fit(signed_log(s), method="two_segment")
    if found.breakpoint is None:
        return np.zeros(scores.shape, dtype=bool)
    return scores >= s[found.breakpoint]


def _log_knee_depth(sorted_scores: FloatArray) -> float:
    """How far the signed-log curve's knee lies below its chord (0 if nowhere)."""
    t = signed_log(sorted_scores)
    if t[-1] == t[0]:
        return 0.0
    depth = np.linspace(0.0, 1.0, t.size) - (t - t[0]) / (t[-1] - t[0])
    return max(float(depth.max()), 0.0)


def reference_depth(n: int, sample: str = "exponential") -> float:
    """The log-knee depth of a reference distribution's quantiles at the Hazen
    positions ``(i + 1/2) / n`` (the depth is the same for any location and
    scale of the distribution)."""
    p = (np.arange(n) + 0.5) / n
    if sample == "exponential":
        quantiles = -np.log1p(-p)
    else:
        from scipy.stats import norm

        quantiles = norm.ppf(p)
    return _log_knee_depth(quantiles)


def by_tail(
    light: Candidate, sample: str = "exponential", factor: float = 1.0
) -> Candidate:
    """``log_knee`` when the signed-log curve bends at least as much as the
    reference sample's (``factor`` times its depth), else ``light``."""
    heavy = fit_method("log_knee")

    def apply(scores: FloatArray) -> Mask:
        s = np.sort(scores)
        if _log_knee_depth(s) >= factor * reference_depth(s.size, sample):
            return heavy(scores)
        return light(scores)

    return apply


def consensus_of_splits(*members: Candidate) -> Candidate:
    """The geometric mean of the members' anomaly counts, rounded, flagged as
    the top scores (the whole tie run at the cut); members that find no split
    are left out, and none at all flags nothing."""

    def apply(scores: FloatArray) -> Mask:
        counts = [int(m(scores).sum()) for m in members]
        counts = [c for c in counts if c > 0]
        if not counts:
            return np.zeros(scores.shape, dtype=bool)
        return _top(scores, float(np.exp(np.mean(np.log(counts)))))

    return apply


def knee_above_log_knee(scores: FloatArray) -> Mask:
    """The knee of the signed-log curve's part above its own knee (the L within
    the L): a tighter cut than ``log_knee``."""
    s = np.sort(scores)
    t = signed_log(s)
    if t[-1] == t[0]:
        return np.zeros(scores.shape, dtype=bool)
    first = int(np.argmax(np.linspace(0.0, 1.0, t.size) - (t - t[0]) / (t[-1] - t[0])))
    top = t[first:]
    if top.size < 3 or top[-1] == top[0]:
        return scores > s[first]
    depth = np.linspace(0.0, 1.0, top.size) - (top - top[0]) / (top[-1] - top[0])
    return scores > s[first + int(np.argmax(depth))]


def by_tail_inverse() -> Candidate:
    """The tight :func:`knee_above_log_knee` where the log curve bends at least
    as much as an exponential sample's, ``log_knee`` where less."""
    loose = fit_method("log_knee")

    def apply(scores: FloatArray) -> Mask:
        s = np.sort(scores)
        if _log_knee_depth(s) >= reference_depth(s.size):
            return knee_above_log_knee(scores)
        return loose(scores)

    return apply


def two_segment_top(share: float) -> Candidate:
    """The two-segment fit of the top ``share`` of the sorted curve only."""

    def apply(scores: FloatArray) -> Mask:
        s = np.sort(scores)
        start = int(s.size * (1.0 - share))
        top = ltrend.fit(s[start:], method="two_segment")
        return scores >= top.threshold

    return apply


def consensus(*members: Candidate) -> Candidate:
    """Flag the geometric mean of the members' anomaly counts (top scores)."""

    def apply(scores: FloatArray) -> Mask:
        counts = [max(int(m(scores).sum()), 1) for m in members]
        return _top(scores, float(np.exp(np.mean(np.log(counts)))))

    return apply


def _knee_point(curve: FloatArray) -> tuple[int, float]:
    """The first maximum of ``x - y`` in the unit square, and its depth."""
    if curve[-1] == curve[0]:
        return 0, 0.0
    depth = np.linspace(0.0, 1.0, curve.size) - (curve - curve[0]) / (
        curve[-1] - curve[0]
    )
    k = int(np.argmax(depth))
    return k, float(depth[k])


def knee_within_branch(scores: FloatArray) -> Mask:
    """``tail_aware``, then the signed-log knee of its own anomalies when they
    bend at least as much as an exponential sample of their size (an exponential
    tail above any cut is again exponential, so the same reference applies)."""
    s = np.sort(scores)
    count = int(ltrend.fit(scores, method="tail_aware").n_anomalies)
    if count < 3:
        return scores >= s[s.size - count] if count else scores > s[-1]
    branch = s[s.size - count :]
    k, depth = _knee_point(signed_log(branch))
    if depth <= 0.0 or depth < reference_depth(count):
        return scores >= branch[0]
    return scores > branch[k]


def two_levels(log_scale: bool) -> Candidate:
    """The best two-level (piecewise-constant) fit of the sorted curve, which is
    Otsu's split; on the signed-log curve when ``log_scale``."""

    def apply(scores: FloatArray) -> Mask:
        s = np.sort(scores)
        v = signed_log(s) if log_scale else (s - np.median(s)) / (np.ptp(s) or 1.0)
        n = v.size
        total, squares = np.cumsum(v), np.cumsum(v * v)
        k = np.arange(1, n)
        below = squares[k - 1] - total[k - 1] ** 2 / k
        above = (squares[-1] - squares[k - 1]) - (total[-1] - total[k - 1]) ** 2 / (
            n - k
        )
        return scores >= s[int(k[np.argmin(below + above)])]

    return apply


def _law(reference: str) -> Any:
    """The SciPy distribution a base is fitted against."""
    from scipy import stats

    return {
        "uniform": stats.uniform,
        "gaussian": stats.norm,
        "gumbel": stats.gumbel_r,
    }[reference]


def _estimated_f1_cut(scores: FloatArray, law: Any, base_count: int) -> Mask:
    """Flag the top scores at the cut of the largest F1 estimated from the curve.

    The lowest ``base_count`` sorted scores are fitted by a least-squares line
    against ``law``'s quantiles at the Hazen positions. Extended upward, the
    line says how many of ``n`` normal scores would lie above each cut; the
    excess of the observed count over it estimates the anomalies there, and the
    largest excess the anomalies in all, which give an estimated F1 at every cut.
    """
    s = np.sort(scores)
    n = s.size
    if base_count < 10:
        return np.zeros(scores.shape, dtype=bool)
    p = (np.arange(n) + 0.5) / n
    slope, intercept = np.polyfit(law.ppf(p[:base_count]), s[:base_count], 1)
    if not slope > 0:
        return np.zeros(scores.shape, dtype=bool)
    flagged = np.arange(1, n)
    expected = n * law.sf((s[n - flagged] - intercept) / slope)
    excess = np.maximum(flagged - expected, 0.0)
    if excess.max() <= 0:
        return np.zeros(scores.shape, dtype=bool)
    estimated_f1 = 2.0 * excess / (flagged + excess.max())
    return _top(scores, float(flagged[np.argmax(estimated_f1)]))


def excess_over_base(reference: str, base_share: float) -> Candidate:
    """The estimated-F1 cut (:func:`_estimated_f1_cut`) with the lowest
    ``base_share`` of the sorted curve as the base of the L."""
    law = _law(reference)

    def apply(scores: FloatArray) -> Mask:
        count = int(np.sum((np.arange(scores.size) + 0.5) / scores.size <= base_share))
        return _estimated_f1_cut(scores, law, count)

    return apply


def excess_below_tail_aware(scores: FloatArray) -> Mask:
    """The estimated-F1 cut with a Gaussian base fitted to what ``tail_aware``
    calls normal (the base then follows the contamination instead of being a
    fixed share); :func:`by_tail` uses it on light tails only."""
    flagged = int(ltrend.fit(scores, method="tail_aware").n_anomalies)
    return _estimated_f1_cut(scores, _law("gaussian"), scores.size - flagged)


def _skew_normal_fitted(base: FloatArray, positions: FloatArray) -> Any:
    """The skew-normal law whose quantiles at ``positions`` lie closest to a
    straight line against the sorted ``base`` (the largest probability-plot
    correlation over a grid of shapes)."""
    from scipy import stats

    if base[0] == base[-1]:
        # A constant base correlates with no shape: it stays Gaussian.
        return stats.skewnorm(0.0)
    shapes = np.linspace(0.0, SKEW_SHAPE_MAX, SKEW_SHAPES)
    fits = [np.corrcoef(stats.skewnorm.ppf(positions, a), base)[0, 1] for a in shapes]
    return stats.skewnorm(shapes[int(np.argmax(fits))])


def excess_below_tail_aware_skewed(scores: FloatArray) -> Mask:
    """:func:`excess_below_tail_aware` with a skew-normal base whose shape is
    read from that base, since the normal mass of a light tail is often skewed."""
    flagged = int(ltrend.fit(scores, method="tail_aware").n_anomalies)
    base_count = scores.size - flagged
    if base_count < 10:
        return np.zeros(scores.shape, dtype=bool)
    # Shape from the base alone, at the positions it holds in the whole curve.
    s = np.sort(scores)
    p = (np.arange(s.size) + 0.5) / s.size
    law = _skew_normal_fitted(s[:base_count], p[:base_count])
    return _estimated_f1_cut(scores, law, base_count)


def candidates() -> dict[str, Candidate]:
    """Every studied method, by the name the study reports."""
    two_segment = fit_method("two_segment")
    knee = fit_method("knee")
    found: dict[str, Candidate] = {
        "paper": fit_method("paper"),
        "paper, degree 1 only": fit_method("paper", max_degree=1),
        "paper, loosest candidate": paper_loosest,
        "peel (iterative cleaning)": peel,
        "robust paper (IRLS)": robust_paper(5),
        "robust degree 1 (IRLS)": robust_paper(1),
        "two_segment": two_segment,
        "two_segment, continuous (hinge)": hinge,
        "two_segment, top half": two_segment_top(0.5),
        "knee": knee,
    }
    for factor in (0.5, 0.75, 1.5, 2.0):
        found[f"knee, slope x{factor:g}"] = knee_slope(factor)
    found["consensus(two_segment, knee)"] = consensus(two_segment, knee)
    shipped_log_knee = fit_method("log_knee")
    found["log_knee"] = shipped_log_knee
    for unit in (0.5, 2.0, 4.0):
        found[f"log_knee, unit x{unit:g}"] = log_knee(unit)
    found["log_knee, top half"] = log_knee(top=0.5)
    found["two_segment of the log curve"] = log_two_segment
    found["consensus(knee, log_knee)"] = consensus(knee, shipped_log_knee)
    # Choose the scale by the tail: the log knee where the signed-log curve bends
    # at least as much as an exponential sample's, a raw-scale cut where less.
    # method="tail_aware" is the consensus of two_segment and knee on light tails.
    raw_cut = consensus_of_splits(two_segment, knee)
    found["tail_aware"] = fit_method("tail_aware")
    found["tail_aware, knee if light"] = by_tail(knee)
    found["tail_aware, two_segment if light"] = by_tail(two_segment)
    found["tail_aware, Gaussian reference"] = by_tail(raw_cut, sample="gaussian")
    for factor in (0.8, 0.9, 1.1, 1.2):
        found[f"tail_aware, depth x{factor:g}"] = by_tail(raw_cut, factor=factor)
    # The brief's first guess, the other way round: a distinct (heavy) branch
    # gets the tight cut above the log knee.
    found["knee above the log knee if heavy, else log_knee"] = by_tail_inverse()
    # Studied after tail_aware shipped: a second L inside its branch, the step
    # (two flat levels) instead of the L, and a cut read from the estimated F1
    # against the base's extension (on a Gaussian or skew-normal base, alone or in
    # consensus with tail_aware).
    found["tail_aware, then the knee within its branch"] = knee_within_branch
    found["two levels (Otsu)"] = two_levels(log_scale=False)
    found["two levels (Otsu) of the log curve"] = two_levels(log_scale=True)
    for reference, share in (
        ("uniform", 0.9),
        ("gaussian", 0.5),
        ("gaussian", 0.9),
        ("gumbel", 0.9),
    ):
        found[f"excess over a {reference} base, lowest {share:.0%}"] = excess_over_base(
            reference, share
        )
    found["tail_aware, then the estimated-F1 cut below it if light"] = by_tail(
        excess_below_tail_aware
    )
    found["tail_aware, then the estimated-F1 cut on a skew-normal base if light"] = (
        by_tail(excess_below_tail_aware_skewed)
    )
    found["tail_aware and that estimated-F1 cut in consensus if light"] = by_tail(
        consensus_of_splits(raw_cut, excess_below_tail_aware)
    )
    return found
