"""The Result object: summary, JSON, curves for plotting."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import ltrend
from ltrend import reference

SCORES = np.concatenate([np.random.default_rng(3).normal(size=3000), [9.0, 11.0, 15.0]])


def test_repr_and_str_name_the_threshold_and_every_degree() -> None:
    result = ltrend.fit(SCORES)
    text = repr(result)
    assert text.startswith("Result(")
    assert f"degree={result.degree}" in text
    report = str(result)
    assert f"{result.threshold:.6g}" in report
    assert report.count("\n") >= len(result.table) + 3
    assert "<- chosen" in report


def test_to_dict_is_strict_json() -> None:
    result = ltrend.fit(SCORES)
    summary = json.loads(json.dumps(result.to_dict(include_mask=True), allow_nan=False))
    assert summary["threshold"] == result.threshold
    assert summary["n_anomalies"] == result.n_anomalies
    assert summary["anomaly_indices"] == np.flatnonzero(result.mask).tolist()
    assert [row["degree"] for row in summary["table"]] == [
        r.degree for r in result.table
    ]


def test_to_dict_writes_non_finite_values_as_strings() -> None:
    summary = ltrend.fit(np.ones(10)).to_dict()
    json.dumps(summary, allow_nan=False)
    assert summary["threshold"] == "inf"
    assert float(summary["threshold"]) == math.inf
    assert all(row["compactness"] == "nan" for row in summary["table"])


def test_sorted_scores_is_a_read_only_view() -> None:
    curve = ltrend.fit(SCORES).sorted_scores()
    np.testing.assert_array_equal(curve, np.sort(SCORES))
    with pytest.raises(ValueError, match="read-only"):
        curve[0] = 1.0


@pytest.mark.parametrize("degree", [1, 3, 5])
def test_fitted_curves_of_core_and_reference_agree(degree: int) -> None:
    core, ref = ltrend.fit(SCORES), reference.fit(SCORES)
    np.testing.assert_allclose(
        core.fitted_curve(degree), ref.fitted_curve(degree), rtol=1e-9, atol=1e-9
    )
    assert core.fitted_curve(degree).max() == pytest.approx(
        core.table[degree - 1].threshold, rel=1e-12
    )


def test_fitted_curve_defaults_to_the_chosen_degree_and_checks_its_argument() -> None:
    result = ltrend.fit(SCORES)
    np.testing.assert_array_equal(
        result.fitted_curve(), result.fitted_curve(result.degree)
    )
    with pytest.raises(ValueError, match="degree: must be one of"):
        result.fitted_curve(7)


def test_labels_and_counts() -> None:
    result = ltrend.fit(SCORES)
    assert result.labels.dtype == np.int8
    np.testing.assert_array_equal(result.labels, result.mask.astype(int))
    assert result.n_scores == SCORES.size
    assert result.method == "paper"
