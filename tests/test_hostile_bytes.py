"""Hostile bytes given to Monitor.from_bytes and the command line.

tests/test_monitor.py covers every truncation, every bit flip, extra bytes, a
wrong magic, the next version and impossible states; this file adds the cases it
lacks: any version that is not this build's, length and count fields that claim
more than the bytes hold (refused before anything is allocated, see
test_resources.py for the memory bound), a pickle built to run code (as a
snapshot and as a .npy score file), and arbitrary bytes and arbitrary
well-sealed payloads drawn by hypothesis.
"""

from __future__ import annotations

import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from ltrend import Monitor, cli

from test_monitor import HEADER, _evicted_count, fed_monitor, seal, snapshot_parts

VERSION = 1
MAGIC = b"\x89LTMON\r\n"


def header(version: int, length: int) -> bytes:
    return MAGIC + struct.pack("<IQ", version, length)


@pytest.mark.parametrize("version", [0, 2, 255, 2**31, 2**32 - 1])
def test_every_other_version_is_refused_by_name(version: int) -> None:
    _, _, payload = snapshot_parts(fed_monitor().to_bytes())
    with pytest.raises(ValueError, match=f"format version {version} is not supported"):
        Monitor.from_bytes(seal(MAGIC, version, payload))


@pytest.mark.parametrize("length", [2**31, 2**40, 2**63, 2**64 - 1])
def test_a_header_claiming_a_huge_payload_is_truncation(length: int) -> None:
    data = header(VERSION, length) + bytes(64)
    with pytest.raises(ValueError, match=r"snapshot: truncated: .* needs \d+ bytes"):
        Monitor.from_bytes(data)


def test_a_header_claiming_a_smaller_payload_is_oversized() -> None:
    data = fed_monitor().to_bytes()
    (length,) = struct.unpack("<Q", data[12:HEADER])
    shorter = data[:12] + struct.pack("<Q", length - 8) + data[HEADER:]
    with pytest.raises(ValueError, match=r"snapshot: oversized.*8 extra"):
        Monitor.from_bytes(shorter)


def _table_length_offset(payload: bytes) -> int:
    """Where the last refit's table length sits (layout: rust/monitor.rs to_bytes)."""
    at = 4 * 8 + 1
    at += 1 + payload[at]
    at += 5 * 8
    assert payload[at] == 1, "precondition: the monitor has refitted"
    return at + 1 + 5 * 8


@pytest.mark.parametrize("count", [2**20, 2**40, 2**61, 2**64 - 1])
def test_count_fields_claiming_more_than_the_bytes_hold_are_refused(
    count: int,
) -> None:
    monitor = fed_monitor()
    _, _, payload = snapshot_parts(monitor.to_bytes())
    # The payload ends with the window (count, values), then the evicted scores.
    tail = 8 + 8 * monitor.status().n_window + 8 + 8 * _evicted_count(payload)
    window_count = len(payload) - tail
    assert struct.unpack_from("<Q", payload, window_count)[0] == monitor.n_window
    claims_window = payload[:window_count] + struct.pack("<Q", count)
    with pytest.raises(
        ValueError, match=f"malformed payload: window scores claims {count}"
    ):
        Monitor.from_bytes(seal(MAGIC, VERSION, claims_window))
    rows = _table_length_offset(payload)
    claims_rows = payload[:rows] + struct.pack("<Q", count) + payload[rows + 8 :]
    with pytest.raises(ValueError, match=f"inconsistent state: {count} table rows"):
        Monitor.from_bytes(seal(MAGIC, VERSION, claims_rows))


#: Offset of n_seen in a payload: four option sizes, the NaN-policy tag, and
#: the method name "paper" after its length byte (rust/monitor.rs, to_bytes).
N_SEEN_AT = 4 * 8 + 1 + 1 + len("paper")


