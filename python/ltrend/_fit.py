"""``ltrend.fit``: the L-trend threshold, computed by the Rust core."""

from __future__ import annotations

from typing import SupportsIndex, cast

import numpy as np
import numpy.typing as npt

from ltrend import _core
from ltrend._result import DegreeRow, Result
from ltrend._validation import (
    NanPolicy,
    Scores,
    as_scores,
    check_max_degree,
    check_method,
    check_nan_policy,
)

#: The paper's cap on the polynomial degree.
DEFAULT_MAX_DEGREE = 5


def fit(
    scores: npt.ArrayLike,
    *,
    max_degree: SupportsIndex = DEFAULT_MAX_DEGREE,
    nan_policy: NanPolicy = "raise",
    method: str = "paper",
) -> Result:
    """Learn the threshold that separates anomalous scores from normal ones.

    The scores are sorted; least-squares polynomials of degree 1 to ``max_degree``
    are fitted to the sorted curve ``(i, s[i])``; each fit's maximum is a candidate
    threshold, and the candidate whose split has the largest compactness
    ``(var(A)/|A|) / (var(N)/|N|)`` wins (ties go to the lowest degree).

    Parameters
    ----------
    scores : array_like, 1-D
        Anomaly scores, higher meaning more anomalous. float64 and float32 are
        used without a float64 copy; other real dtypes are converted to float64.
        All arithmetic is float64 either way.
    max_degree : int, default 5
        Highest polynomial degree tried, 1 to 10; also never above ``n - 2``.
    nan_policy : {"raise", "omit"}, default "raise"
        ``"raise"`` refuses NaN and infinite scores; ``"omit"`` leaves them out of
        the fit and labels them normal.
    method : str, default "paper"
        One of ``ltrend.METHODS``: ``"paper"`` (the polynomial method above, as
        the paper defines it), ``"two_segment"`` (the exact least-squares fit
        of two lines, the L's base and branch, to the sorted curve, split at the
        best breakpoint), ``"knee"`` (the point of the sorted curve farthest
        below its chord), ``"log_knee"`` (that knee on a signed-log scale of
        the scores, centred on their median in units of their interquartile
        range) or ``"tail_aware"`` (``"log_knee"`` when that curve bends at least
        as much as an exponential sample's, else the geometric mean of the
        anomaly counts of ``"knee"`` and ``"two_segment"``). See
        ``docs/methods.md``. Every method reads the same
        sorted curve; ``max_degree`` is used by ``"paper"`` only.

    Returns
    -------
    Result
        ``threshold`` (float64), ``degree``, ``mask`` (bool, input order),
        ``n_anomalies`` and the per-degree ``table``. The breakpoint methods
        have no degree and an empty table, and report ``breakpoint`` instead.

    Raises
    ------
    TypeError
        For complex, string or object scores, or a non-integer ``max_degree``.
    ValueError
        For a non-1-D array, fewer than 3 finite scores, non-finite scores under
        ``nan_policy="raise"``, or an out-of-range option.

    Notes
    -----
    A score equal to the threshold is anomalous. A degree whose split leaves one
    side empty is not a candidate (its compactness is NaN); a split whose normal
    side has zero variance has compactness +inf. When no degree is a candidate
    (for example when all scores are equal) the threshold is +inf, ``degree`` is
    None and nothing is anomalous. The result keeps the sorted scores (one array
    the size of the input, in its dtype: ``np.sort``'s copy, of which
    ``sorted_scores()`` is the finite stretch) so that the curve can be drawn
    afterwards. The sort is NumPy's; the passes after it run in the Rust core
    with the GIL released, on two threads from 2**17 scores.

    References
    ----------
    The "L"-trend prior for unsupervised threshold learning in visual anomaly
    detection (ICLR 2023 submission), sections 4 and 5.

    Examples
    --------
    >>> import numpy as np
    >>> import ltrend
    >>> normal = np.linspace(1.0, 1.2, 200)
    >>> scores = np.concatenate([normal, [3.0, 4.5, 7.0]])
    >>> result = ltrend.fit(scores)
    >>> result.n_anomalies
    3
    >>> bool(1.2 < result.threshold <= 3.0)
    True
    >>> [int(i) for i in np.flatnonzero(result.mask)]
    [200, 201, 202]
    >>> split = ltrend.fit(scores, method="two_segment")
    >>> split.threshold, split.breakpoint, split.degree
    (3.0, 200, None)
    """
    z = as_scores(scores)
    degree_cap = check_max_degree(max_degree)
    policy = check_nan_policy(nan_policy)
    check_method(method)
    if method == "paper":
        # NumPy's sort is the fastest one here (a SIMD quicksort on AVX-512 or AVX2
        # CPUs) and releases the GIL, as the core does; docs/performance.md compares
        # it with the core's radix sort and with splitting the sort over two threads.
        ordered = cast("Scores", np.sort(z))
        raw = _core.fit_sorted(z, ordered, max_degree=degree_cap, nan_policy=policy)
    else:
        # The breakpoint methods (docs/methods.md) sort inside the core.
        raw = _core.fit(z, max_degree=degree_cap, nan_policy=policy, method=method)
    table = tuple(DegreeRow._make(row) for row in raw.rows)
    return Result(
        threshold=raw.threshold,
        degree=raw.degree,
        mask=raw.mask,
        table=table,
        sorted_scores=raw.sorted_scores,
        center=raw.center,
        coefficients=np.asarray(raw.coefficients, dtype=np.float64),
        n_omitted=raw.n_omitted,
        method=method,
        breakpoint=raw.breakpoint,
    )
