"""LTrendThreshold against scikit-learn itself: its estimator checks, clone, pickle."""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

import ltrend
from ltrend.sklearn import LTrendThreshold

#: The scikit-learn checks that do not apply to a thresholder, and why.
NOT_APPLICABLE = {
    "check_fit1d": "a thresholder takes a 1-D array of scores by design",
}


def _scores(seed: int = 0) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(1.0, 0.1, 400), rng.uniform(3.0, 6.0, 12)])


@parametrize_with_checks(  # type: ignore[untyped-decorator]
    [LTrendThreshold(), LTrendThreshold(max_degree=3, nan_policy="omit")],
    expected_failed_checks=lambda _: NOT_APPLICABLE,
)
def test_scikit_learn_estimator_checks(
    estimator: BaseEstimator, check: Callable[[BaseEstimator], Any]
) -> None:
    check(estimator)


def test_exported_from_the_package_lazily() -> None:
    assert ltrend.LTrendThreshold is LTrendThreshold
    with pytest.raises(AttributeError, match="no attribute 'Missing'"):
        _ = ltrend.Missing


def test_fit_learns_what_ltrend_fit_learns() -> None:
    scores = _scores()
    expected = ltrend.fit(scores, max_degree=4)
    thresholder = LTrendThreshold(max_degree=4).fit(scores)
    assert thresholder.threshold_ == expected.threshold
    assert thresholder.degree_ == expected.degree
    np.testing.assert_array_equal(thresholder.labels_, expected.mask.astype(int))
    assert thresholder.labels_.dtype == np.int64
    assert thresholder.n_features_in_ == 1
    assert thresholder.result_.table == expected.table


def test_one_column_is_the_same_as_1d() -> None:
    scores = _scores()
    flat = LTrendThreshold().fit(scores)
    column = LTrendThreshold().fit(scores[:, np.newaxis])
    assert column.threshold_ == flat.threshold_
    np.testing.assert_array_equal(column.predict(scores[:, np.newaxis]), flat.labels_)


def test_predict_compares_with_the_learned_threshold() -> None:
    thresholder = LTrendThreshold().fit(_scores())
    t = thresholder.threshold_
    new = np.array([t - 1.0, np.nextafter(t, -np.inf), t, t + 1.0])
    assert thresholder.predict(new).tolist() == [0, 0, 1, 1]


def test_fit_predict_returns_the_training_labels() -> None:
    scores = _scores(1)
    thresholder = LTrendThreshold()
    labels = thresholder.fit_predict(scores)
    np.testing.assert_array_equal(labels, thresholder.labels_)
    np.testing.assert_array_equal(labels, thresholder.predict(scores))


def test_params_round_trip_and_clone_is_unfitted() -> None:
    thresholder = LTrendThreshold(max_degree=3, nan_policy="omit")
    assert thresholder.get_params() == {
        "max_degree": 3,
        "method": "paper",
        "nan_policy": "omit",
        "random_state": 1234,
    }
    thresholder.set_params(max_degree=2)
    assert thresholder.fit(_scores()).degree_ in (1, 2)
    fresh = clone(thresholder)
    assert fresh.get_params() == thresholder.get_params()
    with pytest.raises(NotFittedError):
        fresh.predict([1.0])


def test_pickle_keeps_the_fit() -> None:
    thresholder = LTrendThreshold().fit(_scores())
    copy = pickle.loads(pickle.dumps(thresholder))
    assert copy.threshold_ == thresholder.threshold_
    new = _scores(2)
    np.testing.assert_array_equal(copy.predict(new), thresholder.predict(new))


def test_thresholds_an_isolation_forest() -> None:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(500, 2)), rng.normal(7.0, 0.5, size=(8, 2))])
    forest = IsolationForest(random_state=0).fit(X)
    scores = -forest.score_samples(X)
    thresholder = LTrendThreshold().fit(scores)
    assert thresholder.threshold_ == ltrend.fit(scores).threshold
    # The eight far points are the most anomalous; the learned cut keeps them.
    assert thresholder.labels_[-8:].all()


def test_several_columns_need_the_same_count_in_predict() -> None:
    rng = np.random.default_rng(3)
    thresholder = LTrendThreshold().fit(rng.random((200, 3)))
    with pytest.raises(ValueError, match="X has 2 features, but LTrendThreshold"):
        thresholder.predict(rng.random((5, 2)))
    with pytest.raises(ValueError, match="Reshape your data"):
        thresholder.predict(rng.random(5))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_scores_follow_nan_policy(bad: float) -> None:
    scores = _scores()
    scores[5] = bad
    with pytest.raises(ValueError, match=r"NaN|infinity"):
        LTrendThreshold().fit(scores)
    omitted = LTrendThreshold(nan_policy="omit").fit(scores)
    assert omitted.labels_[5] == 0
    assert omitted.threshold_ == ltrend.fit(scores, nan_policy="omit").threshold
    assert omitted.predict([bad]).tolist() == [0]


def test_bad_parameters_are_refused_at_fit() -> None:
    with pytest.raises(ValueError, match="max_degree"):
        LTrendThreshold(max_degree=0).fit(_scores())
    with pytest.raises(ValueError, match="method"):
        LTrendThreshold(method="nope").fit(_scores())
    with pytest.raises(ValueError, match="nan_policy"):
        LTrendThreshold(nan_policy="ignore").fit(_scores())  # type: ignore[arg-type]


def test_without_scikit_learn_the_import_says_how_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['sklearn'] = None\n"
        "import ltrend\n"
        "try:\n"
        "    ltrend.LTrendThreshold\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert 'pip install "ltrend[sklearn]"' in done.stdout
