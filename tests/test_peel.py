"""Iterative cleaning: rounds, the stopping rule, and agreement with the reference."""

from __future__ import annotations

import numpy as np
import pytest

import ltrend
from ltrend import reference


def layered(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.permutation(
        np.concatenate(
            [rng.normal(0, 1, 5000), rng.normal(12, 0.5, 60), rng.normal(40, 1, 8)]
        )
    )


def test_first_round_is_the_plain_fit() -> None:
    scores = layered()
    peeled, plain = ltrend.peel(scores), ltrend.fit(scores)
    first = peeled.rounds[0]
    assert first.threshold == plain.threshold
    assert first.n_anomalies == plain.n_anomalies
    np.testing.assert_array_equal(peeled.round_of == 1, plain.mask)


@pytest.mark.parametrize("seed", range(4))
def test_rounds_go_deeper_each_time(seed: int) -> None:
    scores = layered(seed)
    # fence=0 accepts any round whose threshold is above the median, so the
    # rounds run to the limit and each peels a lower layer.
    peeled = ltrend.peel(scores, fence=0.0, max_rounds=4)
    assert len(peeled.rounds) == 4
    assert peeled.stop_reason == "round limit"
    thresholds = [r.threshold for r in peeled.rounds]
    assert thresholds == sorted(thresholds, reverse=True)
    assert peeled.threshold == thresholds[-1]
    assert [r.round for r in peeled.rounds] == [1, 2, 3, 4]


@pytest.mark.parametrize("seed", range(4))
def test_round_bookkeeping(seed: int) -> None:
    scores = layered(seed)
    peeled = ltrend.peel(scores, fence=1.0)
    for r in peeled.rounds:
        removed = scores[peeled.round_of == r.round]
        assert removed.size == r.n_anomalies
        assert removed.min() >= r.threshold
    remaining = scores.size - int(peeled.mask.sum())
    assert peeled.rounds[-1].n_remaining == remaining


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("distribution", ["normal", "uniform"])
def test_anomaly_free_data_is_not_eaten(seed: int, distribution: str) -> None:
    rng = np.random.default_rng(seed)
    n = (500, 5000, 50_000)[seed % 3]
    scores = getattr(rng, distribution)(size=n)
    peeled = ltrend.peel(scores, max_rounds=50)
    naive_rounds = 0
    remaining = scores
    while naive_rounds < 5:
        result = ltrend.fit(remaining)
        if result.n_anomalies == 0:
            break
        remaining = remaining[~result.mask]
        naive_rounds += 1
    # Blind repetition keeps flagging (this is what the stopping rule prevents)...
    assert naive_rounds == 5
    assert remaining.size < scores.size
    # ...while peeling stops after the plain fit's own round.
    assert len(peeled.rounds) <= 1
    assert peeled.stop_reason in ("not separated", "no anomaly")
    assert peeled.mask.mean() <= 0.05


def test_stop_reasons() -> None:
    assert ltrend.peel(np.ones(20)).stop_reason == "no anomaly"
    assert ltrend.peel(layered(), max_rounds=1).stop_reason == "round limit"
    tiny = ltrend.peel([0.0, 0.0, 5.0])
    assert tiny.stop_reason == "too few scores"
    assert ltrend.peel(np.ones(20)).threshold == np.inf


def test_non_finite_scores_follow_the_policy() -> None:
    scores = layered()
    scores[[3, 9]] = [np.nan, np.inf]
    with pytest.raises(ValueError, match="found 2 NaN or infinite"):
        ltrend.peel(scores)
    peeled = ltrend.peel(scores, nan_policy="omit")
    assert peeled.round_of[[3, 9]].tolist() == [0, 0]


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_rounds": 0}, ValueError),
        ({"max_rounds": 1.5}, TypeError),
        ({"fence": -1.0}, ValueError),
        ({"fence": "3"}, TypeError),
    ],
)
def test_bad_options(options: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        ltrend.peel(layered(), **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(4))
def test_reference_peels_the_same_rounds(seed: int) -> None:
    scores = layered(seed)
    core, ref = ltrend.peel(scores), reference.peel(scores)
    assert [r.n_anomalies for r in core.rounds] == [r.n_anomalies for r in ref.rounds]
    assert [r.degree for r in core.rounds] == [r.degree for r in ref.rounds]
    np.testing.assert_array_equal(core.round_of, ref.round_of)
    assert core.stop_reason == ref.stop_reason


def test_the_fence_holds_at_the_largest_floats() -> None:
    # Found by test_properties.py's peel test: the midpoint of the two middle
    # scores and the deviation of -1.7e308 overflowed (a RuntimeWarning, so an
    # error here). Exact: median 1.55e308, MAD 0.1e308 (as rationals).
    from fractions import Fraction

    from ltrend._peel import _MAD_TO_SIGMA, _robust_upper_fence

    normal = np.array([-1.7e308, 1.5e308, 1.6e308, 1.7e308])
    exact = [Fraction(v) for v in normal.tolist()]
    median = (exact[1] + exact[2]) / 2
    deviations = sorted(abs(v - median) for v in exact)
    mad = (deviations[1] + deviations[2]) / 2
    expected = float(median + Fraction(_MAD_TO_SIGMA) * mad)
    assert _robust_upper_fence(normal, 1.0) == pytest.approx(expected, rel=1e-15)
    assert _robust_upper_fence(normal, 10.0) == np.inf
    # Ordinary scores: the plain formula, to the bit.
    z = np.array([1.0, 2.0, 3.0, 10.0])
    assert _robust_upper_fence(z, 2.0) == 2.5 + 2.0 * _MAD_TO_SIGMA * 1.0
