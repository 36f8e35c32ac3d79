"""LTREND against PyThresh itself: its interface, its 2-D reduction, its combiners."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import numpy.typing as npt
import pytest
from pyod.models.knn import KNN
from pyod.models.lof import LOF
from pyod.utils.data import generate_data
from pythresh.thresholds.comb import COMB
from pythresh.thresholds.iqr import IQR
from pythresh.thresholds.mad import MAD
from sklearn.base import clone

import ltrend
from ltrend.pythresh import LTREND

Split = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]


@pytest.fixture(scope="module")
def split() -> Split:
    """PyOD's synthetic data, as PyThresh's own tests use it."""
    X_train, X_test, _, _ = generate_data(
        n_train=300, n_test=100, contamination=0.1, random_state=42
    )
    return X_train, X_test


@pytest.fixture(scope="module")
def knn_scores(split: Split) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """KNN decision scores on the training and the test rows."""
    X_train, X_test = split
    detector = KNN().fit(X_train)
    return detector.decision_scores_, detector.decision_function(X_test)


@pytest.fixture(scope="module")
def two_detectors(
    split: Split,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(n_samples, 2) scores of KNN and LOF on the training and the test rows."""
    X_train, X_test = split
    detectors = [KNN().fit(X_train), LOF().fit(X_train)]
    train = np.column_stack([d.decision_scores_ for d in detectors])
    test = np.column_stack([d.decision_function(X_test) for d in detectors])
    return train, test


def test_eval_returns_labels_the_way_pythresh_thresholders_do(
    knn_scores: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
) -> None:
    scores, _ = knn_scores
    thresholder = LTREND()
    assert thresholder.thresh_ is None
    assert thresholder.dscores_ is None
    labels = thresholder.eval(scores)
    reference = IQR()
    reference_labels = reference.eval(scores)
    # Same shape, dtype and 0/1 coding as PyThresh's own thresholder.
    assert labels.shape == reference_labels.shape == scores.shape
    assert labels.dtype == reference_labels.dtype
    assert set(np.unique(labels)) == {0, 1}
    assert thresholder.thresh_ is not None
    np.testing.assert_array_equal(thresholder.labels_, labels)


def test_thresh_is_in_score_units_where_pythresh_normalises(
    knn_scores: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
) -> None:
    scores, _ = knn_scores
    thresholder = LTREND().fit(scores)
    assert thresholder.thresh_ == ltrend.fit(scores).threshold
    np.testing.assert_array_equal(thresholder.dscores_, scores)
    np.testing.assert_array_equal(
        thresholder.labels_, (scores >= thresholder.thresh_).astype(int)
    )
    # PyThresh's scale: its dscores_ are min-max normalised. The L-trend threshold
    # moves with the scores under such a map, so on PyThresh's scale it is the
    # normalised raw threshold.
    normalised = IQR().fit(scores).dscores_
    low, high = scores.min(), scores.max()
    on_pythresh_scale = LTREND().fit(normalised)
    assert on_pythresh_scale.thresh_ == pytest.approx(
        (thresholder.thresh_ - low) / (high - low), rel=1e-9
    )
    np.testing.assert_array_equal(on_pythresh_scale.labels_, thresholder.labels_)


def test_fit_then_predict_new_scores(
    knn_scores: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
) -> None:
    train, test = knn_scores
    thresholder = LTREND().fit(train)
    assert thresholder.thresh_ is not None
    np.testing.assert_array_equal(
        thresholder.predict(test), (test >= thresholder.thresh_).astype(int)
    )


def test_two_detectors_are_reduced_exactly_as_pythresh_does(
    two_detectors: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
) -> None:
    train, test = two_detectors
    thresholder = LTREND().fit(train)
    reference = IQR().fit(train)
    assert thresholder.dscores_ is not None
    assert thresholder.thresh_ is not None
    np.testing.assert_allclose(thresholder.dscores_, reference.dscores_, atol=1e-12)
    np.testing.assert_array_equal(
        thresholder.labels_, (thresholder.dscores_ >= thresholder.thresh_).astype(int)
    )
    # New rows go through the fitted reduction: give PyThresh our threshold and
    # its own predict must agree with ours.
    reference.thresh_ = thresholder.thresh_
    np.testing.assert_array_equal(thresholder.predict(test), reference.predict(test))


def test_joblib_round_trip(
    tmp_path: Path,
    two_detectors: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
) -> None:
    train, test = two_detectors
    thresholder = LTREND(max_degree=4).fit(train)
    path = tmp_path / "ltrend.joblib"
    joblib.dump(thresholder, path)
    loaded = joblib.load(path)
    assert isinstance(loaded, LTREND)
    assert loaded.get_params() == thresholder.get_params()
    assert loaded.thresh_ == thresholder.thresh_
    np.testing.assert_array_equal(loaded.dscores_, thresholder.dscores_)
    np.testing.assert_array_equal(loaded.predict(test), thresholder.predict(test))


def test_clone_gives_an_unfitted_copy() -> None:
    fresh = clone(LTREND(max_degree=3, random_state=7))
    assert isinstance(fresh, LTREND)
    assert fresh.get_params()["max_degree"] == 3
    assert fresh.get_params()["random_state"] == 7
    assert fresh.thresh_ is None


def test_joins_pythresh_combinations(
    knn_scores: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
) -> None:
    scores, _ = knn_scores
    combined = COMB(thresholders=[LTREND(), IQR(), MAD()], method="mode")
    labels = combined.eval(scores)
    votes = np.vstack([LTREND().eval(scores), IQR().eval(scores), MAD().eval(scores)])
    # Majority vote of three 0/1 labels.
    np.testing.assert_array_equal(labels, (votes.sum(axis=0) >= 2).astype(int))


def test_behaves_as_the_string_auto_and_prints_as_itself() -> None:
    thresholder = LTREND(max_degree=3)
    assert thresholder == "auto"
    assert isinstance(thresholder, str)
    assert repr(thresholder) == "LTREND(max_degree=3)"
    assert str(thresholder) == f"{thresholder}" == "LTREND(max_degree=3)"
