"""ltrend.Monitor: refits equal ltrend.fit, snapshots, threads, validation."""

from __future__ import annotations

import collections
import copy
import json
import math
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ltrend
from ltrend import Monitor, _core
from ltrend._validation import NanPolicy
from ltrend.monitor import HISTORY_LIMIT

# Snapshot layout (see rust/snapshot.rs): magic, version u32, payload length u64,
# payload, CRC-32 of everything before it.
HEADER = 8 + 4 + 8


class NaiveMonitor:
    """The monitor's contract written the obvious way, on ltrend.fit."""

    def __init__(
        self,
        window: int,
        refit_every: int,
        min_scores: int,
        nan_policy: str,
        method: str = "paper",
    ) -> None:
        self.window: collections.deque[float] = collections.deque(maxlen=window)
        self.method = method
        self.refit_every = refit_every
        self.min_scores = min_scores
        self.omit = nan_policy == "omit"
        self.threshold: float | None = None
        self.since = 0
        self.n_refits = 0
        self.n_seen = 0
        #: (n_seen, threshold) after every refit, never trimmed.
        self.history: list[tuple[int, float]] = []

    def update(self, z: float) -> bool:
        self.n_seen += 1
        if not math.isfinite(z):
            assert self.omit
            return False
        flag = self.threshold is not None and z >= self.threshold
        self.window.append(z)
        self.since += 1
        due = self.min_scores if self.threshold is None else self.refit_every
        if self.since >= due:
            window = np.array(self.window)
            self.threshold = ltrend.fit(window, method=self.method).threshold
            self.since = 0
            self.n_refits += 1
            self.history.append((self.n_seen, self.threshold))
        return flag


def l_stream(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    """A score stream with an L shape: uniform bulk, 3 % far anomalies, ties."""
    scores = rng.random(n)
    far = rng.random(n) < 0.03
    scores[far] = 5.0 + 10.0 * rng.random(int(far.sum()))
    ties = rng.random(n) < 0.05
    scores[ties] = rng.integers(0, 4, int(ties.sum())) * 0.25
    return scores


def history_pairs(monitor: Monitor) -> list[tuple[int, float]]:
    """The threshold history as (n_seen, threshold) pairs of Python numbers."""
    steps, thresholds = monitor.threshold_history()
    assert steps.dtype == np.int64
    assert thresholds.dtype == np.float64
    return list(zip(steps.tolist(), thresholds.tolist(), strict=True))


def snapshot_parts(data: bytes) -> tuple[bytes, int, bytes]:
    """(magic, version, payload) of a snapshot, after checking its CRC with zlib."""
    (crc,) = struct.unpack("<I", data[-4:])
    assert crc == zlib.crc32(data[:-4])
    (version,) = struct.unpack("<I", data[8:12])
    (length,) = struct.unpack("<Q", data[12:HEADER])
    assert len(data) == HEADER + length + 4
    return data[:8], version, data[HEADER:-4]


def seal(magic: bytes, version: int, payload: bytes) -> bytes:
    """A snapshot with a valid checksum around any header and payload."""
    body = magic + struct.pack("<IQ", version, len(payload)) + payload
    return body + struct.pack("<I", zlib.crc32(body))


# --- the equality with ltrend.fit ---------------------------------------------


@pytest.mark.parametrize("method", ltrend.METHODS)
@given(
    window=st.integers(3, 60),
    refit_every=st.integers(1, 80),
    min_fraction=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 400),
    omit=st.booleans(),
)
def test_batches_follow_the_naive_contract(
    method: str,
    window: int,
    refit_every: int,
    min_fraction: float,
    seed: int,
    n: int,
    omit: bool,
) -> None:
    rng = np.random.default_rng(seed)
    min_scores = 3 + round(min_fraction * (window - 3))
    scores = l_stream(rng, n)
    if omit:
        bad = rng.random(n) < 0.05
        scores[bad] = rng.choice([np.nan, np.inf, -np.inf], int(bad.sum()))
    policy: NanPolicy = "omit" if omit else "raise"
    monitor = Monitor(
        window=window,
        refit_every=refit_every,
        min_scores=min_scores,
        nan_policy=policy,
        method=method,
    )
    naive = NaiveMonitor(window, refit_every, min_scores, policy, method)
    cuts = np.sort(rng.integers(0, n + 1, 5))
    for batch in np.split(scores, cuts):
        mask = monitor.update_many(batch)
        expected = [naive.update(float(z)) for z in batch]
        assert mask.dtype == np.bool_
        assert mask.tolist() == expected
        assert monitor.threshold == naive.threshold
        assert monitor.window_scores().tolist() == list(naive.window)
    assert monitor.n_refits == naive.n_refits
    assert history_pairs(monitor) == naive.history
    assert monitor.n_seen == n
    assert monitor.n_omitted == int(np.count_nonzero(~np.isfinite(scores)))


