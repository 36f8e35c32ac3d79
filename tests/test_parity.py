"""The Rust core (ltrend.fit) and the NumPy reference agree on every kind of input."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import ltrend
from ltrend import reference

from parity import assert_agree

# Every finite float, subnormals and the largest magnitudes included.
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
moderate = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def check(scores: npt.ArrayLike, **options: object) -> None:
    core = ltrend.fit(scores, **options)  # type: ignore[arg-type]
    ref = reference.fit(scores, **options)  # type: ignore[arg-type]
    try:
        assert_agree(core, ref, scores)
    except AssertionError:
        print("SCORES", np.asarray(scores).tolist())
        raise


@given(arrays(np.float64, st.integers(3, 300), elements=moderate))
def test_random_scores(scores: npt.NDArray[np.float64]) -> None:
    check(scores)


@given(arrays(np.float64, st.integers(3, 60), elements=finite_floats))
def test_wide_magnitudes(scores: npt.NDArray[np.float64]) -> None:
    check(scores)


@given(st.integers(3, 10), st.integers(0, 2**32 - 1), st.integers(1, 10))
def test_tiny_n(n: int, seed: int, max_degree: int) -> None:
    scores = np.random.default_rng(seed).standard_normal(n)
    check(scores, max_degree=max_degree)


@given(arrays(np.int64, st.integers(3, 400), elements=st.integers(0, 3)))
def test_heavy_ties(scores: npt.NDArray[np.int64]) -> None:
    check(scores)


@given(
    st.integers(3, 300),
    st.integers(0, 2**32 - 1),
    st.sampled_from([(0.0, 1.0), (-5.0, 5.0), (1e9, 1e9 + 1.0), (0.1, 0.3)]),
)
def test_two_valued(n: int, seed: int, values: tuple[float, float]) -> None:
    rng = np.random.default_rng(seed)
    scores = np.where(rng.random(n) < rng.random(), values[1], values[0])
    check(scores)


@given(st.integers(0, 2**32 - 1), st.sampled_from([1e6, 1e9]), st.integers(3, 3000))
def test_huge_offset_unit_noise(seed: int, offset: float, n: int) -> None:
    rng = np.random.default_rng(seed)
    scores = offset + rng.standard_normal(n)
    scores[: max(1, n // 50)] += rng.exponential(8.0, max(1, n // 50))
    check(scores)


@given(arrays(np.float32, st.integers(3, 300), elements=st.floats(-1e6, 1e6, width=32)))
def test_float32(scores: npt.NDArray[np.float32]) -> None:
    check(scores)


@given(
    arrays(
        np.float64,
        st.integers(3, 200),
        elements=st.one_of(moderate, st.sampled_from([np.nan, np.inf, -np.inf])),
    )
)
def test_nan_omit(scores: npt.NDArray[np.float64]) -> None:
    if np.count_nonzero(np.isfinite(scores)) < 3:
        return
    check(scores, nan_policy="omit")


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("shape", ["l_shape", "lognormal", "sorted", "reversed"])
def test_realistic_shapes_at_size(seed: int, shape: str) -> None:
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(50_000)
    scores = {
        "l_shape": np.concatenate([base, rng.normal(6, 2, 500)]),
        "lognormal": np.exp(base),
        "sorted": np.sort(base),
        "reversed": np.sort(base)[::-1],
    }[shape]
    check(scores)


def test_real_score_sets(real_scores: npt.NDArray[np.float64]) -> None:
    check(real_scores)
    check(real_scores.astype(np.float32))
    check(real_scores, max_degree=10)


@given(
    # Millesimal values: every side then keeps its moments on both curves. A
    # side far below the largest score is measured again in its own units,
    # whose rounding differs, so equal bits there would be luck; such inputs
    # are checked against the rules and the reference in test_properties.py.
    arrays(
        np.float64,
        st.integers(3, 200),
        elements=st.integers(-(10**6), 10**6).map(lambda i: i / 1000),
    ),
    st.sampled_from([-1000, -600, 600, 1000]),
)
def test_extreme_magnitudes_scale_exactly(
    scores: npt.NDArray[np.float64], exponent: int
) -> None:
    # Squares of 2^600 overflow and of 2^-600 underflow; the result must still
    # be the ordinary one, scaled (powers of two commute with every step).
    extreme = np.ldexp(scores, exponent)
    if not np.array_equal(np.ldexp(extreme, -exponent), scores):
        return  # some scores fell into subnormals: not the same data any more
    check(extreme)
    plain, scaled = ltrend.fit(scores), ltrend.fit(extreme)
    assert scaled.degree == plain.degree
    assert scaled.threshold == np.ldexp(plain.threshold, exponent)
    np.testing.assert_array_equal(scaled.mask, plain.mask)