def test_a_monitor_restored_near_the_counter_cap_keeps_a_readable_snapshot() -> None:
    # Found by fuzz/fuzz_targets/snapshot.rs: a snapshot just under the 2**62
    # cap on n_seen was accepted, and a few updates later the monitor's own
    # snapshot was refused. The counters now stop at the cap.
    cap = 2**62
    _, _, payload = snapshot_parts(fed_monitor().to_bytes())
    near = payload[:N_SEEN_AT] + struct.pack("<Q", cap - 3) + payload[N_SEEN_AT + 8 :]
    monitor = Monitor.from_bytes(seal(MAGIC, VERSION, near))
    flagged = monitor.n_flagged
    monitor.update_many(np.linspace(0.0, 1.0, 50))
    assert monitor.n_seen == cap
    assert monitor.n_flagged <= flagged + 3
    assert Monitor.from_bytes(monitor.to_bytes()).n_seen == cap
    beyond = payload[:N_SEEN_AT] + struct.pack("<Q", cap + 1) + payload[N_SEEN_AT + 8 :]
    with pytest.raises(ValueError, match="beyond any stream"):
        Monitor.from_bytes(seal(MAGIC, VERSION, beyond))


class _RunsCode:
    """Unpickling this calls os.mkdir: proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.path),))


def test_a_pickle_that_runs_code_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    exploit = pickle.dumps(_RunsCode(marker))
    # Precondition: unpickling these bytes would run code.
    pickle.loads(exploit)
    assert marker.is_dir()
    marker.rmdir()

    with pytest.raises(ValueError, match="not a monitor snapshot"):
        Monitor.from_bytes(exploit)
    # Even sealed in a valid envelope, the payload is parsed as fields, not run.
    with pytest.raises(ValueError, match=r"snapshot: (malformed|inconsistent)"):
        Monitor.from_bytes(seal(MAGIC, VERSION, exploit))
    path = tmp_path / "monitor.snapshot"
    path.write_bytes(exploit)
    assert cli.main(["snapshot", str(path)]) == cli.EXIT_BAD_INPUT
    assert not marker.exists()


def _kind(err: BaseException) -> str:
    """The kind of a snapshot error: ``snapshot: KIND: ...`` or ``(...)``."""
    return str(err).split(":")[1].split("(")[0].strip()


def test_an_object_npy_is_refused_without_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    path = tmp_path / "scores.npy"
    np.save(path, np.array([_RunsCode(marker), 1.0], dtype=object), allow_pickle=True)
    code = cli.main(["fit", str(path)])
    assert code == cli.EXIT_BAD_INPUT
    assert not marker.exists()


@given(
    data=st.one_of(
        st.binary(max_size=4_096),
        st.binary(max_size=4_096).map(lambda b: MAGIC + b),
        st.tuples(
            st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1), st.binary()
        ).map(lambda t: header(t[0], t[1]) + t[2]),
    )
)
def test_arbitrary_bytes_are_refused_with_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"^snapshot: ") as refused:
        Monitor.from_bytes(data)
    event(f"refused: {_kind(refused.value)}")


def _prefix_strategy() -> st.SearchStrategy[bytes]:
    """Real payloads, cut and spliced with drawn bytes: deep into the parser."""
    payloads = [
        snapshot_parts(fed_monitor(seed=seed, n=n, window=window).to_bytes())[2]
        for seed, n, window in [(0, 137, 40), (1, 5, 8), (2, 30, 30), (3, 400, 12)]
    ]
    return st.tuples(
        st.sampled_from(payloads),
        st.integers(0, 2_000),
        st.integers(0, 2_000),
        st.binary(max_size=64),
    ).map(lambda t: t[0][: t[1]] + t[3] + t[0][t[1] + t[2] :])


@given(payload=st.one_of(st.binary(max_size=2_000), _prefix_strategy()))
def test_sealed_payloads_are_refused_or_restored_exactly(payload: bytes) -> None:
    data = seal(MAGIC, VERSION, payload)
    refused: ValueError | None = None
    try:
        monitor = Monitor.from_bytes(data)
    except ValueError as err:
        refused = err
    if refused is not None:
        assert str(refused).startswith("snapshot: ")
        event(f"refused: {_kind(refused)}")
        return
    event("accepted")
    # Accepted: it is a state a monitor can be in, and it keeps working.
    assert monitor.to_bytes() == data
    monitor.update_many(np.linspace(0.0, 1.0, 7))
    assert Monitor.from_bytes(monitor.to_bytes()).to_bytes() == monitor.to_bytes()


def test_the_envelope_checksum_is_zlib_crc32() -> None:
    data = fed_monitor().to_bytes()
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])