@pytest.mark.parametrize("method", ltrend.METHODS)
@given(seed=st.integers(0, 2**32 - 1), refit_every=st.integers(1, 40))
def test_after_every_refit_the_threshold_is_fit_of_the_window(
    method: str, seed: int, refit_every: int
) -> None:
    rng = np.random.default_rng(seed)
    monitor = Monitor(window=50, refit_every=refit_every, min_scores=20, method=method)
    seen_refits = 0
    replayed: list[tuple[int, float]] = []
    for z in l_stream(rng, 300):
        monitor.update(float(z))
        status = monitor.status()
        if status.n_refits == seen_refits:
            continue
        seen_refits = status.n_refits
        direct = ltrend.fit(monitor.window_scores(), method=method)
        replayed.append((status.n_seen, direct.threshold))
        assert status.threshold == direct.threshold
        assert status.degree == direct.degree
        assert status.last_refit == status.n_seen
        assert status.refit_size == status.n_window
        assert status.refit_anomalies == direct.n_anomalies
        assert len(status.table) == len(direct.table)
        for ours, theirs in zip(status.table, direct.table, strict=True):
            assert ours.degree == theirs.degree
            assert ours.threshold == theirs.threshold
            assert ours.n_anomalies == theirs.n_anomalies
            assert ours.compactness == theirs.compactness or (
                math.isnan(ours.compactness) and math.isnan(theirs.compactness)
            )
    assert seen_refits >= 1
    assert history_pairs(monitor) == replayed


def test_large_window_refits_equal_fit_and_the_reference() -> None:
    rng = np.random.default_rng(5)
    monitor = Monitor(window=20_000, refit_every=3_000)
    for _ in range(7):
        monitor.update_many(l_stream(rng, 3_000))
        window = monitor.window_scores()
        assert monitor.threshold == ltrend.fit(window).threshold
        # The NumPy reference solves the fits another way; METHOD.md bounds the
        # disagreement at a relative 1e-9.
        reference = ltrend.reference.fit(window).threshold
        assert monitor.threshold == pytest.approx(reference, rel=1e-9)


def test_float32_batches_behave_as_their_float64_values() -> None:
    rng = np.random.default_rng(2)
    scores = l_stream(rng, 2_000).astype(np.float32)
    a = Monitor(window=500, refit_every=100)
    b = Monitor(window=500, refit_every=100)
    assert np.array_equal(a.update_many(scores), b.update_many(scores.astype(float)))
    assert a.to_bytes() == b.to_bytes()
    assert a.window_scores().dtype == np.float64


def test_strided_and_integer_input_is_accepted() -> None:
    a = Monitor(window=10, refit_every=4)
    b = Monitor(window=10, refit_every=4)
    values = np.arange(40, dtype=np.int64) % 7
    a.update_many(values)
    b.update_many(np.repeat(values.astype(float), 2)[::2])
    assert a.to_bytes() == b.to_bytes()


# --- schedule, judging and non-finite scores ----------------------------------


def test_no_threshold_until_min_scores() -> None:
    monitor = Monitor(window=100, refit_every=10, min_scores=30)
    assert monitor.threshold is None
    assert monitor.degree is None
    assert monitor.last_refit is None
    assert monitor.table == ()
    assert "no threshold yet (0 of 30 scores)" in repr(monitor)
    flags = monitor.update_many(np.r_[np.zeros(28), 100.0])
    assert not flags.any()
    assert monitor.threshold is None
    monitor.update(0.5)
    assert monitor.threshold is not None
    assert monitor.last_refit == 30
    assert "threshold=" in repr(monitor)


