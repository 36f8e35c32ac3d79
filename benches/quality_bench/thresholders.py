"""Every thresholder the benchmark judges, each a function ``scores -> mask``.

Families:

- ``ltrend``: ``ltrend.fit(scores, method=m)`` for every ``m`` in ``ltrend.METHODS``
  (``paper`` is the paper's method as written), and ``ltrend.peel`` (the paper's
  iterative cleaning).
- ``rule``: the detection-free rules a user could pick instead: MAD, 3-sigma, IQR,
  RANSAC on the sorted curve with a MAD band, and PyOD's default 10 % contamination.
- ``builtin``: the detector's own decision, where it has one (scikit-learn's
  Isolation Forest and OC-SVM ``predict``, LOF's default ``offset_``).
- ``pythresh``: every PyThresh thresholder, with its defaults; run in a worker
  process with a time limit (see ``runner``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

import ltrend

FloatArray = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

#: Gaussian consistency constant: 1.4826 x MAD estimates the standard deviation.
MAD_TO_SIGMA = 1.4826
#: Robust standard deviations above the median for the MAD rule (the usual 3).
MAD_CUT = 3.0
#: PyOD's default contamination.
PYOD_CONTAMINATION = 0.1
#: Seed of RANSAC's random subsets.
RANSAC_SEED = 0

#: PyThresh's thresholders (module name, class name), every one the package ships.
PYTHRESH = [
    "aucp",
    "boot",
    "chau",
    "clf",
    "clust",
    "comb",
    "cpd",
    "decomp",
    "dsn",
    "dummy",
    "eb",
    "fgd",
    "filter",
    "fwfm",
    "gamgmm",
    "gesd",
    "hist",
    "iqr",
    "karch",
    "mad",
    "mcst",
    "meta",
    "mixmod",
    "moll",
    "mtt",
    "ocsvm",
    "qmcd",
    "regr",
    "vae",
    "wind",
    "yj",
    "zscore",
]


@dataclass(frozen=True)
class Thresholder:
    name: str
    family: str
    #: ``scores -> mask``; None for ``builtin`` (the mask comes with the scores).
    apply: Callable[[FloatArray], Mask] | None


def mad_rule(scores: FloatArray) -> Mask:
    """``scores >= median + 3 * 1.4826 * MAD``."""
    median = np.median(scores)
    mad = np.median(np.abs(scores - median))
    return scores >= median + MAD_CUT * MAD_TO_SIGMA * mad


def three_sigma(scores: FloatArray) -> Mask:
    """``scores >= mean + 3 * std``."""
    return scores >= scores.mean() + 3.0 * scores.std()


def iqr_rule(scores: FloatArray) -> Mask:
    """``scores >= Q3 + 1.5 * (Q3 - Q1)`` (Tukey's upper fence)."""
    q1, q3 = np.percentile(scores, [25.0, 75.0])
    return scores >= q3 + 1.5 * (q3 - q1)


def pyod_default(scores: FloatArray) -> Mask:
    """PyOD's rule at its default contamination: ``scores > percentile(90)``."""
    return scores > np.percentile(scores, 100.0 * (1.0 - PYOD_CONTAMINATION))


def ransac_rule(scores: FloatArray) -> Mask:
    """RANSAC line through the sorted curve; anomalies lie above its MAD band.

    scikit-learn's ``RANSACRegressor`` fits ``s[i] ~ a + b i`` on random minimal
    subsets; its default inlier band is the MAD of the sorted scores. The threshold
    is the lowest score in the upper half of the curve that lies above the band.
    """
    from sklearn.linear_model import RANSACRegressor

    s = np.sort(scores)
    ranks = np.arange(s.size, dtype=np.float64)[:, None] / s.size
    model = RANSACRegressor(random_state=RANSAC_SEED).fit(ranks, s)
    band = float(np.median(np.abs(s - np.median(s))))
    residual = s - model.predict(ranks)
    above = np.flatnonzero((residual > band) & (np.arange(s.size) >= s.size // 2))
    if above.size == 0:
        return np.zeros(scores.shape, dtype=bool)
    return scores >= s[above[0]]


def ltrend_method(method: str) -> Callable[[FloatArray], Mask]:
    def apply(scores: FloatArray) -> Mask:
        return ltrend.fit(scores, method=method).mask

    return apply


def ltrend_peel(scores: FloatArray) -> Mask:
    """The paper's iterative cleaning (figure 5), as ``ltrend.peel`` defines it."""
    return ltrend.peel(scores).mask


def pythresh_method(module: str) -> Callable[[FloatArray], Mask]:
    def apply(scores: FloatArray) -> Mask:
        found = importlib.import_module(f"pythresh.thresholds.{module}")
        thresholder = getattr(found, module.upper())()
        labels = np.asarray(thresholder.eval(scores))
        return labels.astype(bool).reshape(scores.shape)

    return apply


def thresholders() -> list[Thresholder]:
    """Every thresholder, L-trend methods first."""
    found = [
        Thresholder(f"L-trend {m}", "ltrend", ltrend_method(m)) for m in ltrend.METHODS
    ]
    found.append(Thresholder("L-trend peel", "ltrend", ltrend_peel))
    found += [
        Thresholder("MAD", "rule", mad_rule),
        Thresholder("3-sigma", "rule", three_sigma),
        Thresholder("IQR", "rule", iqr_rule),
        Thresholder("RANSAC", "rule", ransac_rule),
        Thresholder("PyOD 10%", "rule", pyod_default),
        Thresholder("built-in", "builtin", None),
    ]
    found += [
        Thresholder(f"PyThresh {m.upper()}", "pythresh", pythresh_method(m))
        for m in PYTHRESH
    ]
    return found
