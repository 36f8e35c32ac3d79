"""Reading score files in blocks: block edges, line numbers, headers, progress."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from ltrend import _io
from ltrend._io import ScoreFileError, read_scores


def _values(n: int = 1000) -> npt.NDArray[np.float64]:
    return np.random.default_rng(n).normal(size=n)


def _csv(values: npt.NDArray[np.float64], header: str = "id,score\n") -> bytes:
    rows = "".join(f"r{i},{v!r}\n" for i, v in enumerate(values.tolist()))
    return (header + rows).encode()


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of about 100 bytes, so that a small file crosses many block edges."""
    monkeypatch.setattr(_io, "TEXT_BLOCK_BYTES", 100)
    monkeypatch.setattr(_io, "NPY_BLOCK_ITEMS", 7)


@pytest.mark.usefixtures("small_blocks")
def test_many_blocks_read_every_value_exactly(tmp_path: Path) -> None:
    values = _values()
    path = tmp_path / "scores.csv"
    path.write_bytes(_csv(values))
    seen: list[tuple[int, int | None]] = []
    loaded = read_scores(
        str(path), column="score", progress=lambda d, t: seen.append((d, t))
    )
    np.testing.assert_array_equal(loaded.scores, values)
    assert loaded.column == "score"
    size = path.stat().st_size
    assert len(seen) > 10
    assert seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


@pytest.mark.usefixtures("small_blocks")
def test_a_bad_line_in_a_late_block_is_named(tmp_path: Path) -> None:
    lines = _csv(_values(300)).decode().splitlines(keepends=True)
    lines[250] = "r249,oops\n"  # line 251 of the file (the header is line 1)
    path = tmp_path / "scores.csv"
    path.write_text("".join(lines))
    with pytest.raises(ScoreFileError, match=r"scores\.csv, line 251: 'oops' is not"):
        read_scores(str(path), column="score")


@pytest.mark.usefixtures("small_blocks")
def test_leading_comments_longer_than_a_block(tmp_path: Path) -> None:
    values = _values(50)
    comments = "# produced by a detector\n" * 40
    path = tmp_path / "scores.txt"
    path.write_text(
        comments
        + "name score\n"
        + "".join(f"r{i} {v!r}\n" for i, v in enumerate(values.tolist()))
    )
    loaded = read_scores(str(path), column="score")
    np.testing.assert_array_equal(loaded.scores, values)


@pytest.mark.usefixtures("small_blocks")
def test_npy_copied_in_blocks_with_progress(tmp_path: Path) -> None:
    values = _values(100).astype(np.float32)
    path = tmp_path / "scores.npy"
    np.save(path, values)
    seen: list[tuple[int, int | None]] = []
    loaded = read_scores(str(path), progress=lambda d, t: seen.append((d, t)))
    assert loaded.scores.dtype == np.float32
    np.testing.assert_array_equal(loaded.scores, values)
    assert len(seen) == 15  # ceil(100 / 7)
    assert seen[-1] == (400, 400)


def test_big_endian_and_integer_npy(tmp_path: Path) -> None:
    values = _values(20)
    np.save(tmp_path / "big.npy", values.astype(">f8"))
    np.save(tmp_path / "ints.npy", np.arange(10, dtype=np.int16))
    big = read_scores(str(tmp_path / "big.npy")).scores
    assert big.dtype == np.float64
    assert big.dtype.byteorder in "=<"
    np.testing.assert_array_equal(big, values)
    ints = read_scores(str(tmp_path / "ints.npy")).scores
    assert ints.dtype == np.float64
    np.testing.assert_array_equal(ints, np.arange(10.0))


def test_headerless_table_with_an_id_column() -> None:
    # Text in the first row, but in the same place as in the next row: ids, not a
    # header, so the first row is data.
    text = io.BytesIO(b"a,1.5\nb,2.5\nc,3.5\n")
    loaded = read_scores("-", column="1", stdin=text)
    assert loaded.scores.tolist() == [1.5, 2.5, 3.5]
    assert loaded.column == "1"


def test_header_that_names_a_numeric_column() -> None:
    text = io.BytesIO(b"2020\n1.0\n2.0\n")
    # "2020" reads as a number, so without help it is data...
    assert read_scores("-", stdin=text).scores.tolist() == [2020.0, 1.0, 2.0]
    # ...but asking for the column by that name makes it the header.
    text.seek(0)
    assert read_scores("-", column="2020", stdin=text).scores.tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("first_line", "delimiter"),
    [("1\t2", "\t"), ("1,2", ","), ("1;2", ";"), ("1  2", None)],
)
def test_delimiter_is_guessed_from_the_first_line(
    first_line: str, delimiter: str | None
) -> None:
    assert _io._sniff_delimiter(first_line) == delimiter
    row = first_line.encode() + b"\n"
    loaded = read_scores("-", column="-1", stdin=io.BytesIO(row * 3))
    assert loaded.scores.tolist() == [2.0, 2.0, 2.0]


def test_nan_and_inf_are_read_as_numbers() -> None:
    loaded = read_scores("-", stdin=io.BytesIO(b"1\nnan\ninf\n-inf\n"))
    np.testing.assert_array_equal(loaded.scores, [1.0, np.nan, np.inf, -np.inf])


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_scores(str(tmp_path / "absent.csv"))


def test_windows_line_endings() -> None:
    text = io.BytesIO(b"score,id\r\n1.5,a\r\n2.5,b\r\n")
    assert read_scores("-", column="score", stdin=text).scores.tolist() == [1.5, 2.5]
    bad = io.BytesIO(b"score,id\r\n1.5,a\r\nx,b\r\n")
    with pytest.raises(ScoreFileError, match=r"<stdin>, line 3: 'x' is not a number"):
        read_scores("-", column="score", stdin=bad)
