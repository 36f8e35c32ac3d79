"""Anomaly detectors: each maps features to scores (higher = more anomalous).

All are fitted on the whole unlabelled set and score that same set, as in the
paper (section 6). Where a detector has a built-in decision (scikit-learn's
Isolation Forest and OC-SVM ``predict``, LOF's default ``offset_``), it is
returned too, as the paper's detection-based baselines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Seed of every randomised detector.
DETECTOR_SEED = 0
#: Rows used to pick the KDE bandwidth (the median pairwise distance).
_BANDWIDTH_SAMPLE = 1000


class Scored(NamedTuple):
    scores: FloatArray
    #: The detector's own anomaly decision, or None when it has none.
    builtin: npt.NDArray[np.bool_] | None


def squared_l2(x: FloatArray) -> Scored:
    """``||x - mean||^2`` (the paper's squared L2-norm score)."""
    centred = x - x.mean(axis=0)
    return Scored(np.einsum("ij,ij->i", centred, centred), None)


def shell(x: FloatArray) -> Scored:
    """Shell-style normalised distance (Lin et al., 2021).

    Each instance is centred on the data mean and scaled to unit length; the score
    is the squared distance of that direction to the mean direction.
    """
    centred = x - x.mean(axis=0)
    norms = np.linalg.norm(centred, axis=1)
    norms[norms == 0.0] = 1.0
    directions = centred / norms[:, None]
    spread = directions - directions.mean(axis=0)
    return Scored(np.einsum("ij,ij->i", spread, spread), None)


def isolation_forest(x: FloatArray) -> Scored:
    from sklearn.ensemble import IsolationForest

    model = IsolationForest(random_state=DETECTOR_SEED).fit(x)
    return Scored(-model.score_samples(x), model.predict(x) == -1)


def lof(x: FloatArray) -> Scored:
    from sklearn.neighbors import LocalOutlierFactor

    model = LocalOutlierFactor().fit(x)
    scores = -model.negative_outlier_factor_
    # fit_predict's rule: negative_outlier_factor_ < offset_ (contamination="auto").
    return Scored(scores, model.negative_outlier_factor_ < model.offset_)


def ocsvm(x: FloatArray) -> Scored:
    from sklearn.svm import OneClassSVM

    model = OneClassSVM().fit(x)
    return Scored(-model.decision_function(x), model.predict(x) == -1)


def kde(x: FloatArray) -> Scored:
    """PyOD's KDE with the bandwidth set to the median pairwise distance.

    PyOD's default bandwidth (1.0) makes every density the point's own kernel in
    hundreds of dimensions, so all scores tie; the median heuristic avoids that.
    """
    from pyod.models.kde import KDE
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(DETECTOR_SEED)
    rows = rng.choice(
        x.shape[0], size=min(_BANDWIDTH_SAMPLE, x.shape[0]), replace=False
    )
    bandwidth = float(np.median(pdist(x[rows])))
    model = KDE(bandwidth=bandwidth if bandwidth > 0 else 1.0).fit(x)
    return Scored(np.asarray(model.decision_scores_, dtype=np.float64), None)


def ecod(x: FloatArray) -> Scored:
    from pyod.models.ecod import ECOD

    model = ECOD().fit(x)
    return Scored(np.asarray(model.decision_scores_, dtype=np.float64), None)


DETECTORS: dict[str, Callable[[FloatArray], Scored]] = {
    "L2": squared_l2,
    "Shell": shell,
    "IF": isolation_forest,
    "LOF": lof,
    "OC-SVM": ocsvm,
    "KDE": kde,
    "ECOD": ecod,
}
