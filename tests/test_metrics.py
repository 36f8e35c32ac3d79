"""``ltrend.metrics`` against scikit-learn on random inputs, plus the edge cases."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ltrend import metrics

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def _quiet(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a scikit-learn metric without its single-label warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


MAX_EXAMPLES = int(os.environ.get("LTREND_HYPOTHESIS_EXAMPLES", "200"))

# Scores drawn from a few values so that ties between scores are common.
_tied_scores = arrays(
    np.float64,
    st.integers(1, 60),
    elements=st.sampled_from([-1.0, 0.0, 0.25, 0.5, 1.0, 2.0, 3.5, 10.0]),
)


@st.composite
def labelled_scores(
    draw: st.DrawFn,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Random 0/1 labels with random (often tied) scores of the same length."""
    scores = draw(
        st.one_of(
            _tied_scores,
            arrays(
                np.float64,
                st.integers(1, 60),
                elements=st.floats(-1e6, 1e6, allow_nan=False),
            ),
        )
    )
    labels = draw(
        arrays(np.int64, scores.shape, elements=st.integers(0, 1)),
    )
    return labels, scores


def _best_f1_sklearn(
    labels: npt.NDArray[np.int64], scores: npt.NDArray[np.float64]
) -> float:
    """Best F1 over scikit-learn's precision-recall curve (every distinct cut)."""
    precision, recall, _ = _quiet(
        sklearn_metrics.precision_recall_curve, labels, scores
    )
    total = precision + recall
    f1 = np.divide(
        2 * precision * recall, total, out=np.zeros_like(total), where=total > 0
    )
    return float(f1.max())


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(labelled_scores(), st.floats(-2.0, 11.0))
def test_mask_metrics_match_sklearn(
    data: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]], cut: float
) -> None:
    labels, scores = data
    predicted = scores >= cut
    kwargs = {"zero_division": 0}
    assert metrics.precision(labels, predicted) == pytest.approx(
        _quiet(sklearn_metrics.precision_score, labels, predicted, **kwargs), abs=1e-12
    )
    assert metrics.recall(labels, predicted) == pytest.approx(
        _quiet(sklearn_metrics.recall_score, labels, predicted, **kwargs), abs=1e-12
    )
    assert metrics.f1(labels, predicted) == pytest.approx(
        _quiet(sklearn_metrics.f1_score, labels, predicted, **kwargs), abs=1e-12
    )
    assert metrics.matthews(labels, predicted) == pytest.approx(
        _quiet(sklearn_metrics.matthews_corrcoef, labels, predicted), abs=1e-9
    )
    # 0/1 integer predictions mean the same as the boolean mask.
    assert metrics.f1(labels, predicted.astype(np.int8)) == metrics.f1(
        labels, predicted
    )


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(labelled_scores())
def test_best_f1_matches_the_sklearn_curve(
    data: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]],
) -> None:
    labels, scores = data
    best, threshold = metrics.best_f1(labels, scores)
    if labels.sum() == 0:
        assert (best, threshold) == (0.0, math.inf)
        return
    assert best == pytest.approx(_best_f1_sklearn(labels, scores), abs=1e-12)
    # The returned threshold reaches that F1, and no lower score value does.
    assert metrics.f1(labels, scores >= threshold) == pytest.approx(best, abs=1e-12)
    lower = np.unique(scores[scores < threshold])
    for value in lower:
        assert metrics.f1(labels, scores >= value) < best + 1e-12


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(labelled_scores(), st.floats(-2.0, 11.0))
def test_f1_ratio_is_f1_over_best_f1(
    data: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]], cut: float
) -> None:
    labels, scores = data
    ratio = metrics.f1_ratio(labels, scores, cut)
    if labels.sum() == 0:
        assert math.isnan(ratio)
        return
    expected = _quiet(
        sklearn_metrics.f1_score, labels, scores >= cut, zero_division=0
    ) / _best_f1_sklearn(labels, scores)
    assert ratio == pytest.approx(expected, abs=1e-12)
    assert 0.0 <= ratio <= 1.0 + 1e-12


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(labelled_scores(), st.floats(-2.0, 11.0))
def test_report_agrees_with_the_single_metrics(
    data: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]], cut: float
) -> None:
    labels, scores = data
    summary = metrics.report(labels, scores, cut)
    predicted = scores >= cut
    assert summary["precision"] == metrics.precision(labels, predicted)
    assert summary["recall"] == metrics.recall(labels, predicted)
    assert summary["f1"] == metrics.f1(labels, predicted)
    assert summary["mcc"] == metrics.matthews(labels, predicted)
    ratio = metrics.f1_ratio(labels, scores, cut)
    assert summary["f1_ratio"] == ratio or (
        math.isnan(ratio) and math.isnan(summary["f1_ratio"])
    )


def test_a_perfect_threshold_has_ratio_one() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.3, 0.2, 0.4, 5.0, 6.0])
    assert metrics.best_f1(labels, scores) == (1.0, 5.0)
    assert metrics.f1_ratio(labels, scores, 1.0) == 1.0
    # Flag everything: precision 2/6, recall 1, F1 = 2 * 2 / (2 + 6) = 0.5.
    assert metrics.f1_ratio(labels, scores, -math.inf) == 0.5


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="0/1"):
        metrics.f1([0, 2], [0, 1])
    with pytest.raises(ValueError, match="1-D"):
        metrics.f1([[0, 1]], [[0, 1]])
    with pytest.raises(ValueError, match="length"):
        metrics.f1([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="shape"):
        metrics.best_f1([0, 1, 1], [0.0, 1.0])
