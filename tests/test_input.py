"""Argument checks: every bad input gets a clear error, good input is never altered."""

from __future__ import annotations

import numpy as np
import pytest

import ltrend
from ltrend import reference

from parity import FitFunction

FITS = pytest.mark.parametrize("fit", [ltrend.fit, reference.fit], ids=["core", "ref"])
SCORES = np.concatenate([np.linspace(0.0, 1.0, 300), [5.0, 7.0, 9.0]])


@FITS
@pytest.mark.parametrize(
    ("scores", "error", "pattern"),
    [
        (np.ones((10, 2)), ValueError, r"1-D.*shape \(10, 2\)"),
        (np.float64(3.0), ValueError, r"1-D.*0-D"),
        (np.ones(10, dtype=complex), TypeError, "complex"),
        (np.array(["1", "2", "3"]), TypeError, "real numbers.*dtype <U1"),
        (np.array([1.0, 2.0, 3.0], dtype=object), TypeError, "dtype object"),
        ([[1.0, 2.0], [3.0]], ValueError, "could not be read"),
        (np.array([], dtype=np.float64), ValueError, "at least 3.*got 0"),
    ],
)
def test_bad_scores(
    fit: FitFunction, scores: object, error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        fit(scores)


@FITS
@pytest.mark.parametrize(
    ("options", "error", "pattern"),
    [
        ({"max_degree": 0}, ValueError, "max_degree: must be between 1 and 10, got 0"),
        ({"max_degree": 11}, ValueError, "got 11"),
        ({"max_degree": 2.5}, TypeError, "max_degree: expected an integer"),
        ({"max_degree": True}, TypeError, "max_degree"),
        ({"nan_policy": "propagate"}, ValueError, "nan_policy"),
        ({"method": "magic"}, ValueError, "method: must be one of"),
    ],
)
def test_bad_options(
    fit: FitFunction, options: dict[str, object], error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        fit(SCORES, **options)


@FITS
@pytest.mark.parametrize(
    "layout",
    [
        "list",
        "int",
        "uint8",
        "float16",
        "bool",
        "strided",
        "reversed",
        "fortran",
        "numpy_int",
    ],
)
def test_layouts_and_dtypes_are_accepted(fit: FitFunction, layout: str) -> None:
    base = np.concatenate([np.arange(300) % 17, [60, 80, 99]]).astype(np.int64)
    scores: object = {
        "list": base.tolist(),
        "int": base,
        "uint8": base.astype(np.uint8),
        "float16": base.astype(np.float16),
        "bool": base > 10,
        "strided": np.repeat(base, 2)[::2],
        "reversed": base[::-1].copy()[::-1],
        "fortran": np.asfortranarray(base.reshape(-1, 1))[:, 0],
        "numpy_int": np.asarray(base, dtype=np.int32),
    }[layout]
    expected = base > 10 if layout == "bool" else base
    result = fit(scores)
    assert result.mask.dtype == np.bool_
    assert result.mask.shape == (len(expected),)
    np.testing.assert_array_equal(result.mask, expected >= result.threshold)


@FITS
def test_input_is_never_modified(fit: FitFunction) -> None:
    scores = np.random.default_rng(0).permutation(SCORES)
    for array in (scores, scores.astype(np.float32)):
        before = array.copy()
        fit(array)
        np.testing.assert_array_equal(array, before)


def test_readonly_input_is_accepted() -> None:
    scores = SCORES.copy()
    scores.flags.writeable = False
    assert ltrend.fit(scores).n_anomalies == 3


def test_integer_max_degree_types() -> None:
    assert len(ltrend.fit(SCORES, max_degree=np.int64(3)).table) == 3


def test_misaligned_input_is_accepted() -> None:
    # Such arrays come back from dask.distributed: views of a message buffer.
    raw = np.zeros(SCORES.size * 8 + 1, dtype=np.uint8)
    misaligned = np.frombuffer(raw.data, dtype=np.float64, offset=1, count=SCORES.size)
    assert not misaligned.flags.aligned
    raw[1:] = np.frombuffer(SCORES.tobytes(), dtype=np.uint8)
    assert ltrend.fit(misaligned).threshold == ltrend.fit(SCORES).threshold
