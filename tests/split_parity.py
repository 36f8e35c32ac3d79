"""The criteria of the breakpoint methods, written from docs/methods.md in NumPy.

Shared by the tests that compare two implementations of a breakpoint method
(the core and the reference, or the in-memory and the distributed fit): where
their breakpoints differ, these say whether the two candidates tie to
``TIE_RTOL``, which docs/methods.md ("Agreement") allows.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# Two candidates whose criterion agrees to this relative tolerance are a tie,
# and either implementation may pick either (METHOD.md, "Agreement").
TIE_RTOL = 1e-9


def _core_view(s: FloatArray) -> FloatArray:
    """The sorted curve as both implementations read it: scaled by a power of two
    (exact) when its largest magnitude is beyond 2^±400, so that no square
    overflows or underflows (docs/methods.md). Breakpoints are ranks, the same on
    either curve."""
    largest = float(np.max(np.abs(s), initial=0.0))
    if largest == 0.0:
        return s
    exponent = int(np.frexp(largest)[1])
    if abs(exponent) <= 400:
        return s
    view: FloatArray = np.ldexp(s, -exponent)
    return view


def _line_sse(x: FloatArray, y: FloatArray) -> float:
    """Squared error of the least-squares line, by lstsq on centred data."""
    design = np.column_stack([np.ones_like(x), x - x.mean()])
    coef, *_ = np.linalg.lstsq(design, y - y.mean(), rcond=None)
    residual = (y - y.mean()) - design @ coef
    return float(residual @ residual)


def _two_segment_sse(s: FloatArray, k: int) -> float:
    x = np.arange(s.size, dtype=np.float64)
    centred = s - np.median(s)
    return _line_sse(x[:k], centred[:k]) + _line_sse(x[k:], centred[k:])


def _knee_depth(s: FloatArray, k: int) -> float:
    """``x_k - y_k`` on the unit square for the knee point ``k``."""
    return float(k / (s.size - 1) - (s[k] - s[0]) / (s[-1] - s[0]))


def _log_curve(s: FloatArray) -> FloatArray | None:
    """``sign(z) log1p(|z|)``, ``z = (s - median) / (Q3 - Q1)`` (the mean absolute
    deviation from the median when the quartiles coincide); None without spread.
    Written from docs/methods.md: where ``z`` overflows (a subnormal unit), its
    log is ``log|s - median| - log(unit)``."""
    q1, median, q3 = np.quantile(s, [0.25, 0.5, 0.75])
    unit = float(q3 - q1) if q3 > q1 else float(np.mean(np.abs(s - median)))
    if unit == 0.0:
        return None
    distance = s - median
    with np.errstate(over="ignore", divide="ignore"):
        z = np.abs(distance) / unit
        magnitude = np.where(
            np.isinf(z), np.log(np.abs(distance)) - math.log(unit), np.log1p(z)
        )
    curve: FloatArray = np.sign(distance) * magnitude
    return curve


def _log_knee_depth(s: FloatArray, k: int) -> float:
    """The knee depth of point ``k`` on the signed-log curve of ``s``."""
    curve = _log_curve(s)
    assert curve is not None
    return _knee_depth(curve, k)


def _log_knee_depth_of(s: FloatArray) -> float:
    """The depth of the signed-log curve's knee, 0 when no point is below."""
    curve = _log_curve(s)
    if curve is None or curve[-1] == curve[0]:
        return 0.0
    return max(max(_knee_depth(curve, i) for i in range(s.size)), 0.0)


def _exponential_depth(n: int) -> float:
    """The log-knee depth of exponential quantiles at the Hazen positions."""
    return _log_knee_depth_of(-np.log1p(-(np.arange(n) + 0.5) / n))
