"""PyOD helpers: give a fitted PyOD detector the learned threshold in one call.

Two ways to use the L-trend threshold with PyOD:

- before fitting, pass the thresholder as ``contamination``:
  ``IForest(contamination=ltrend.pythresh.LTREND())``;
- after fitting, :func:`relabel` replaces the contamination-based
  ``threshold_`` and ``labels_`` of a detector that is already fitted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ltrend._fit import DEFAULT_MAX_DEGREE
from ltrend._result import Result
from ltrend._validation import NanPolicy
from ltrend.pythresh import LTREND

__all__ = ["relabel"]


def relabel(
    detector: Any,
    *,
    max_degree: int = DEFAULT_MAX_DEGREE,
    method: str = "paper",
    nan_policy: NanPolicy = "raise",
) -> Result:
    """Replace a fitted PyOD detector's threshold and labels with the learned ones.

    PyOD sets ``threshold_`` so that a fixed share (``contamination``, 10 % by
    default) of the training scores lies above it. This learns the threshold
    from the detector's own ``decision_scores_`` instead, and writes it back:
    ``threshold_`` (in the detector's score units), ``labels_`` (0/1), and
    ``contamination`` (an :class:`ltrend.pythresh.LTREND` holding the fit, so
    that ``detector.predict`` labels new data against the same threshold, with
    a score equal to it counted anomalous, and so that a later ``fit`` learns
    the threshold again).

    Parameters
    ----------
    detector : PyOD detector
        Fitted: it must have ``decision_scores_``. Changed in place.
    max_degree, method, nan_policy
        As for :func:`ltrend.fit`.

    Returns
    -------
    Result
        The fit: threshold, degree, per-degree table, ``plot()``.

    Raises
    ------
    ValueError
        If the detector has not been fitted, or its scores cannot be thresholded.

    Examples
    --------
    >>> import numpy as np
    >>> from pyod.models.knn import KNN
    >>> from ltrend.pyod import relabel
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(size=(300, 2)), rng.normal(8.0, 1.0, size=(6, 2))])
    >>> detector = KNN().fit(X)
    >>> int(detector.labels_.sum())  # PyOD's default: 10 % of the samples
    31
    >>> result = relabel(detector)
    >>> detector.threshold_ == result.threshold
    True
    >>> int(detector.labels_.sum()) == result.n_anomalies
    True
    >>> bool(detector.labels_[-6:].all())  # the six far points
    True
    """
    scores = getattr(detector, "decision_scores_", None)
    if scores is None:
        raise ValueError(
            f"detector: {type(detector).__name__} has no decision_scores_; "
            "fit it first (detector.fit(X))"
        )
    thresholder = LTREND(max_degree=max_degree, method=method, nan_policy=nan_policy)
    thresholder.fit(np.ravel(np.asarray(scores)))
    detector.contamination = thresholder
    detector.threshold_ = thresholder.threshold_
    detector.labels_ = thresholder.labels_
    result: Result = thresholder.result_
    return result
