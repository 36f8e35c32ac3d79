"""Reading one column of scores from a file: .npy, .csv, .tsv, other text, stdin.

Used by the command line. Text is read in blocks of whole lines, each parsed by
NumPy's C reader (``np.loadtxt``), so memory stays at the scores plus one block
and a caller can show progress between blocks; only when a block fails to parse
is it read again line by line, to name the first bad line. A ``.npy`` file is
memory-mapped and copied out in blocks for the same reason.

Every problem with the content of a file raises :class:`ScoreFileError` (a
ValueError) whose message is one line naming the file, and the line and column
where that helps. Problems opening it (missing, a directory, no permission) are
the OSError that ``open`` raises.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from itertools import islice
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
import numpy.typing as npt

#: ``progress(done, total)``: bytes read so far and the size of the input, None
#: when unknown (a pipe).
Progress = Callable[[int, int | None], None]

#: Bytes of text per block: large enough that NumPy's parser, not Python, takes
#: the time; small enough that progress moves every fraction of a second.
TEXT_BLOCK_BYTES = 4 << 20

#: Elements of a .npy array copied per block, for the same reason.
NPY_BLOCK_ITEMS = 1 << 21

#: The name that ``-`` (standard input) goes by in messages.
STDIN_NAME = "<stdin>"

_DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
_COMMENT = "#"
_QUOTE = '"'


class ScoreFileError(ValueError):
    """The content of a score file cannot be read as scores (a one-line message)."""


class LoadedScores(NamedTuple):
    """Scores read from a file, and where they came from."""

    scores: npt.NDArray[np.float64] | npt.NDArray[np.float32]
    #: The file name, or ``<stdin>``.
    source: str
    #: The column read: its header name, or its index as a string; None when the
    #: input has a single column.
    column: str | None


def read_scores(
    path: str,
    *,
    column: str | None = None,
    progress: Progress | None = None,
    stdin: IO[bytes] | None = None,
) -> LoadedScores:
    """Read one column of scores from ``path`` (``"-"`` reads ``stdin``).

    Parameters
    ----------
    path : str
        A ``.npy`` file (1-D, or 2-D with a column chosen by index), a ``.csv``
        (comma) or ``.tsv`` (tab) file, any other text file (delimiter guessed
        from the first line: tab, comma, semicolon, else whitespace), or ``-``.
    column : str, optional
        The column of a table: a header name, else an integer index (0 is the
        first, -1 the last). Needed only when there is more than one column.
    progress : callable, optional
        Called as ``progress(bytes_done, bytes_total_or_None)`` after each block.
    stdin : binary file, optional
        What ``-`` reads; ``sys.stdin.buffer`` by default.

    Returns
    -------
    LoadedScores
        The scores (float64, or float32 as stored in a .npy file), the source name
        and the column read.

    Raises
    ------
    ScoreFileError
        For content that is not a column of numbers (the message names the file,
        and the line for text).
    OSError
        When the file cannot be opened.

    Examples
    --------
    >>> import io
    >>> from ltrend._io import read_scores
    >>> text = io.BytesIO(b"name,score\\na,0.5\\nb,2.0\\n")
    >>> loaded = read_scores("-", column="score", stdin=text)
    >>> loaded.scores.tolist(), loaded.column
    ([0.5, 2.0], 'score')
    """
    if path == "-":
        handle = stdin if stdin is not None else sys.stdin.buffer
        return _read_text(handle, STDIN_NAME, None, column, None, progress)
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        return _read_npy(path, column, progress)
    if suffix == ".npz":
        raise ScoreFileError(
            f"{path}: .npz archives are not read; save one array with np.save "
            "(.npy) or write a .csv"
        )
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        return _read_text(
            handle, path, _DELIMITERS.get(suffix), column, size or None, progress
        )


# --------------------------------------------------------------------------- text


def _sniff_delimiter(line: str) -> str | None:
    """The delimiter of a text table, guessed from its first line (None: spaces)."""
    for candidate in ("\t", ",", ";"):
        if candidate in line:
            return candidate
    return None


def _split(line: str, delimiter: str | None) -> list[str]:
    """The fields of one line, quotes removed, surrounding spaces stripped."""
    if delimiter is None:
        return line.split()
    try:
        fields = next(csv.reader([line], delimiter=delimiter, quotechar=_QUOTE), [])
    except csv.Error:
        # A carriage return inside an unquoted field (bare-CR line ends, binary
        # bytes): split plainly, so that the caller names the line as not a number.
        fields = line.split(delimiter)
    return [field.strip() for field in fields]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _content(line: str) -> bool:
    """Whether a line holds data (not blank, not a comment)."""
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith(_COMMENT)


def _describe_columns(header: Sequence[str] | None, n_fields: int) -> str:
    if header is not None:
        return ", ".join(repr(name) for name in header)
    return f"0 to {n_fields - 1} (no header)"


def _column_index(
    column: str | None, header: list[str] | None, n_fields: int, source: str
) -> tuple[int, str | None]:
    """The index of the column to read, and the name to report it by."""
    if column is None:
        if n_fields == 1:
            return 0, None
        raise ScoreFileError(
            f"{source}: {n_fields} columns ({_describe_columns(header, n_fields)}); "
            "choose one with --column NAME or --column INDEX"
        )
    if header is not None and column in header:
        return header.index(column), column
    try:
        index = int(column)
    except ValueError:
        raise ScoreFileError(
            f"{source}: no column named {column!r}; the columns are "
            f"{_describe_columns(header, n_fields)}"
        ) from None
    if not -n_fields <= index < n_fields:
        raise ScoreFileError(
            f"{source}: column {index} is out of range for {n_fields} column"
            f"{'s' if n_fields != 1 else ''}"
        )
    index %= n_fields
    return index, header[index] if header is not None else str(index)


def _decode(block: bytes, source: str, first_line: int) -> str:
    try:
        return block.decode("utf-8-sig" if first_line == 1 else "utf-8")
    except UnicodeDecodeError as err:
        line = first_line + block.count(b"\n", 0, err.start)
        raise ScoreFileError(
            f"{source}, line {line}: not UTF-8 text (is it a binary file?)"
        ) from None


def _first_bad_line(
    lines: list[str], first_line: int, index: int, delimiter: str | None, source: str
) -> ScoreFileError | None:
    """The error of the first line in ``lines`` whose column is not a number."""
    for offset, line in enumerate(lines):
        if not _content(line):
            continue
        fields = _split(line.split(_COMMENT, 1)[0], delimiter)
        where = f"{source}, line {first_line + offset}"
        if index >= len(fields):
            return ScoreFileError(
                f"{where}: {len(fields)} field{'s' if len(fields) != 1 else ''}, "
                f"no column {index}"
            )
        value = fields[index]
        if not value:
            return ScoreFileError(f"{where}: the score is empty")
        if not _is_number(value):
            return ScoreFileError(f"{where}: {value!r} is not a number")
    return None


def _parse_block(
    text: str, first_line: int, index: int, delimiter: str | None, source: str
) -> npt.NDArray[np.float64]:
    """Whole lines parsed by NumPy; on failure, the first bad line is named."""
    try:
        with warnings.catch_warnings():
            # A block of comments or blank lines only is fine: no scores in it.
            warnings.simplefilter("ignore", UserWarning)
            values = np.loadtxt(
                io.StringIO(text),
                dtype=np.float64,
                delimiter=delimiter,
                comments=_COMMENT,
                usecols=index,
                ndmin=1,
                quotechar=_QUOTE if delimiter is not None else None,
            )
    except ValueError as err:
        lines = text.split("\n")
        bad = _first_bad_line(lines, first_line, index, delimiter, source)
        if bad is not None:
            raise bad from None
        raise ScoreFileError(f"{source}: {err}") from None
    return np.asarray(values, dtype=np.float64)


def _has_header(first: list[str], second: list[str] | None) -> bool:
    """Whether the first row names the columns rather than holding data.

    All numbers: data. Otherwise names, unless the next row has text in every
    place where the first has text (a column of labels or ids, not a header).
    """
    texts = [i for i, field in enumerate(first) if not _is_number(field)]
    if not texts:
        return False
    if second is None or len(second) != len(first):
        return True
    return any(_is_number(second[i]) for i in texts)


def _names_the_column(first: list[str], column: str | None) -> bool:
    """Whether the first row is a header because it holds the column asked for.

    A row of numbers is a header of numeric names (years, say) only when the
    column cannot also be read as an index into it: with ``--column 0`` a first
    row of data that holds a 0 stays data, and column 0 is read.
    """
    if column is None or column not in first:
        return False
    if not all(_is_number(field) for field in first):
        return True
    try:
        index = int(column)
    except ValueError:
        return True
    return not -len(first) <= index < len(first)


def _find_layout(
    lines: list[str], delimiter: str | None, column: str | None, source: str
) -> tuple[int, str | None, tuple[int, str | None]] | None:
    """Where the data starts in the first block, its delimiter, and the column.

    None when the block holds no data line yet (blank lines and comments only).
    """
    content = list(islice((i for i, line in enumerate(lines) if _content(line)), 2))
    if not content:
        return None
    if delimiter is None:
        delimiter = _sniff_delimiter(lines[content[0]])
    first = _split(lines[content[0]], delimiter)
    second = _split(lines[content[1]], delimiter) if len(content) > 1 else None
    named = _names_the_column(first, column)
    header = first if named or _has_header(first, second) else None
    layout = _column_index(column, header, len(first), source)
    return (content[0] + 1 if header is not None else content[0]), delimiter, layout


def _read_text(
    handle: IO[bytes],
    source: str,
    delimiter: str | None,
    column: str | None,
    size: int | None,
    progress: Progress | None,
) -> LoadedScores:
    blocks: list[npt.NDArray[np.float64]] = []
    done = 0
    next_line = 1  # the 1-based number of the next line to be read
    layout: tuple[int, str | None] | None = None  # column index and name
    while raw := handle.readlines(TEXT_BLOCK_BYTES):
        done += sum(len(line) for line in raw)
        block_first = next_line
        next_line += len(raw)
        text = _decode(b"".join(raw), source, block_first)
        if layout is None:
            found = _find_layout(text.split("\n"), delimiter, column, source)
            if found is None:
                continue
            start, delimiter, layout = found
            # Drop the lines before the data (comments, blanks, the header).
            text = text.split("\n", start)[-1] if start else text
            block_first += start
        blocks.append(_parse_block(text, block_first, layout[0], delimiter, source))
        if progress is not None:
            progress(done, size)
    scores = np.concatenate(blocks) if blocks else np.empty(0)
    if scores.shape[0] == 0:
        what = "the file is empty" if layout is None else "no rows after the header"
        raise ScoreFileError(f"{source}: no scores ({what})")
    return LoadedScores(scores, source, layout[1] if layout is not None else None)


# --------------------------------------------------------------------------- .npy


def _read_npy(path: str, column: str | None, progress: Progress | None) -> LoadedScores:
    try:
        stored: Any = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError) as err:
        raise ScoreFileError(f"{path}: not a .npy array of numbers ({err})") from None
    kind = stored.dtype.kind
    if kind not in "biuf":
        raise ScoreFileError(f"{path}: holds {stored.dtype} values, not numbers")
    if stored.ndim == 2:
        n_columns = int(stored.shape[1])
        if column is None and n_columns != 1:
            raise ScoreFileError(
                f"{path}: a 2-D array with {n_columns} columns; choose one with "
                "--column INDEX"
            )
        index, name = _column_index(column or "0", None, n_columns, path)
        values = stored[:, index]
        label = name if column is not None else None
    elif stored.ndim == 1:
        if column is not None:
            raise ScoreFileError(
                f"{path}: a 1-D array has no columns; leave out --column"
            )
        values, label = stored, None
    else:
        raise ScoreFileError(
            f"{path}: a {stored.ndim}-D array of shape {stored.shape}; expected "
            "1-D scores or a 2-D table"
        )
    n = int(values.shape[0])
    if n == 0:
        raise ScoreFileError(f"{path}: no scores (the array is empty)")
    dtype = stored.dtype if kind == "f" and stored.dtype.itemsize in (4, 8) else None
    out = np.empty(n, dtype=np.float64 if dtype is None else dtype.newbyteorder("="))
    total = n * stored.dtype.itemsize
    for begin in range(0, n, NPY_BLOCK_ITEMS):
        end = min(begin + NPY_BLOCK_ITEMS, n)
        out[begin:end] = values[begin:end]
        if progress is not None:
            progress(math.floor(total * end / n), total)
    return LoadedScores(out, path, label)
