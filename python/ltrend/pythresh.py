"""``LTREND``: the L-trend thresholder with PyThresh's interface, for PyThresh and PyOD.

PyThresh's thresholders (``pythresh.thresholds``) share one interface:
``eval(decision)`` returns 0/1 labels and sets ``thresh_`` and ``dscores_``;
``fit``/``predict`` learn on one set of scores and label another; a 2-D
``(n_samples, n_detectors)`` input is reduced to one score per sample. PyOD
takes any such object as ``contamination``::

    from pyod.models.iforest import IForest
    from ltrend.pythresh import LTREND

    detector = IForest(contamination=LTREND()).fit(X)
    detector.threshold_   # the L-trend threshold, in IForest's score units

PyThresh itself is not needed to use this module (scikit-learn is: PyOD and
PyThresh build on it).

The one difference from PyThresh's own thresholders: PyThresh min-max normalises
1-D scores before thresholding, so its ``thresh_`` lies in [0, 1] and its
``dscores_`` are the normalised scores; ``LTREND`` keeps 1-D scores as they are,
so ``thresh_`` is in the units of the scores (and so is PyOD's ``threshold_``).
For 2-D input both reduce the columns the same way, and ``thresh_`` is on that
combined, normalised scale. In every case ``labels_ == (dscores_ >= thresh_)``.
"""

from __future__ import annotations

from typing import Any, Self, cast

import numpy as np
import numpy.typing as npt

from ltrend._combine import DEFAULT_RANDOM_STATE
from ltrend._fit import DEFAULT_MAX_DEGREE
from ltrend._validation import NanPolicy
from ltrend.sklearn import LTrendThreshold

__all__ = ["LTREND"]

# NOTE: LTREND is also a str equal to "auto", deliberately. PyOD (3.x) hands its
# `contamination` argument on to scikit-learn's IsolationForest and
# LocalOutlierFactor inside IForest and LOF, and scikit-learn accepts there only a
# float in (0, 0.5] or the string "auto"; any other thresholder object makes
# `IForest(contamination=...).fit` raise. "auto" passes that check and is the
# right value for those estimators, since PyOD thresholds the scores itself with
# the object it was given (`isinstance(contamination, (float, int))` is False).
# The cost: an LTREND compares and hashes like the string "auto".
_PYOD_PASS_THROUGH = "auto"


class LTREND(LTrendThreshold, str):
    """The L-trend thresholder with PyThresh's ``eval``, ``thresh_`` and ``dscores_``.

    Parameters
    ----------
    max_degree : int, default 5
        Highest polynomial degree tried, 1 to 10 (see :func:`ltrend.fit`).
    method : str, default "paper"
        One of ``ltrend.METHODS``.
    nan_policy : {"raise", "omit"}, default "raise"
        ``"omit"`` leaves non-finite scores out of the fit and labels them 0.
    random_state : int or None, default 1234
        Seed of the SVD that reduces 2-D input to one score (PyThresh's default).

    Attributes
    ----------
    thresh_ : float or None
        The threshold, in the units of ``dscores_``: the scores themselves for
        1-D input (PyThresh: min-max normalised scores), the combined score for
        2-D input. ``+inf`` when no degree splits the scores. None before fitting.
    dscores_ : ndarray of float or None
        The 1-D scores that were thresholded. None before fitting.
    labels_ : ndarray of int64 or None
        0/1 labels of the fitted scores (1 = anomalous). None before fitting.
    confidence_interval_ : None
        Always None (PyThresh fills it only for some thresholders).
    threshold_, degree_, result_, n_features_in_
        As for :class:`ltrend.LTrendThreshold`.

    Notes
    -----
    Every ``LTREND`` is also the string ``"auto"`` (so it compares equal to
    ``"auto"`` and to any other ``LTREND``); this lets PyOD's IForest and LOF,
    which hand ``contamination`` on to scikit-learn, accept it. Where PyThresh
    would fall back to a threshold above every score (its ``fallback``),
    ``LTREND`` reports ``thresh_ = inf`` and labels everything 0.

    Examples
    --------
    >>> import numpy as np
    >>> from ltrend.pythresh import LTREND
    >>> scores = np.concatenate([np.linspace(0.0, 1.0, 500), [4.0, 6.0, 9.0]])
    >>> thresholder = LTREND()
    >>> labels = thresholder.eval(scores)
    >>> int(labels.sum()), bool(1.0 < thresholder.thresh_ <= 4.0)
    (3, True)
    >>> thresholder.predict([0.2, 7.5]).tolist()
    [0, 1]
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        return super().__new__(cls, _PYOD_PASS_THROUGH)

    def __init__(
        self,
        max_degree: int = DEFAULT_MAX_DEGREE,
        method: str = "paper",
        nan_policy: NanPolicy = "raise",
        random_state: int | None = DEFAULT_RANDOM_STATE,
    ) -> None:
        super().__init__(
            max_degree=max_degree,
            method=method,
            nan_policy=nan_policy,
            random_state=random_state,
        )
        # PyThresh's thresholders start with these set to None; code written for
        # them may read them before fitting.
        self.thresh_: float | None = None
        self.dscores_: npt.NDArray[np.floating[Any]] | None = None
        self.labels_: npt.NDArray[np.int64] | None = None  # type: ignore[assignment]
        self.confidence_interval_: tuple[float, float] | None = None

    def __getnewargs__(self) -> tuple[()]:  # type: ignore[override]
        # Pickle and copy rebuild the object through __new__ (with no arguments)
        # and then restore __dict__.
        return ()

    __repr__ = LTrendThreshold.__repr__

    def __str__(self) -> str:
        return repr(self)

    def __format__(self, format_spec: str) -> str:
        return format(repr(self), format_spec)

    def fit(self, X: npt.ArrayLike, y: object = None) -> Self:
        """Learn the threshold from ``X`` (1-D scores or one column per detector).

        Parameters
        ----------
        X : array_like, shape (n_samples,) or (n_samples, n_detectors)
            Decision scores, higher meaning more anomalous.
        y : None
            Ignored.

        Returns
        -------
        LTREND
            ``self``, with ``thresh_``, ``dscores_`` and ``labels_`` set.
        """
        self.dscores_ = self._learn(X)
        self.thresh_ = self.threshold_
        return self

    def eval(self, decision: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Fit on ``decision`` and return its 0/1 labels (1 = anomalous).

        Parameters
        ----------
        decision : array_like, shape (n_samples,) or (n_samples, n_detectors)
            Decision scores from one or several outlier detectors.

        Returns
        -------
        ndarray of int64, shape (n_samples,)
            The labels; also kept as ``labels_``.
        """
        self.fit(decision)
        return cast("npt.NDArray[np.int64]", self.labels_)