def test_default_min_scores() -> None:
    assert Monitor(window=500, refit_every=100).min_scores == 100
    assert Monitor(window=50, refit_every=100).min_scores == 50
    assert Monitor(window=50, refit_every=1).min_scores == 3


def test_a_score_equal_to_the_threshold_is_anomalous() -> None:
    rng = np.random.default_rng(6)
    monitor = Monitor(window=200, refit_every=1_000, min_scores=200)
    monitor.update_many(l_stream(rng, 200))
    tau = monitor.threshold
    assert tau is not None
    assert math.isfinite(tau)
    assert monitor.update(tau) is True
    assert monitor.update(math.nextafter(tau, -math.inf)) is False


def test_no_split_threshold_is_inf_and_flags_nothing() -> None:
    monitor = Monitor(window=10, refit_every=10)
    monitor.update_many(np.full(10, 2.0))
    assert monitor.threshold == math.inf
    assert monitor.degree is None
    assert not monitor.update(1e300)


def test_omit_keeps_non_finite_scores_out() -> None:
    monitor = Monitor(window=10, refit_every=3, nan_policy="omit")
    flags = monitor.update_many([1.0, np.nan, 2.0, np.inf, -np.inf, 3.0, 4.0])
    tau = ltrend.fit([1.0, 2.0, 3.0]).threshold
    assert flags.tolist() == [False] * 6 + [tau <= 4.0]
    assert monitor.window_scores().tolist() == [1.0, 2.0, 3.0, 4.0]
    assert (monitor.n_seen, monitor.n_omitted) == (7, 3)
    assert monitor.last_refit == 6
    assert monitor.update(float("nan")) is False
    assert monitor.nan_policy == "omit"


def test_raise_refuses_a_batch_and_leaves_the_monitor_unchanged() -> None:
    monitor = Monitor(window=10, refit_every=3)
    monitor.update_many([1.0, 2.0, 3.0, 4.0])
    before = monitor.to_bytes()
    with pytest.raises(ValueError, match=r"found 2 NaN or infinite.*index 1"):
        monitor.update_many([5.0, np.nan, np.inf])
    with pytest.raises(ValueError, match="score: got nan"):
        monitor.update(float("nan"))
    with pytest.raises(ValueError, match="score: got inf"):
        monitor.update(np.float32(np.inf))
    assert monitor.to_bytes() == before


def test_manual_refit() -> None:
    monitor = Monitor(window=50, refit_every=1_000, min_scores=20)
    monitor.update_many(np.arange(10.0))
    with pytest.raises(ValueError, match="fewer than min_scores = 20"):
        monitor.refit()
    rng = np.random.default_rng(3)
    monitor.update_many(l_stream(rng, 45))
    monitor.update_many(l_stream(rng, 7))
    monitor.refit()
    assert monitor.status().since_refit == 0
    assert monitor.threshold == ltrend.fit(monitor.window_scores()).threshold


def test_counters_and_summary() -> None:
    rng = np.random.default_rng(4)
    monitor = Monitor(window=300, refit_every=50)
    scores = l_stream(rng, 1_000)
    flags = monitor.update_many(scores)
    status = monitor.status()
    assert status.n_seen == 1_000
    assert status.n_flagged == int(flags.sum()) == monitor.n_flagged
    assert status.n_window == 300 == monitor.n_window
    assert status.n_refits == 1 + (1_000 - 50) // 50
    assert status.table == monitor.table
    assert all(isinstance(row, ltrend.DegreeRow) for row in status.table)
    summary = monitor.to_dict()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["n_seen"] == 1_000
    assert summary["threshold"] == status.threshold
    assert len(summary["table"]) == len(status.table)
    assert (monitor.window, monitor.refit_every, monitor.min_scores) == (300, 50, 50)
    assert (monitor.max_degree, monitor.method) == (5, "paper")


# --- threshold history --------------------------------------------------------


def test_history_is_empty_before_the_first_refit() -> None:
    monitor = Monitor(window=10, refit_every=5)
    steps, thresholds = monitor.threshold_history()
    assert steps.shape == thresholds.shape == (0,)
    assert steps.dtype == np.int64
    assert monitor.to_dict()["history"] == {"n_seen": [], "threshold": [], "degree": []}


