"""LTREND and relabel against PyOD itself: detectors that take a thresholder."""

from __future__ import annotations

import os
import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from pyod.models.base import BaseDetector
from pyod.models.ecod import ECOD
from pyod.models.iforest import IForest
from pyod.models.knn import KNN
from pyod.models.lof import LOF
from sklearn.base import clone

import ltrend
from ltrend import metrics
from ltrend.pyod import relabel
from ltrend.pythresh import LTREND

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LTREND_DATA", REPO.parent / "shared" / "data"))
EXAMPLE = REPO / "examples" / "pyod_relabel.py"

DETECTORS: dict[str, Callable[..., BaseDetector]] = {
    "IForest": lambda **kw: IForest(random_state=0, **kw),
    "LOF": LOF,
    "KNN": KNN,
    "ECOD": ECOD,
}


@pytest.fixture(scope="module")
def data() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Training rows with a few far outliers, and fresh test rows."""
    rng = np.random.default_rng(0)
    train = np.vstack([rng.normal(size=(400, 3)), rng.normal(6.0, 0.5, size=(8, 3))])
    test = np.vstack([rng.normal(size=(50, 3)), rng.normal(6.0, 0.5, size=(5, 3))])
    return train, test


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detector_takes_ltrend_as_contamination(
    name: str, data: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]
) -> None:
    train, test = data
    detector = DETECTORS[name](contamination=LTREND()).fit(train)
    expected = ltrend.fit(detector.decision_scores_)
    # The threshold stays in the detector's own score units.
    assert detector.threshold_ == expected.threshold
    np.testing.assert_array_equal(detector.labels_, expected.labels)
    new_scores = detector.decision_function(test)
    np.testing.assert_array_equal(
        detector.predict(test), (new_scores >= expected.threshold).astype(int)
    )


def test_a_detector_with_ltrend_clones_and_refits(
    data: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
) -> None:
    train, _ = data
    template = IForest(random_state=0, contamination=LTREND(max_degree=3))
    copy = clone(template)
    assert isinstance(copy.contamination, LTREND)
    assert copy.contamination is not template.contamination
    assert copy.contamination.max_degree == 3
    fitted = copy.fit(train)
    assert (
        fitted.threshold_ == ltrend.fit(fitted.decision_scores_, max_degree=3).threshold
    )


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_relabel_replaces_the_contamination_threshold(
    name: str, data: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]
) -> None:
    train, test = data
    detector = DETECTORS[name]().fit(train)
    # PyOD's default: the top 10 % of the training scores.
    assert detector.labels_.sum() == pytest.approx(0.1 * len(train), abs=1)
    result = relabel(detector, max_degree=4)
    expected = ltrend.fit(detector.decision_scores_, max_degree=4)
    assert result.threshold == expected.threshold == detector.threshold_
    np.testing.assert_array_equal(detector.labels_, expected.labels)
    new_scores = detector.decision_function(test)
    np.testing.assert_array_equal(
        detector.predict(test), (new_scores >= expected.threshold).astype(int)
    )
    assert isinstance(detector.contamination, LTREND)


def test_relabel_refuses_an_unfitted_detector() -> None:
    with pytest.raises(ValueError, match="KNN has no decision_scores_; fit it first"):
        relabel(KNN())


def _example() -> dict[str, Any]:
    return runpy.run_path(str(EXAMPLE))


def test_real_data_example_relabels_an_isolation_forest() -> None:
    path = DATA / "adbench" / "Classical" / "31_satimage-2.npz"
    if not path.exists():
        pytest.skip(f"real data absent: {path}")
    comparison = _example()["compare"](path)
    with np.load(path) as stored:
        labels = np.asarray(stored["y"])
    scores = comparison["scores"]
    expected = ltrend.fit(scores)
    assert comparison["ltrend"]["threshold"] == expected.threshold
    assert comparison["ltrend"]["flagged"] == expected.n_anomalies
    assert comparison["ltrend"]["f1"] == metrics.f1(labels, expected.mask)
    # PyOD's default flags the top 10 % of the scores.
    assert comparison["default"]["flagged"] == pytest.approx(0.1 * len(scores), abs=1)
