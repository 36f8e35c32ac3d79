"""Limits on what a caller can make ltrend allocate.

- Text files are read block by block: peak memory follows the block size and
  the scores, never the size of the text. A .npy file is memory-mapped and
  copied out once.
- A monitor allocates for the scores it holds, not for the window it may hold:
  ``window=2**40`` costs nothing until scores arrive.
- Snapshot length and count fields are checked against the bytes given before
  anything is allocated, under an address-space limit that would turn any
  large allocation into a crash.
- ``max_degree`` is bounded (1 to 10, tests/test_input.py), so the per-degree
  work and table are too.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import ltrend
from ltrend import _io
from ltrend.monitor import Monitor

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc/self/status"
)


def traced_peak(call: object) -> int:
    """Peak bytes traced by tracemalloc (NumPy buffers included) during ``call``."""
    assert callable(call)
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_text_is_read_in_blocks_whatever_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = 1 << 18
    monkeypatch.setattr(_io, "TEXT_BLOCK_BYTES", block)
    rng = np.random.default_rng(0)
    scores = rng.random(30_000)
    path = tmp_path / "wide.csv"
    # One score and a long text field a row: 40 times more text than scores.
    filler = "," + "x" * 320 + "\n"
    path.write_text("".join(f"{z!r}{filler}" for z in scores.tolist()))
    size = path.stat().st_size
    assert size > 30 * block, "precondition: many blocks of text"

    loaded: list[_io.LoadedScores] = []
    peak = traced_peak(lambda: loaded.append(_io.read_scores(str(path), column="0")))
    np.testing.assert_array_equal(loaded[0].scores, scores)
    # A block lives as bytes, str and NumPy's parser buffers (a few copies); the
    # scores as the parsed blocks and their concatenation. Reading the whole text
    # at once would need at least 2 * size (bytes, then str).
    bound = 8 * block + 3 * scores.nbytes
    assert peak < bound < size


def test_npy_is_memory_mapped_and_copied_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_io, "NPY_BLOCK_ITEMS", 1 << 16)
    scores = np.random.default_rng(1).random(1_000_000)
    path = tmp_path / "scores.npy"
    np.save(path, scores)
    loaded: list[_io.LoadedScores] = []
    peak = traced_peak(lambda: loaded.append(_io.read_scores(str(path))))
    np.testing.assert_array_equal(loaded[0].scores, scores)
    # One copy of the scores (np.load without mmap, then a copy, would be two).
    assert peak < 1.1 * scores.nbytes


LIMITED = textwrap.dedent(
    """
    import resource, struct, sys, zlib
    import numpy as np
    import ltrend

    # Address space now, plus a margin: any allocation of much more than the
    # margin fails (a Rust allocation failure aborts the process).
    status = open("/proc/self/status").read()
    vm = next(line for line in status.splitlines() if line.startswith("VmSize:"))
    vm_kib = int(vm.split()[1])
    margin = int(sys.argv[1]) << 20
    limit = vm_kib * 1024 + margin
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        np.empty(2 * margin // 8)
    except MemoryError:
        print("limit in force")

    def seal(payload, length=None):
        length = len(payload) if length is None else length
        body = b"\\x89LTMON\\r\\n" + struct.pack("<IQ", 1, length) + payload
        return body + struct.pack("<I", zlib.crc32(body))

    def refused(data):
        try:
            ltrend.Monitor.from_bytes(data)
        except ValueError as err:
            return str(err)
        raise AssertionError("accepted")

    big = ltrend.Monitor(window=2**40, refit_every=2**40, min_scores=3)
    big.update_many(np.random.default_rng(0).random(100_000))
    big.refit()
    copy = ltrend.Monitor.from_bytes(big.to_bytes())
    assert copy.n_window == 100_000 and copy.window == 2**40
    print("window 2**40 ok")

    payload = big.to_bytes()[20:-4]
    window_count = len(payload) - 8 - 8 - 8 * 100_000
    for count in (2**33, 2**40, 2**61):
        claims = payload[:window_count] + struct.pack("<Q", count) + bytes(64)
        print(refused(seal(claims)).split(":")[1].strip())
        length = min(8 * count, 2**64 - 1)
        print(refused(seal(b"", length=length)).split(":")[1].strip())
    """
)


@linux_only
def test_hostile_sizes_allocate_nothing_large() -> None:
    margin_mb = 256
    done = subprocess.run(
        [sys.executable, "-c", LIMITED, str(margin_mb)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2_000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "limit in force"
    assert lines[1] == "window 2**40 ok"
    assert lines[2:] == ["malformed payload", "truncated"] * 3


def test_a_monitor_holds_the_scores_it_was_given() -> None:
    # A window of 2**40 scores would be 8 TiB; the monitor holds what arrived.
    monitor = Monitor(window=2**40, refit_every=1_000)
    monitor.update_many(np.linspace(0.0, 1.0, 5_000))
    assert monitor.n_window == 5_000
    assert len(monitor.to_bytes()) < 8 * 5_000 + 100_000


def test_the_history_and_the_degree_table_are_bounded() -> None:
    monitor = Monitor(window=3, refit_every=1, max_degree=10)
    monitor.update_many(
        np.random.default_rng(2).random(ltrend.monitor.HISTORY_LIMIT + 500)
    )
    steps, _ = monitor.threshold_history()
    assert steps.size == ltrend.monitor.HISTORY_LIMIT
    assert len(ltrend.fit(np.arange(1_000.0), max_degree=10).table) == 10
    with pytest.raises(ValueError, match="max_degree: must be between 1 and 10"):
        ltrend.fit(np.arange(1_000.0), max_degree=11)
    assert struct.calcsize("<QdQ") * ltrend.monitor.HISTORY_LIMIT < 100_000
