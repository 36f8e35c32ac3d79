"""Quality of a threshold against ground-truth labels (1 = anomaly, 0 = normal).

Predictions are a boolean mask or 0/1 labels; a threshold ``t`` predicts
``scores >= t``. Undefined ratios (a zero denominator) are 0.0, as in
scikit-learn's default ``zero_division`` behaviour, without the warning.

Examples
--------
>>> import numpy as np
>>> from ltrend import metrics
>>> y_true = np.array([0, 0, 0, 1, 1])
>>> scores = np.array([0.1, 0.2, 0.9, 0.8, 1.0])
>>> metrics.f1(y_true, scores >= 0.85)
0.5
>>> metrics.best_f1(y_true, scores)
(0.8, 0.8)
>>> round(metrics.f1_ratio(y_true, scores, 0.85), 6)
0.625
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "Confusion",
    "best_f1",
    "confusion",
    "f1",
    "f1_ratio",
    "matthews",
    "precision",
    "recall",
    "report",
]


class Confusion(NamedTuple):
    """Counts of a binary prediction against labels."""

    tp: int
    fp: int
    fn: int
    tn: int


def _as_binary(values: npt.ArrayLike, name: str) -> npt.NDArray[np.bool_]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {array.shape}")
    if array.dtype == np.bool_:
        return array
    if not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name}: expected 0/1 or boolean values")
    return array.astype(bool)


def confusion(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> Confusion:
    """Count true/false positives and negatives of ``y_pred`` against ``y_true``."""
    truth = _as_binary(y_true, "y_true")
    predicted = _as_binary(y_pred, "y_pred")
    if truth.shape != predicted.shape:
        raise ValueError(
            f"y_pred: length {predicted.shape[0]} differs from y_true's "
            f"{truth.shape[0]}"
        )
    tp = int(np.count_nonzero(truth & predicted))
    fp = int(np.count_nonzero(~truth & predicted))
    fn = int(np.count_nonzero(truth & ~predicted))
    return Confusion(tp, fp, fn, truth.size - tp - fp - fn)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def precision(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """``tp / (tp + fp)``; 0.0 when nothing is predicted anomalous."""
    c = confusion(y_true, y_pred)
    return _ratio(c.tp, c.tp + c.fp)


def recall(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """``tp / (tp + fn)``; 0.0 when there is no anomaly."""
    c = confusion(y_true, y_pred)
    return _ratio(c.tp, c.tp + c.fn)


def f1(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """``2 tp / (2 tp + fp + fn)``; 0.0 when that is 0/0."""
    c = confusion(y_true, y_pred)
    return _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn)


def matthews(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Matthews correlation coefficient; 0.0 when any margin is empty."""
    tp, fp, fn, tn = (float(v) for v in confusion(y_true, y_pred))
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return _ratio(tp * tn - fp * fn, denominator)


def best_f1(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[float, float]:
    """The best F1 over every threshold, and the (lowest) threshold reaching it.

    Every cut between distinct score values is tried exactly, in O(n log n): the
    scores are sorted once in decreasing order and the counts are cumulative
    sums. A NaN score is never at or above a threshold, so it is never predicted
    anomalous and is not a candidate threshold (its label still counts). Returns
    ``(0.0, inf)`` when there is no anomaly in ``y_true``.
    """
    truth = _as_binary(y_true, "y_true")
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != truth.shape:
        raise ValueError(
            f"scores: shape {values.shape} differs from y_true's {truth.shape}"
        )
    positives = int(np.count_nonzero(truth))
    comparable = ~np.isnan(values)
    if positives == 0 or not comparable.any():
        return 0.0, math.inf
    values, truth = values[comparable], truth[comparable]
    order = np.argsort(-values, kind="stable")
    ordered = values[order]
    true_positives = np.cumsum(truth[order])
    # Predicting "score >= ordered[k]" selects every score up to the last copy
    # of that value, so only the last index of each run of ties is a valid cut.
    last_of_run = np.append(ordered[1:] != ordered[:-1], True)
    predicted = np.arange(1, values.size + 1)[last_of_run]
    tp = true_positives[last_of_run]
    scores_f1 = 2.0 * tp / (predicted + positives)
    # The cuts run from the highest threshold down: take the last best one.
    best = scores_f1.size - 1 - int(np.argmax(scores_f1[::-1]))
    return float(scores_f1[best]), float(ordered[last_of_run][best])


def f1_ratio(y_true: npt.ArrayLike, scores: npt.ArrayLike, threshold: float) -> float:
    """F1 at ``threshold`` over the best F1 of any threshold (the paper's eq. 9).

    NaN when ``y_true`` has no anomaly (no threshold can be judged).
    """
    best, _ = best_f1(y_true, scores)
    if best == 0.0:
        return math.nan
    values = np.asarray(scores, dtype=np.float64)
    return f1(y_true, values >= np.float64(threshold)) / best


def report(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, threshold: float
) -> dict[str, float]:
    """Precision, recall, F1, MCC and F1 ratio of ``scores >= threshold``."""
    predicted = np.asarray(scores, dtype=np.float64) >= np.float64(threshold)
    return {
        "precision": precision(y_true, predicted),
        "recall": recall(y_true, predicted),
        "f1": f1(y_true, predicted),
        "mcc": matthews(y_true, predicted),
        "f1_ratio": f1_ratio(y_true, scores, threshold),
    }
