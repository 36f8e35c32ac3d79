"""``LTrendThreshold``: the L-trend thresholder as a scikit-learn estimator.

Importing this module imports scikit-learn (``pip install "ltrend[sklearn]"``);
``import ltrend`` alone does not. ``ltrend.LTrendThreshold`` is the same class,
loaded on first use.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import numpy.typing as npt

try:
    from sklearn.base import BaseEstimator
    from sklearn.utils import Tags
    from sklearn.utils.validation import check_array, check_is_fitted
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        f'{__name__} needs scikit-learn >= 1.6: pip install "ltrend[sklearn]" ({err})'
    ) from err

from ltrend._combine import DEFAULT_RANDOM_STATE, Combiner
from ltrend._core import MIN_SCORES
from ltrend._fit import DEFAULT_MAX_DEGREE, fit
from ltrend._validation import NanPolicy, check_nan_policy

__all__ = ["LTrendThreshold"]


class LTrendThreshold(BaseEstimator):  # type: ignore[misc]
    """Learn the anomaly threshold of a set of scores; label new scores with it.

    A scikit-learn estimator around :func:`ltrend.fit`. ``fit`` learns
    ``threshold_`` from the scores of a fitted detector (for example
    ``-IsolationForest().score_samples(X)``, or a PyOD detector's
    ``decision_scores_``); ``predict`` labels any scores against that
    threshold: 1 (anomalous) where ``score >= threshold_``, else 0.

    Parameters
    ----------
    max_degree : int, default 5
        Highest polynomial degree tried, 1 to 10 (see :func:`ltrend.fit`).
    method : str, default "paper"
        One of ``ltrend.METHODS``.
    nan_policy : {"raise", "omit"}, default "raise"
        ``"raise"`` refuses NaN and infinite scores in ``fit`` and ``predict``;
        ``"omit"`` leaves them out of the fit and labels them 0.

    Attributes
    ----------
    threshold_ : float
        The learned threshold, in the units of the scores. ``+inf`` when no
        degree splits the scores (then every label is 0).
    degree_ : int or None
        The polynomial degree whose split won; None when there was no split.
    labels_ : ndarray of int64, shape (n_samples,)
        The 0/1 labels of the training scores (1 = anomalous).
    result_ : ltrend.Result
        The whole fit: per-degree table, sorted curve, ``result_.plot()``.
    n_features_in_ : int
        Always 1: the estimator takes one column of scores.

    See Also
    --------
    ltrend.fit : the function behind ``fit``.
    ltrend.pythresh.LTREND : the same thresholder with PyThresh's interface.

    Notes
    -----
    ``X`` is a 1-D array of scores or a 2-D array with a single column (the
    shape scikit-learn's ``FunctionTransformer`` and ``ColumnTransformer``
    pass on). Several columns are refused: combine several detectors' scores
    first, or use :class:`ltrend.pythresh.LTREND`, which reduces them to one
    score the way PyThresh does. Labels follow PyOD and PyThresh (1 =
    anomalous, 0 = normal), not the -1/+1 of scikit-learn's own outlier
    detectors.

    Examples
    --------
    >>> import numpy as np
    >>> from ltrend import LTrendThreshold
    >>> scores = np.concatenate([np.linspace(0.0, 1.0, 500), [4.0, 6.0, 9.0]])
    >>> thresholder = LTrendThreshold().fit(scores)
    >>> int(thresholder.labels_.sum()), thresholder.degree_ is not None
    (3, True)
    >>> thresholder.predict([0.5, 8.0]).tolist()
    [0, 1]
    """

    def __init__(
        self,
        max_degree: int = DEFAULT_MAX_DEGREE,
        method: str = "paper",
        nan_policy: NanPolicy = "raise",
        random_state: int | None = DEFAULT_RANDOM_STATE,
    ) -> None:
        self.max_degree = max_degree
        self.method = method
        self.nan_policy = nan_policy
        self.random_state = random_state

    def __sklearn_tags__(self) -> Tags:
        tags: Tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.nan_policy == "omit"
        tags.target_tags.required = False
        return tags

    def _check_scores(
        self, X: npt.ArrayLike, *, reset: bool
    ) -> npt.NDArray[np.floating[Any]]:
        """``X`` as a float array of scores, 1-D or several columns, checked."""
        policy = check_nan_policy(self.nan_policy)
        array: npt.NDArray[np.floating[Any]] = check_array(
            X,
            ensure_2d=False,
            dtype=(np.float64, np.float32),
            ensure_all_finite=policy == "raise",
            ensure_min_samples=MIN_SCORES if reset else 1,
            input_name="X",
        )
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        n_features = 1 if array.ndim == 1 else int(array.shape[1])
        if reset:
            self.n_features_in_ = n_features
        elif n_features != self.n_features_in_:
            hint = (
                ". Reshape your data to 2-D, one column per detector"
                if array.ndim == 1
                else ""
            )
            raise ValueError(
                f"X has {n_features} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input{hint}"
            )
        return array

    def _combined(
        self, array: npt.NDArray[np.floating[Any]], *, fitting: bool
    ) -> npt.NDArray[np.floating[Any]]:
        """One score per sample: the scores themselves, or the columns combined."""
        if array.ndim == 1:
            return np.ascontiguousarray(array)
        if fitting:
            self.combiner_ = Combiner(self.random_state)
            return self.combiner_.fit_transform(array)
        return self.combiner_.transform(array)

    def fit(self, X: npt.ArrayLike, y: object = None) -> Self:
        """Learn the threshold from the scores ``X``.

        Parameters
        ----------
        X : array_like, shape (n_samples,) or (n_samples, 1)
            Anomaly scores, higher meaning more anomalous; at least 3.
        y : None
            Ignored; the threshold is learned without labels.

        Returns
        -------
        LTrendThreshold
            ``self``, fitted.

        Raises
        ------
        ValueError
            For more than one column, too few scores, non-finite scores under
            ``nan_policy="raise"`` or an out-of-range parameter.
        """
        self._learn(X)
        return self

    def _learn(self, X: npt.ArrayLike) -> npt.NDArray[np.floating[Any]]:
        """Fit on ``X``, set the fitted attributes, return the scores thresholded."""
        scores = self._combined(self._check_scores(X, reset=True), fitting=True)
        result = fit(
            scores,
            max_degree=self.max_degree,
            nan_policy=self.nan_policy,
            method=self.method,
        )
        self.result_ = result
        self.threshold_ = result.threshold
        self.degree_ = result.degree
        self.labels_ = result.mask.astype(np.int64)
        return scores

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Label scores against the learned threshold: 1 where ``X >= threshold_``.

        Parameters
        ----------
        X : array_like, shape (n_samples,) or (n_samples, 1)
            Scores from the same detector as the training scores.

        Returns
        -------
        ndarray of int64, shape (n_samples,)
            1 for anomalous, 0 for normal; a NaN or infinite score (allowed with
            ``nan_policy="omit"``) is 0, as in ``fit``.
        """
        check_is_fitted(self, "threshold_")
        scores = self._combined(self._check_scores(X, reset=False), fitting=False)
        # As in fit, a non-finite score (allowed only with nan_policy="omit") is
        # normal.
        finite = np.isfinite(scores)
        anomalous: npt.NDArray[np.bool_] = finite & (scores >= self.threshold_)
        return anomalous.astype(np.int64)

    def fit_predict(self, X: npt.ArrayLike, y: object = None) -> npt.NDArray[np.int64]:
        """Fit on ``X`` and return its labels (``labels_``)."""
        labels: npt.NDArray[np.int64] = self.fit(X).labels_
        return labels