def test_history_keeps_the_latest_refits_of_a_replay() -> None:
    # One refit per score, so the history overflows after HISTORY_LIMIT scores.
    rng = np.random.default_rng(10)
    scores = l_stream(rng, HISTORY_LIMIT + 500)
    scores[1_000:1_003] = 0.75  # a window of equal scores: no split, +inf
    monitor = Monitor(window=3, refit_every=1)
    replayed: list[tuple[int, float]] = []
    for z in scores.tolist():
        monitor.update(z)
        if monitor.last_refit == monitor.n_seen:
            assert monitor.threshold is not None
            replayed.append((monitor.n_seen, monitor.threshold))
    assert len(replayed) == monitor.n_refits == len(scores) - 2
    assert len(monitor.threshold_history()[0]) == HISTORY_LIMIT
    assert history_pairs(monitor) == replayed[-HISTORY_LIMIT:]
    assert (1_003, math.inf) in replayed[-HISTORY_LIMIT:]


def test_a_repeated_refit_is_recorded_once() -> None:
    monitor = Monitor(window=50, refit_every=1_000, min_scores=20)
    monitor.update_many(l_stream(np.random.default_rng(11), 20))
    monitor.refit()
    monitor.refit()
    assert monitor.n_refits == 3
    assert history_pairs(monitor) == [(20, monitor.threshold)]
    monitor.update(0.5)
    monitor.refit()
    assert [step for step, _ in history_pairs(monitor)] == [20, 21]


def test_history_survives_snapshots_and_pickles() -> None:
    monitor = Monitor(window=4, refit_every=1)
    monitor.update_many(l_stream(np.random.default_rng(12), HISTORY_LIMIT + 50))
    expected = history_pairs(monitor)
    assert len(expected) == HISTORY_LIMIT
    assert history_pairs(Monitor.from_bytes(monitor.to_bytes())) == expected
    assert history_pairs(pickle.loads(pickle.dumps(monitor))) == expected


def test_to_dict_lists_the_history_with_degrees() -> None:
    monitor = Monitor(window=10, refit_every=10)
    monitor.update_many(np.r_[np.full(10, 2.0), np.arange(10.0) ** 3])
    summary = monitor.to_dict()
    assert json.loads(json.dumps(summary)) == summary
    cubes = ltrend.fit(np.arange(10.0) ** 3)
    assert summary["history"] == {
        "n_seen": [10, 20],
        "threshold": ["inf", cubes.threshold],
        "degree": [None, cubes.degree],
    }
    assert summary["last_refit"] == summary["history"]["n_seen"][-1]


