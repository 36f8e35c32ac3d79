"""ltrend: learn, without labels, the threshold that separates anomalous scores.

Sort the anomaly scores and the normal mass forms the long flat base of an "L"
while the rare anomalies form its steep branch. ``ltrend`` fits least-squares
polynomials to that sorted curve and reads the threshold off the corner.

>>> import numpy as np
>>> import ltrend
>>> scores = np.concatenate([np.linspace(0.0, 1.0, 500), [4.0, 6.0, 9.0]])
>>> ltrend.fit(scores).n_anomalies
3
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, SupportsIndex

import numpy.typing as _npt

from ltrend import reference
from ltrend._fit import DEFAULT_MAX_DEGREE, fit
from ltrend._peel import DEFAULT_FENCE, DEFAULT_MAX_ROUNDS, PeelResult, Round
from ltrend._peel import peel_with as _peel_with
from ltrend._result import DegreeRow, Result
from ltrend._validation import METHODS, NanPolicy
from ltrend.monitor import Monitor, MonitorStatus

if TYPE_CHECKING:
    from ltrend.sklearn import LTrendThreshold

__all__ = [
    "METHODS",
    "DegreeRow",
    "LTrendThreshold",
    "Monitor",
    "MonitorStatus",
    "PeelResult",
    "Result",
    "Round",
    "fit",
    "peel",
    "reference",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # LTrendThreshold needs scikit-learn; import it only when asked for, so that
    # `import ltrend` works without scikit-learn.
    if name == "LTrendThreshold":
        from ltrend.sklearn import LTrendThreshold

        return LTrendThreshold
    raise AttributeError(f"module 'ltrend' has no attribute {name!r}")


def peel(
    scores: _npt.ArrayLike,
    *,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    fence: float = DEFAULT_FENCE,
    max_degree: SupportsIndex = DEFAULT_MAX_DEGREE,
    nan_policy: NanPolicy = "raise",
    method: str = "paper",
) -> PeelResult:
    """Peel anomalies layer by layer: fit, drop what was flagged, fit the rest.

    Round 1 is :func:`fit` on all the scores. Each later round fits the scores
    still labelled normal, and counts only if its threshold clears the robust
    upper fence ``median + fence * 1.4826 * MAD`` of the scores it calls normal;
    otherwise its flags are the ordinary tail of the normal set and peeling stops.
    Peeling also stops when a round flags nothing, when fewer than 3 scores
    remain, or after ``max_rounds`` rounds.

    Parameters
    ----------
    scores : array_like, 1-D
        As for :func:`fit`.
    max_rounds : int, default 10
        Most rounds to run.
    fence : float, default 3.0
        How many robust standard deviations above the median of the remaining
        normal scores a later round's threshold must be.
    max_degree, nan_policy, method
        As for :func:`fit`, applied in every round.

    Returns
    -------
    PeelResult
        ``rounds`` (threshold, degree, count and scores left, per round),
        ``round_of`` (the round that removed each score, 0 for none, input
        order), ``mask`` and ``stop_reason``.

    Examples
    --------
    >>> import numpy as np
    >>> import ltrend
    >>> rng = np.random.default_rng(0)
    >>> noise = rng.normal(size=5000)  # no anomaly at all
    >>> peeled = ltrend.peel(noise)
    >>> len(peeled.rounds), peeled.stop_reason
    (1, 'not separated')
    >>> scores = np.concatenate([noise, rng.normal(12.0, 1.0, 50)])
    >>> peeled = ltrend.peel(scores)
    >>> bool(peeled.round_of[-50:].all())
    True
    """
    return _peel_with(
        fit,
        scores,
        max_rounds=max_rounds,
        fence=fence,
        max_degree=max_degree,
        nan_policy=nan_policy,
        method=method,
    )
