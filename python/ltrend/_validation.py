"""Argument checks shared by every entry point, run before any work is done."""

from __future__ import annotations

import operator
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from ltrend._core import MAX_DEGREE_LIMIT

Scores: TypeAlias = npt.NDArray[np.float64] | npt.NDArray[np.float32]
NanPolicy: TypeAlias = Literal["raise", "omit"]

NAN_POLICIES: tuple[NanPolicy, ...] = ("raise", "omit")

# Real dtypes that are widened to float64; float32 and float64 are used as they are.
_WIDENED_KINDS = frozenset("biuf")


def as_scores(scores: npt.ArrayLike, name: str = "scores") -> Scores:
    """Return ``scores`` as a contiguous 1-D float64 or float32 array.

    float32 and float64 arrays are kept as they are (copied only if not contiguous);
    other real dtypes are converted to float64.
    """
    try:
        array = np.asarray(scores)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{name}: could not be read as a 1-D array of numbers ({err})"
        ) from None
    kind = array.dtype.kind
    if kind == "c":
        raise TypeError(
            f"{name}: complex values are not anomaly scores (dtype {array.dtype}); "
            "pass a real array, for example np.abs(scores)"
        )
    if kind not in _WIDENED_KINDS:
        raise TypeError(
            f"{name}: expected real numbers, got an array of dtype {array.dtype}; "
            "convert it with np.asarray(scores, dtype=float)"
        )
    if array.ndim != 1:
        raise ValueError(
            f"{name}: expected a 1-D array of scores, got {array.ndim}-D with shape "
            f"{array.shape}; pass one detector's scores, e.g. scores.ravel()"
        )
    if array.dtype not in (np.float64, np.float32):
        array = array.astype(np.float64)
    # NOTE: aligned too: arrays computed by dask.distributed can be misaligned views
    # of a message buffer, which the core refuses; this copies only those.
    return np.require(array, requirements=["C_CONTIGUOUS", "ALIGNED"])


def check_max_degree(max_degree: object) -> int:
    """Return ``max_degree`` as an int in ``1..=MAX_DEGREE_LIMIT`` or raise."""
    if isinstance(max_degree, bool):
        raise TypeError(f"max_degree: expected an integer, got {max_degree!r}")
    try:
        degree = operator.index(max_degree)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"max_degree: expected an integer, got {type(max_degree).__name__} "
            f"{max_degree!r}"
        ) from None
    if not 1 <= degree <= MAX_DEGREE_LIMIT:
        raise ValueError(
            f"max_degree: must be between 1 and {MAX_DEGREE_LIMIT}, got {degree}"
        )
    return degree


def check_nan_policy(nan_policy: object) -> NanPolicy:
    """Return ``nan_policy`` if it is ``"raise"`` or ``"omit"``, else raise."""
    for policy in NAN_POLICIES:
        if nan_policy == policy:
            return policy
    raise ValueError(f'nan_policy: must be "raise" or "omit", got {nan_policy!r}')


#: Every method ``fit`` accepts.
METHODS: tuple[str, ...] = ("paper",)


def check_method(method: object) -> str:
    """Return ``method`` if it names one of :data:`METHODS`, else raise."""
    if isinstance(method, str) and method in METHODS:
        return method
    raise ValueError(f"method: must be one of {METHODS}, got {method!r}")
