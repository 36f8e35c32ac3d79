"""Iterative cleaning: fit, remove what was flagged, fit the rest again.

On smooth normal data every fit flags a few percent of the scores, so repeating
the fit blindly would eat the normal set. A later round therefore counts only if
its threshold stands out from the scores it calls normal: it must exceed their
median by more than ``fence`` robust standard deviations (1.4826 x MAD). The
first round is the plain fit and is always reported when it flags anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, NamedTuple, SupportsIndex, TypeAlias

import numpy as np
import numpy.typing as npt

from ltrend._core import MIN_SCORES
from ltrend._result import Result
from ltrend._validation import NanPolicy, as_scores, check_nan_policy

#: Default cap on the number of rounds.
DEFAULT_MAX_ROUNDS = 10
#: Robust standard deviations a later round's threshold must clear; 3 is the
#: usual "three sigma" cut, made robust with the MAD.
DEFAULT_FENCE = 3.0
#: Scale that turns a MAD into a standard deviation for Gaussian data.
_MAD_TO_SIGMA = 1.4826

StopReason: TypeAlias = Literal[
    "no anomaly", "not separated", "too few scores", "round limit"
]
FitFunction: TypeAlias = Callable[..., Result]


class Round(NamedTuple):
    """One accepted round of :func:`ltrend.peel`."""

    round: int
    threshold: float
    degree: int
    n_anomalies: int
    #: Scores still labelled normal after this round.
    n_remaining: int


class PeelResult(NamedTuple):
    """Every accepted round, and which round removed each score."""

    rounds: tuple[Round, ...]
    #: In input order: the round that flagged the score (1, 2, ...), 0 if none.
    round_of: npt.NDArray[np.int32]
    #: Why the rounds stopped.
    stop_reason: StopReason

    @property
    def mask(self) -> npt.NDArray[np.bool_]:
        """True for scores flagged in any round."""
        return self.round_of > 0

    @property
    def threshold(self) -> float:
        """The last accepted round's threshold (+inf when no round was accepted)."""
        return self.rounds[-1].threshold if self.rounds else float("inf")


def _robust_upper_fence(normal: npt.NDArray[np.floating], fence: float) -> float:
    """``median + fence * 1.4826 * MAD`` of the scores a round calls normal."""
    values = normal.astype(np.float64)
    # In units of a power of two near the largest magnitude: exact, and the
    # midpoint of two scores near 1.8e308 or their deviations cannot overflow.
    exponent = math.frexp(float(np.max(np.abs(values), initial=0.0)))[1]
    scaled = np.ldexp(values, -exponent)
    median = float(np.median(scaled))
    mad = float(np.median(np.abs(scaled - median)))
    # A fence beyond the largest float is +inf: above every score.
    with np.errstate(over="ignore"):
        return float(np.ldexp(median + fence * _MAD_TO_SIGMA * mad, exponent))


def _check_rounds(max_rounds: object) -> int:
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, int | np.integer):
        raise TypeError(f"max_rounds: expected an integer, got {max_rounds!r}")
    if max_rounds < 1:
        raise ValueError(f"max_rounds: must be at least 1, got {max_rounds}")
    return int(max_rounds)


def _check_fence(fence: object) -> float:
    if isinstance(fence, bool) or not isinstance(fence, int | float | np.floating):
        raise TypeError(f"fence: expected a number, got {fence!r}")
    if not np.isfinite(fence) or fence < 0:
        raise ValueError(f"fence: must be a finite number >= 0, got {fence}")
    return float(fence)


def peel_with(
    fit_function: FitFunction,
    scores: npt.ArrayLike,
    *,
    max_rounds: int,
    fence: float,
    max_degree: SupportsIndex,
    nan_policy: NanPolicy,
    method: str,
) -> PeelResult:
    """Run the iterative cleaning with ``fit_function`` doing each round's fit."""
    z = as_scores(scores)
    rounds_cap = _check_rounds(max_rounds)
    fence_width = _check_fence(fence)
    policy = check_nan_policy(nan_policy)

    round_of = np.zeros(z.shape[0], dtype=np.int32)
    # The first fit validates everything and applies the NaN policy; its mask
    # covers the whole input, later masks cover only the scores still in play.
    result = fit_function(z, max_degree=max_degree, nan_policy=policy, method=method)
    remaining = np.flatnonzero(np.isfinite(z))
    flagged = result.mask[remaining]
    rounds: list[Round] = []
    while True:
        number = len(rounds) + 1
        if result.degree is None or not flagged.any():
            stop: StopReason = "no anomaly"
            break
        if number > 1:
            fence_value = _robust_upper_fence(z[remaining[~flagged]], fence_width)
            if result.threshold <= fence_value:
                stop = "not separated"
                break
        round_of[remaining[flagged]] = number
        remaining = remaining[~flagged]
        rounds.append(
            Round(
                number,
                result.threshold,
                result.degree,
                int(np.count_nonzero(flagged)),
                int(remaining.size),
            )
        )
        if number >= rounds_cap:
            stop = "round limit"
            break
        if remaining.size < MIN_SCORES:
            stop = "too few scores"
            break
        result = fit_function(
            z[remaining], max_degree=max_degree, nan_policy="raise", method=method
        )
        flagged = result.mask
    return PeelResult(tuple(rounds), round_of, stop)
