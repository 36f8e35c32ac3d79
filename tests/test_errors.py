"""No panic crosses into Python: every error of the Rust core is a ValueError or
TypeError with a message, provoked here through the native module.

The Python layer checks most arguments before the core sees them, so each case
below calls ``ltrend._core`` directly where the public API would stop earlier:
these are the core's own guards, which must hold when a check above them is
missed. A panic would surface as ``pyo3_runtime.PanicException``, a
BaseException that ``pytest.raises(ValueError)`` does not catch, so each case
fails loudly if its path ever panics.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ltrend
from ltrend import _core

REPO = Path(__file__).resolve().parents[1]
SCORES = np.concatenate([np.linspace(0.0, 1.0, 50), [5.0, 7.0]])
MONITOR_OPTIONS: dict[str, object] = {
    "window": 20,
    "refit_every": 5,
    "min_scores": 10,
    "max_degree": 5,
    "nan_policy": "raise",
    "method": "paper",
}


def core_monitor(**changes: object) -> _core.Monitor:
    return _core.Monitor(**{**MONITOR_OPTIONS, **changes})  # type: ignore[arg-type]


def snapshot() -> bytes:
    monitor = core_monitor()
    monitor.update_many(np.r_[SCORES[:30], 9.0])
    return monitor.to_bytes()


def seal(version: int, payload: bytes) -> bytes:
    body = b"\x89LTMON\r\n" + struct.pack("<IQ", version, len(payload)) + payload
    return body + struct.pack("<I", zlib.crc32(body))


def payload() -> bytes:
    return snapshot()[20:-4]


def flip(data: bytes, at: int) -> bytes:
    damaged = bytearray(data)
    damaged[at] ^= 0x01
    return bytes(damaged)


# One case per Rust error variant: (variant, call, exception, message pattern).
CASES: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    (
        "TooFewScores",
        lambda: _core.fit(np.array([1.0, 2.0]), max_degree=5, nan_policy="raise"),
        ValueError,
        "scores: need at least 3 finite scores.*got 2",
    ),
    (
        "NonFinite",
        lambda: _core.fit(np.r_[SCORES, np.nan], max_degree=5, nan_policy="raise"),
        ValueError,
        "scores: found 1 NaN or infinite value.*index 52",
    ),
    (
        "InvalidMaxDegree",
        lambda: _core.fit(SCORES, max_degree=11, nan_policy="raise"),
        ValueError,
        "max_degree: must be between 1 and 10, got 11",
    ),
    (
        "OptionOutOfRange",
        lambda: core_monitor(window=2),
        ValueError,
        "window: must be between 3 and",
    ),
    (
        "UnknownMethod",
        lambda: core_monitor(method="otsu"),
        ValueError,
        re.escape(
            'method: must be one of ["paper", "two_segment", "knee", "log_knee", '
            '"tail_aware"], got "otsu"'
        ),
    ),
    (
        "NotEnoughScores",
        lambda: core_monitor().refit(),
        ValueError,
        "refit: the window holds 0 scores, fewer than min_scores = 10",
    ),
    (
        "InvalidPartial",
        lambda: _core.project_sorted(
            np.arange(5.0), offset=0, n=5, origin=0.0, max_degree=3, probes=[9]
        ),
        ValueError,
        "partial state: probe 9 past the 5 sorted scores",
    ),
    (
        "Truncated",
        lambda: _core.Monitor.from_bytes(snapshot()[:-1]),
        ValueError,
        "snapshot: truncated",
    ),
    (
        "Oversized",
        lambda: _core.Monitor.from_bytes(snapshot() + b"\0"),
        ValueError,
        "snapshot: oversized.*1 extra",
    ),
    (
        "BadMagic",
        lambda: _core.Monitor.from_bytes(b"PK\x03\x04" + bytes(40)),
        ValueError,
        "snapshot: not a monitor snapshot",
    ),
    (
        "ChecksumMismatch",
        lambda: _core.Monitor.from_bytes(flip(snapshot(), 30)),
        ValueError,
        "snapshot: checksum mismatch",
    ),
    (
        "UnsupportedVersion",
        lambda: _core.Monitor.from_bytes(seal(7, payload())),
        ValueError,
        "snapshot: format version 7 is not supported",
    ),
    (
        "Malformed",
        lambda: _core.Monitor.from_bytes(seal(1, payload()[:-1])),
        ValueError,
        "snapshot: malformed payload",
    ),
    (
        "Inconsistent",
        lambda: _core.Monitor.from_bytes(seal(1, struct.pack("<Q", 5) + payload()[8:])),
        ValueError,
        "snapshot: inconsistent state",
    ),
]


@pytest.mark.parametrize(
    ("variant", "call", "error", "pattern"), CASES, ids=[c[0] for c in CASES]
)
def test_every_core_error_is_a_python_exception(
    variant: str, call: Callable[[], object], error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern) as caught:
        call()
    assert type(caught.value) is error, variant
    assert "\n" not in str(caught.value)


def _variants(path: Path, enum: str) -> list[str]:
    """The variant names of ``pub enum ENUM`` in a Rust source file."""
    source = path.read_text()
    body = source.split(f"pub enum {enum} {{", 1)[1].split("\n}", 1)[0]
    return re.findall(r"^    (\w+)", body, flags=re.MULTILINE)


def test_the_cases_cover_every_variant() -> None:
    # A new error variant must come with a case above that provokes it.
    kernel = _variants(REPO / "rust" / "error.rs", "KernelError")
    snapshot_errors = _variants(REPO / "rust" / "snapshot.rs", "SnapshotError")
    assert "Snapshot" in kernel, "precondition: the parser finds the variants"
    expected = (set(kernel) - {"Snapshot"}) | set(snapshot_errors)
    assert expected == {case[0] for case in CASES}


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        # Conversion and layout errors of the seam itself (rust/python.rs).
        (
            lambda: _core.fit(SCORES, max_degree=5, nan_policy="propagate"),
            ValueError,
            'nan_policy: must be "raise" or "omit"',
        ),
        (
            lambda: core_monitor(nan_policy="ignore"),
            ValueError,
            'nan_policy: must be "raise" or "omit"',
        ),
        (
            lambda: _core.fit(
                SCORES.astype(np.int64),  # type: ignore[arg-type]
                max_degree=5,
                nan_policy="raise",
            ),
            TypeError,
            "type mismatch",
        ),
        (
            lambda: _core.fit(SCORES[::2], max_degree=5, nan_policy="raise"),
            TypeError,
            "contiguous",
        ),
        (
            lambda: _core.fit(SCORES.reshape(2, -1), max_degree=5, nan_policy="raise"),
            TypeError,
            "dimensionality mismatch",
        ),
        (
            lambda: _core.fit(SCORES, max_degree=-1, nan_policy="raise"),
            OverflowError,
            "negative int",
        ),
        (lambda: core_monitor().update_many(SCORES[::2]), TypeError, "contiguous"),
        (
            lambda: core_monitor().update_many(np.array([1.0, np.inf])),
            ValueError,
            "scores: found 1 NaN or infinite",
        ),
        (lambda: core_monitor().update(float("nan")), ValueError, "scores: found 1"),
        (lambda: _core.Monitor.from_bytes("text"), TypeError, "bytes"),  # type: ignore[arg-type]
        (lambda: core_monitor(window=2**70), OverflowError, "too big"),
    ],
)
def test_argument_conversion_errors_are_python_exceptions(
    call: Callable[[], object], error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        call()


_COUNTS = st.one_of(st.integers(0, 20), st.integers(0, 2**64 - 1))
_FLOATS = st.lists(st.floats(), max_size=14)
# Rescaling exponents: the valid ones, their edges, and i32's extremes.
_EXPONENTS = st.one_of(st.integers(-1100, 1100), st.sampled_from([-(2**31), 2**31 - 1]))


def _no_panic(call: Callable[[], object]) -> None:
    """Run ``call``; an ``Exception`` is fine, a panic (a BaseException) is not."""
    try:
        call()
    except Exception:  # any clear Python error is acceptable here
        return


@given(data=st.data())
def test_the_partial_state_api_never_panics(data: st.DataObject) -> None:
    # The partial states of ltrend.dask can be built from any numbers (they are
    # rebuilt so when unpickled on a worker), so every operation on them must
    # refuse what does not fit with a Python exception.
    draw = data.draw

    def scan() -> _core.ScanState:
        return _core.ScanState(
            draw(_COUNTS),
            draw(_COUNTS),
            draw(st.one_of(st.none(), _COUNTS)),
            draw(st.floats()),
            draw(st.floats()),
        )

    def projection() -> _core.ProjectionState:
        return _core.ProjectionState(
            draw(_COUNTS), draw(st.floats()), draw(_COUNTS), draw(_FLOATS)
        )

    def moments() -> _core.SegmentMoments:
        counts = draw(st.lists(_COUNTS, max_size=14))
        return _core.SegmentMoments(
            draw(st.floats()),
            draw(_EXPONENTS),
            draw(_FLOATS),
            counts,
            draw(_FLOATS),
            draw(_FLOATS),
            draw(_FLOATS),
            draw(_FLOATS),
        )

    def rescan_state() -> _core.RescanState:
        counts = draw(st.lists(_COUNTS, max_size=14))
        return _core.RescanState(
            draw(_FLOATS), draw(_FLOATS), counts, draw(_FLOATS), draw(_FLOATS)
        )

    values = np.array(draw(st.lists(st.floats(), max_size=30)), dtype=np.float64)
    indices = np.array(draw(st.lists(_COUNTS, max_size=14)), dtype=np.uint64)
    ranges = draw(st.lists(st.tuples(st.floats(), st.floats()), max_size=5))
    _no_panic(
        lambda: scan().merge(scan()).finish(draw(st.sampled_from(["raise", "omit"])))
    )
    _no_panic(lambda: scan().scale_exponent)
    _no_panic(lambda: projection().merge(projection()))
    _no_panic(
        lambda: _core.fit_projection(
            projection(), center=draw(st.floats()), exponent=draw(_EXPONENTS)
        )
    )
    _no_panic(lambda: moments().merge(moments()))
    _no_panic(lambda: _core.project_bins(moments(), max_degree=draw(_COUNTS)))
    _no_panic(lambda: _core.split_table(moments(), thresholds=draw(_FLOATS)))
    _no_panic(
        lambda: _core.split_table(
            moments(), thresholds=draw(_FLOATS), rescan=rescan_state()
        )
    )
    _no_panic(lambda: _core.untrusted_ranges(moments(), thresholds=draw(_FLOATS)))

    def line() -> _core.LineMoments:
        return _core.LineMoments(draw(_COUNTS), *(draw(st.floats()) for _ in range(5)))

    def frame() -> _core.SplitFrame:
        return _core.SplitFrame(
            draw(_COUNTS),
            draw(st.floats()),
            draw(st.floats()),
            draw(_EXPONENTS),
            draw(st.floats()),
        )

    small = st.integers(0, 10_000)
    _no_panic(lambda: line().merge(line()).sse())
    _no_panic(
        lambda: _core.split_summary(
            values, offset=draw(_COUNTS), frame=frame(), probes=draw(st.lists(_COUNTS))
        )
    )
    _no_panic(
        lambda: _core.split_cuts(
            values,
            offset=draw(_COUNTS),
            frame=frame(),
            log_scale=draw(st.none() | st.tuples(st.floats(), st.floats())),
            before=line(),
            after=line(),
            previous=draw(st.none() | st.floats()),
        )
    )
    _no_panic(lambda: _core.quantile_ranks(draw(small)))
    _no_panic(
        lambda: _core.log_scale(
            draw(small),
            picked=draw(st.lists(st.tuples(_COUNTS, st.floats()))),
            exponent=draw(_EXPONENTS),
            deviation=draw(st.none() | st.floats()),
        )
    )
    _no_panic(
        lambda: _core.rank_counts(
            values,
            keys=draw(_FLOATS),
            log_scale=draw(st.none() | st.tuples(st.floats(), st.floats())),
            exponent=draw(_EXPONENTS),
        )
    )
    _no_panic(
        lambda: _core.absolute_deviation(
            values, center=draw(st.floats()), exponent=draw(_EXPONENTS)
        )
    )
    counts = st.none() | _COUNTS
    _no_panic(lambda: _core.raw_count(draw(counts), draw(counts)))
    _no_panic(lambda: rescan_state().merge(rescan_state()))
    _no_panic(lambda: _core.rescan(values, ranges=ranges))
    _no_panic(lambda: _core.scan(values, start=draw(_COUNTS)))
    _no_panic(
        lambda: _core.project_sorted(
            values,
            offset=draw(_COUNTS),
            n=draw(_COUNTS),
            origin=draw(st.floats()),
            max_degree=draw(_COUNTS),
            probes=draw(st.lists(_COUNTS, max_size=5)),
            exponent=draw(_EXPONENTS),
        )
    )
    _no_panic(
        lambda: _core.run_moments(
            np.sort(values), indices, origin=0.0, exponent=draw(_EXPONENTS)
        )
    )
    _no_panic(
        lambda: _core.split_moments(
            values, thresholds=draw(_FLOATS), origin=0.0, exponent=draw(_EXPONENTS)
        )
    )


def test_a_refused_update_leaves_the_core_monitor_usable() -> None:
    monitor = core_monitor()
    monitor.update_many(SCORES[:12])
    before = monitor.to_bytes()
    for call in (
        lambda: monitor.update(float("inf")),
        lambda: monitor.update_many(np.r_[1.0, np.nan]),
        lambda: monitor.update_many(SCORES[::2]),
    ):
        with pytest.raises((ValueError, TypeError)):
            call()
    assert monitor.to_bytes() == before
    assert monitor.update_many(SCORES[:5]).shape == (5,)
    assert ltrend.Monitor.from_bytes(monitor.to_bytes()).n_seen == 17