# --- validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"window": 2}, ValueError, "window: must be between 3 and"),
        ({"window": 2.5}, TypeError, "window: expected an integer, got float"),
        ({"window": True}, TypeError, "window: expected an integer"),
        ({"refit_every": 0}, ValueError, "refit_every: must be between 1"),
        ({"window": 10, "min_scores": 11}, ValueError, "min_scores: must be between"),
        ({"min_scores": 2}, ValueError, "min_scores: must be between 3"),
        ({"max_degree": 0}, ValueError, "max_degree: must be between 1 and 10"),
        ({"nan_policy": "ignore"}, ValueError, "nan_policy: must be"),
        ({"method": "otsu"}, ValueError, "method: must be one of"),
    ],
)
def test_options_are_checked(
    options: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Monitor(**options)  # type: ignore[arg-type]


def test_an_unknown_method_is_refused_naming_every_method() -> None:
    with pytest.raises(ValueError, match="method: must be one of") as python_error:
        Monitor(method="otsu")
    with pytest.raises(ValueError, match="method: must be one of") as core_error:
        _core.Monitor(
            window=10,
            refit_every=1,
            min_scores=3,
            max_degree=5,
            nan_policy="raise",
            method="otsu",
        )
    for name in ltrend.METHODS:
        assert repr(name) in str(python_error.value)
        assert f'"{name}"' in str(core_error.value)


def test_scores_are_checked() -> None:
    monitor = Monitor(window=10, refit_every=3)
    with pytest.raises(TypeError, match="score: expected a real number"):
        monitor.update("1.0")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="score: expected a real number"):
        monitor.update(1 + 2j)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pass batches to update_many"):
        monitor.update([1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected a 1-D array"):
        monitor.update_many(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="complex"):
        monitor.update_many(np.zeros(3, dtype=complex))
    assert monitor.n_seen == 0
    assert monitor.update(np.int64(3)) is False
    assert monitor.update_many([]).shape == (0,)
    assert monitor.n_seen == 1


# --- snapshots ----------------------------------------------------------------


def fed_monitor(seed: int = 0, n: int = 137, window: int = 40) -> Monitor:
    rng = np.random.default_rng(seed)
    monitor = Monitor(window=window, refit_every=9, min_scores=min(20, window))
    monitor.update_many(l_stream(rng, n))
    return monitor


@pytest.mark.parametrize("method", ltrend.METHODS)
def test_snapshot_round_trip_and_continuation(method: str) -> None:
    rng = np.random.default_rng(8)
    scores = l_stream(rng, 3_000)
    options = {"window": 400, "refit_every": 70, "min_scores": 100}
    straight = Monitor(**options, nan_policy="omit", method=method)
    expected = straight.update_many(scores)
    for cut in (0, 50, 99, 100, 101, 399, 400, 1_234, 2_999):
        first = Monitor(**options, nan_policy="omit", method=method)
        head = first.update_many(scores[:cut])
        second = Monitor.from_bytes(first.to_bytes())
        assert second.method == method
        assert second.status() == first.status()
        assert np.array_equal(second.window_scores(), first.window_scores())
        tail = second.update_many(scores[cut:])
        assert np.array_equal(np.concatenate([head, tail]), expected), cut
        assert second.to_bytes() == straight.to_bytes()


def test_snapshot_header_and_checksum() -> None:
    data = fed_monitor().to_bytes()
    magic, version, _ = snapshot_parts(data)
    assert magic == b"\x89LTMON\r\n"
    assert version == 1
    assert Monitor.from_bytes(bytearray(data)).n_seen == 137
    assert Monitor.from_bytes(memoryview(data)).n_seen == 137


def test_pickle_and_copy_go_through_the_snapshot() -> None:
    monitor = fed_monitor()
    before = monitor.to_bytes()
    clones = [
        pickle.loads(pickle.dumps(monitor)),
        copy.deepcopy(monitor),
        copy.copy(monitor),
    ]
    flag = monitor.update(3.0)
    for clone in clones:
        assert isinstance(clone, Monitor)
        assert clone.to_bytes() == before
        assert clone.update(3.0) == flag
        assert clone.to_bytes() == monitor.to_bytes()
    func, args = monitor.__reduce__()
    assert func == Monitor.from_bytes
    assert isinstance(args[0], bytes)


def test_every_truncation_is_refused() -> None:
    data = fed_monitor(window=8, n=12).to_bytes()
    for length in range(len(data)):
        with pytest.raises(ValueError, match="snapshot: truncated"):
            Monitor.from_bytes(data[:length])


def test_every_bit_flip_is_refused() -> None:
    data = fed_monitor(window=8, n=12).to_bytes()
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ValueError, match="snapshot: "):
            Monitor.from_bytes(bytes(flipped))


def test_payload_bit_flips_are_reported_as_corruption() -> None:
    data = fed_monitor().to_bytes()
    for position in (HEADER, len(data) // 2, len(data) - 5):
        flipped = bytearray(data)
        flipped[position] ^= 0x10
        with pytest.raises(ValueError, match=r"checksum mismatch.*corrupted"):
            Monitor.from_bytes(bytes(flipped))


def test_oversized_wrong_magic_version_and_type_are_named() -> None:
    data = fed_monitor().to_bytes()
    magic, version, payload = snapshot_parts(data)
    with pytest.raises(ValueError, match=r"snapshot: oversized.*3 extra"):
        Monitor.from_bytes(data + b"\0\0\0")
    with pytest.raises(ValueError, match="not a monitor snapshot"):
        Monitor.from_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="format version 2 is not supported"):
        Monitor.from_bytes(seal(magic, version + 1, payload))
    with pytest.raises(TypeError, match="data: expected the bytes"):
        Monitor.from_bytes("not bytes")  # type: ignore[arg-type]


def test_well_sealed_impossible_states_are_refused() -> None:
    data = fed_monitor().to_bytes()
    magic, version, payload = snapshot_parts(data)
    assert Monitor.from_bytes(seal(magic, version, payload)).n_seen == 137
    # The window option, then min_scores, set below what the state needs.
    small_window = struct.pack("<Q", 5) + payload[8:]
    with pytest.raises(ValueError, match="inconsistent state: min_scores"):
        Monitor.from_bytes(seal(magic, version, small_window))
    with pytest.raises(ValueError, match="snapshot: malformed"):
        Monitor.from_bytes(seal(magic, version, payload + b"\0"))
    with pytest.raises(ValueError, match="snapshot: malformed"):
        Monitor.from_bytes(seal(magic, version, payload[:-3]))
    # The newest window score (just before the evicted run) replaced by NaN.
    bad = bytearray(payload)
    ring_end = len(payload) - 8 - 8 * _evicted_count(payload)
    bad[ring_end - 8 : ring_end] = struct.pack("<d", math.nan)
    with pytest.raises(ValueError, match="inconsistent state: a non-finite score"):
        Monitor.from_bytes(seal(magic, version, bytes(bad)))


def test_a_snapshot_of_an_unknown_method_is_refused() -> None:
    magic, version, payload = snapshot_parts(fed_monitor().to_bytes())
    # The method name follows four option sizes, the NaN-policy tag and its length.
    at = 4 * 8 + 1
    assert payload[at : at + 6] == b"\x05paper"
    renamed = payload[:at] + b"\x05otsu!" + payload[at + 6 :]
    with pytest.raises(
        ValueError, match="inconsistent state: method: must be one of"
    ) as caught:
        Monitor.from_bytes(seal(magic, version, renamed))
    assert all(f'"{name}"' in str(caught.value) for name in ltrend.METHODS)


def _history_offset(payload: bytes) -> int:
    """Where the history starts in a payload, found by walking the fields before it.

    Layout (rust/monitor.rs, ``to_bytes``): four option sizes, the NaN-policy tag,
    the method name (one length byte), five counters, the last-refit tag and, when
    it is 1, five fields and a table of 32-byte rows; then the history count and
    24 bytes per entry (n_seen u64, threshold f64, degree u64 with 0 for none).
    """
    at = 4 * 8 + 1
    at += 1 + payload[at]
    at += 5 * 8
    tag = payload[at]
    at += 1
    if tag == 1:
        at += 5 * 8
        (n_rows,) = struct.unpack_from("<Q", payload, at)
        at += 8 + 32 * n_rows
    return at


def _with_history(payload: bytes, entries: list[tuple[int, float, int]]) -> bytes:
    """The payload with its history replaced by ``entries`` (n_seen, tau, degree)."""
    start = _history_offset(payload)
    (count,) = struct.unpack_from("<Q", payload, start)
    end = start + 8 + 24 * count
    raw = struct.pack("<Q", len(entries)) + b"".join(
        struct.pack("<QdQ", *entry) for entry in entries
    )
    return payload[:start] + raw + payload[end:]


def test_impossible_histories_are_refused() -> None:
    monitor = Monitor(window=3, refit_every=1)
    monitor.update_many(l_stream(np.random.default_rng(13), HISTORY_LIMIT + 20))
    magic, version, payload = snapshot_parts(monitor.to_bytes())
    degrees = monitor.to_dict()["history"]["degree"]
    entries = [
        (step, tau, degree or 0)
        for (step, tau), degree in zip(history_pairs(monitor), degrees, strict=True)
    ]
    assert _with_history(payload, entries) == payload

    def refused(edited: list[tuple[int, float, int]], match: str) -> None:
        data = seal(magic, version, _with_history(payload, edited))
        with pytest.raises(ValueError, match=f"inconsistent state: .*{match}"):
            Monitor.from_bytes(data)

    first = entries[0]
    refused([(first[0] - 1, *first[1:]), *entries], "more than the 4096")
    repeated = entries.copy()
    repeated[7] = (entries[6][0], *entries[7][1:])
    refused(repeated, "entry 7 is at n_seen = .*not after the entry before")
    nan = entries.copy()
    nan[3] = (entries[3][0], math.nan, 2)
    refused(nan, "entry 3: the threshold is NaN")
    stale = entries.copy()
    # Scores are non-negative, so no refit learned -1.0.
    stale[-1] = (entries[-1][0], -1.0, 1)
    refused(stale, "the newest history entry is not the last refit")


def _evicted_count(payload: bytes) -> int:
    """The evicted-score count of a payload, found by walking back from the end."""
    for count in range(len(payload) // 8):
        at = len(payload) - 8 * count - 8
        if struct.unpack("<Q", payload[at : at + 8])[0] == count:
            return count
    raise AssertionError("no evicted count found")


CHILD = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    import ltrend

    path, seed = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(seed)
    scores = rng.random(20_000)
    scores[rng.random(20_000) < 0.02] += 8.0
    monitor = ltrend.Monitor(window=2_000, refit_every=300, min_scores=500)
    for batch, start in enumerate(range(0, 20_000, 250)):
        monitor.update_many(scores[start : start + 250])
        with open(path + ".tmp", "wb") as f:
            f.write(monitor.to_bytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)
        print(batch, flush=True)
        time.sleep(0.02)
    time.sleep(60)
    """
)


def test_a_killed_service_resumes_from_its_last_snapshot(tmp_path: Path) -> None:
    seed = 21
    path = tmp_path / "monitor.snapshot"
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(seed)],
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            for line in child.stdout:
                if int(line) >= 10:
                    break
        finally:
            # SIGKILL: no cleanup runs in the child, as in a crash.
            child.kill()
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    rng = np.random.default_rng(seed)
    scores = rng.random(20_000)
    scores[rng.random(20_000) < 0.02] += 8.0
    straight = Monitor(window=2_000, refit_every=300, min_scores=500)
    expected = straight.update_many(scores)

    restored = Monitor.from_bytes(path.read_bytes())
    resumed_at = restored.n_seen
    assert resumed_at >= 2_750
    assert resumed_at % 250 == 0
    tail = restored.update_many(scores[resumed_at:])
    assert np.array_equal(tail, expected[resumed_at:])
    assert restored.to_bytes() == straight.to_bytes()
    assert restored.n_flagged == int(expected.sum())


# --- threads ------------------------------------------------------------------


def test_threads_lose_no_score_and_keep_batches_whole() -> None:
    n_threads, n_batches, batch = 4, 60, 97
    window = 1_000
    monitor = Monitor(window=window, refit_every=150, min_scores=300)
    flagged = [0] * n_threads
    barrier = threading.Barrier(n_threads)

    def work(thread: int) -> None:
        rng = np.random.default_rng(thread)
        barrier.wait()
        for b in range(n_batches):
            # Each score encodes (thread, batch, position) in its integer part
            # and carries a random fraction that makes an L shape.
            ids = thread * 1_000_000 + b * 1_000 + np.arange(batch)
            noise = rng.random(batch)
            flagged[thread] += int(monitor.update_many(ids + noise).sum())

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    total = n_threads * n_batches * batch
    status = monitor.status()
    assert status.n_seen == total
    assert status.n_flagged == sum(flagged)
    ids = np.floor(monitor.window_scores()).astype(np.int64)
    assert len(ids) == window
    # The window is whole batches (the oldest possibly cut), each in order, and
    # each thread's batches appear in the order that thread sent them.
    keys = ids // 1_000
    runs = np.split(ids, np.flatnonzero(np.diff(keys)) + 1)
    last_batch = dict.fromkeys(range(n_threads), -1)
    for i, run in enumerate(runs):
        positions = run % 1_000
        assert np.array_equal(
            positions, np.arange(positions[0], positions[0] + len(run))
        )
        assert positions[-1] == batch - 1
        if i > 0:
            assert positions[0] == 0
        thread, b = divmod(int(run[0] // 1_000), 1_000)
        assert b > last_batch[thread]
        last_batch[thread] = b
    assert len(set(keys.tolist())) == len(runs)
