"""``ltrend fit`` and ``ltrend snapshot`` end to end, and every error path."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import numpy.typing as npt
import pytest

import ltrend
from ltrend._demo import load_demo
from ltrend.cli import REFITS_SHOWN, ProgressBar, _size, main


def _scores() -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(7)
    return np.concatenate([rng.normal(1.0, 0.1, 600), rng.uniform(3.0, 6.0, 15)])


def _write_csv(path: Path, scores: npt.NDArray[np.float64]) -> Path:
    rows = "".join(
        f"img{i},{value!r},{i % 3}\n" for i, value in enumerate(scores.tolist())
    )
    path.write_text("id,score,fold\n" + rows)
    return path


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The installed command, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "ltrend", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def test_csv_to_plotted_threshold_end_to_end(tmp_path: Path) -> None:
    scores = _scores()
    csv = _write_csv(tmp_path / "scores.csv", scores)
    png = tmp_path / "threshold.png"
    done = _run("fit", str(csv), "--column", "score", "--plot", str(png))
    assert done.returncode == 0, done.stderr
    # stderr may hold matplotlib's one-time note that it builds its font cache.
    assert "error" not in done.stderr
    assert "warning" not in done.stderr
    expected = ltrend.fit(scores)
    assert f"threshold    {expected.threshold:.6g}" in done.stdout
    assert f"anomalies    {expected.n_anomalies} of {len(scores)}" in done.stdout
    for row in expected.table:
        assert f"{row.compactness:.6g}" in done.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(png)
    assert image.ndim == 3
    assert image.shape[0] > 200
    assert image.shape[1] > 200
    # Not a blank canvas: something was drawn.
    assert np.ptp(image[..., :3]) > 0.5


def test_json_output_is_the_result_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scores = _scores()
    path = tmp_path / "scores.npy"
    np.save(path, scores)
    assert main(["fit", str(path), "--json", "--max-degree", "4"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = ltrend.fit(scores, max_degree=4).to_dict()
    assert printed.pop("source") == str(path)
    assert printed.pop("column") is None
    assert printed == expected


def test_labels_are_written_in_input_order(tmp_path: Path) -> None:
    scores = _scores()[::-1].copy()
    csv = _write_csv(tmp_path / "scores.csv", scores)
    text_labels = tmp_path / "labels.txt"
    npy_labels = tmp_path / "labels.npy"
    expected = ltrend.fit(scores)
    for out in (text_labels, npy_labels):
        assert main(["fit", str(csv), "-c", "1", "--labels", str(out)]) == 0
    np.testing.assert_array_equal(np.loadtxt(text_labels, dtype=int), expected.labels)
    mask = np.load(npy_labels)
    assert mask.dtype == np.bool_
    np.testing.assert_array_equal(mask, expected.mask)


def test_stdin_one_column_without_header() -> None:
    scores = _scores()
    done = _run("fit", "-", stdin="".join(f"{value!r}\n" for value in scores.tolist()))
    assert done.returncode == 0, done.stderr
    assert "source       <stdin>\n" in done.stdout
    assert f"threshold    {ltrend.fit(scores).threshold:.6g}" in done.stdout


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("tab.tsv", "score\tid\n{rows_tab}"),
        ("spaces.txt", "# a comment\n\n{rows_space}"),
        ("quoted.csv", '"score","id"\n{rows_quoted}'),
        ("bom.csv", "\ufeffscore,id\n{rows_comma}"),
    ],
)
def test_text_layouts(tmp_path: Path, name: str, text: str) -> None:
    scores = _scores()
    rows = {
        "rows_tab": "".join(f"{v!r}\tx{i}\n" for i, v in enumerate(scores.tolist())),
        "rows_space": "".join(
            f"  {v!r}   x{i}\n" for i, v in enumerate(scores.tolist())
        ),
        "rows_quoted": "".join(
            f'"{v!r}","x{i}"\n' for i, v in enumerate(scores.tolist())
        ),
        "rows_comma": "".join(f"{v!r},x{i}\n" for i, v in enumerate(scores.tolist())),
    }
    path = tmp_path / name
    path.write_text(text.format(**rows), encoding="utf-8")
    column = "0" if name == "spaces.txt" else "score"
    done = _run("fit", str(path), "--column", column, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["threshold"] == ltrend.fit(scores).threshold


def test_nan_policy_omit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scores = _scores()
    scores[3] = np.nan
    path = tmp_path / "scores.npy"
    np.save(path, scores)
    assert main(["fit", str(path)]) == 2
    assert "NaN" in capsys.readouterr().err
    assert main(["fit", str(path), "--nan-policy", "omit", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n_omitted"] == 1
    assert printed["threshold"] == ltrend.fit(scores, nan_policy="omit").threshold


def test_float32_npy_and_2d_npy_column(tmp_path: Path) -> None:
    scores = _scores()
    single = tmp_path / "single.npy"
    np.save(single, scores.astype(np.float32))
    table = tmp_path / "table.npy"
    np.save(table, np.column_stack([np.zeros_like(scores), scores]))
    out32 = _run("fit", str(single), "--json")
    out2d = _run("fit", str(table), "--column", "-1", "--json")
    assert out32.returncode == out2d.returncode == 0
    assert json.loads(out32.stdout)["threshold"] == (
        ltrend.fit(scores.astype(np.float32)).threshold
    )
    assert json.loads(out2d.stdout)["threshold"] == ltrend.fit(scores).threshold
    assert json.loads(out2d.stdout)["column"] == "1"


def test_forced_progress_bar_draws_and_erases(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "scores.csv", _scores())
    command = [sys.executable, "-m", "ltrend", "fit", str(path), "-c", "score"]
    # Bytes, not text: the bar's carriage returns must arrive as they are.
    shown = subprocess.run([*command, "--progress"], capture_output=True, check=True)
    size = path.stat().st_size
    assert (
        shown.stderr
        == (
            f"\rreading {path} [{'#' * ProgressBar.WIDTH}] 100.0% of "
            f"{size / 1000:.1f} kB\r\x1b[K"
        ).encode()
    )
    quiet = subprocess.run(command, capture_output=True, check=True)
    assert quiet.stderr == b""


def test_progress_bar_without_a_size_counts_megabytes() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, "standard input", delay=0.0)
    bar(2_500_000, None)
    bar.close()
    assert stream.getvalue() == "\rreading standard input: 2.5 MB\r\x1b[K"


@pytest.mark.parametrize(
    ("n_bytes", "shown"),
    [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (2_500_000, "2.5 MB")],
)
def test_sizes_for_people(n_bytes: int, shown: str) -> None:
    assert _size(n_bytes) == shown


def test_progress_bar_stays_quiet_for_short_reads() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, "x", delay=3600.0)
    bar(1, 2)
    bar.close()
    assert stream.getvalue() == ""


def _write_bad_inputs(tmp: Path) -> None:
    (tmp / "good.csv").write_text("id,score\n" + "a,1\nb,2\nc,3\nd,9\n")
    (tmp / "text.csv").write_text("score\n1.0\n2.0\nhigh\n4.0\n")
    (tmp / "ragged.csv").write_text("1.0,5.0\n2.0,6.0\n3.0\n")
    (tmp / "empty.csv").write_text("")
    (tmp / "header.csv").write_text("score\n")
    (tmp / "blank.csv").write_text("score\n1.0\n\n,\n")
    (tmp / "binary.csv").write_bytes(b"\x89\xff\xfe\x00\x01garbage")
    (tmp / "few.csv").write_text("1.0\n2.0\n")
    (tmp / "junk.npy").write_bytes(b"not an array at all")
    snapshot = _drifting_monitor().to_bytes()
    (tmp / "cut.snapshot").write_bytes(snapshot[: len(snapshot) // 2])
    flipped = bytearray(snapshot)
    flipped[len(snapshot) // 3] ^= 0x08
    (tmp / "flipped.snapshot").write_bytes(bytes(flipped))
    (tmp / "long.snapshot").write_bytes(snapshot + b"\n")
    (tmp / "empty.snapshot").write_bytes(b"")
    (tmp / "good.snapshot").write_bytes(snapshot)
    np.save(tmp / "strings.npy", np.array(["a", "b", "c"]))
    np.save(tmp / "cube.npy", np.zeros((2, 2, 2)))
    np.save(tmp / "wide.npy", np.zeros((5, 3)))
    np.save(tmp / "empty.npy", np.zeros(0))
    np.savez(tmp / "archive.npz", scores=_scores())


#: Arguments (``{tmp}`` is the folder of the files above), and a fragment of the
#: one error line they must give.
BAD_INPUTS: dict[str, tuple[list[str], str]] = {
    "missing file": (
        ["fit", "{tmp}/missing.csv"],
        "{tmp}/missing.csv: No such file or directory",
    ),
    "a directory": (["fit", "{tmp}"], "Is a directory"),
    "unknown column": (
        ["fit", "{tmp}/good.csv", "-c", "nope"],
        "no column named 'nope'; the columns are 'id', 'score'",
    ),
    "column out of range": (
        ["fit", "{tmp}/good.csv", "-c", "7"],
        "column 7 is out of range for 2 columns",
    ),
    "no column chosen": (
        ["fit", "{tmp}/good.csv"],
        "2 columns ('id', 'score'); choose one with --column",
    ),
    "text column": (["fit", "{tmp}/good.csv", "-c", "id"], "'a' is not a number"),
    "non-numeric": (["fit", "{tmp}/text.csv"], "line 4: 'high' is not a number"),
    "ragged rows": (
        ["fit", "{tmp}/ragged.csv", "-c", "1"],
        "line 3: 1 field, no column 1",
    ),
    "empty file": (["fit", "{tmp}/empty.csv"], "no scores (the file is empty)"),
    "header only": (["fit", "{tmp}/header.csv"], "no rows after the header"),
    "empty value": (["fit", "{tmp}/blank.csv"], "line 4: the score is empty"),
    "binary file": (["fit", "{tmp}/binary.csv"], "not UTF-8 text"),
    "too few scores": (["fit", "{tmp}/few.csv"], "at least 3"),
    "junk npy": (["fit", "{tmp}/junk.npy"], "not a .npy array of numbers"),
    "string npy": (["fit", "{tmp}/strings.npy"], "values, not numbers"),
    "3-D npy": (["fit", "{tmp}/cube.npy"], "a 3-D array of shape"),
    "wide npy": (["fit", "{tmp}/wide.npy"], "3 columns; choose one"),
    "empty npy": (["fit", "{tmp}/empty.npy"], "no scores (the array is empty)"),
    "npz": (["fit", "{tmp}/archive.npz"], ".npz archives are not read"),
    "bad degree": (
        ["fit", "{tmp}/good.csv", "-c", "1", "--max-degree", "11"],
        "max_degree: must be between 1 and 10",
    ),
    "plot dir": (
        ["fit", "{tmp}/good.csv", "--plot", "{tmp}/no/x.png"],
        "--plot: no directory",
    ),
    "plot format": (
        ["fit", "{tmp}/good.csv", "--plot", "{tmp}/x.unknown"],
        "cannot tell the image format",
    ),
    "labels to stdout": (
        ["fit", "{tmp}/good.csv", "--labels", "-"],
        "--labels: give a file name",
    ),
    "missing argument": (["fit"], "the following arguments are required: FILE"),
    "unknown command": (["nope"], "invalid choice: 'nope'"),
    "snapshot of text": (
        ["snapshot", "{tmp}/good.csv"],
        "{tmp}/good.csv: snapshot: not a monitor snapshot",
    ),
    "truncated snapshot": (
        ["snapshot", "{tmp}/cut.snapshot"],
        "{tmp}/cut.snapshot: snapshot: truncated: a complete snapshot needs",
    ),
    "corrupted snapshot": (
        ["snapshot", "{tmp}/flipped.snapshot", "--json"],
        "snapshot: checksum mismatch",
    ),
    "snapshot with a byte more": (
        ["snapshot", "{tmp}/long.snapshot"],
        "snapshot: oversized",
    ),
    "empty snapshot": (["snapshot", "{tmp}/empty.snapshot"], "snapshot: truncated"),
    "missing snapshot": (
        ["snapshot", "{tmp}/missing.snapshot"],
        "{tmp}/missing.snapshot: No such file or directory",
    ),
    "snapshot plot dir": (
        ["snapshot", "{tmp}/good.snapshot", "--plot", "{tmp}/no/x.png"],
        "--plot: no directory",
    ),
    "snapshot plot format": (
        ["snapshot", "{tmp}/good.snapshot", "--plot", "{tmp}/history.xyz"],
        "cannot tell the image format",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path, case: str) -> None:
    _write_bad_inputs(tmp_path)
    template, fragment = BAD_INPUTS[case]
    done = _run(*(arg.format(tmp=tmp_path) for arg in template))
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("ltrend")
    assert ": error: " in done.stderr
    assert fragment.format(tmp=tmp_path) in done.stderr


def test_demo_still_works() -> None:
    done = _run("demo")
    assert done.returncode == 0, done.stderr
    assert "f1_ratio" in done.stdout


def _drifting_monitor() -> ltrend.Monitor:
    """A monitor fed real scores (the MNIST demo set) that drift halfway through.

    The second half is the same images scored by a detector whose scale moved
    (1.4 times the distance, plus 10), so the threshold has to follow.
    """
    rng = np.random.default_rng(3)
    scores = load_demo().scores
    stream = np.concatenate(
        [rng.permutation(scores), 10.0 + 1.4 * rng.permutation(scores)]
    )
    monitor = ltrend.Monitor(window=500, refit_every=100)
    monitor.update_many(stream)
    return monitor


def _refit_rows(out: str) -> list[tuple[int, float, int | None]]:
    """The (n_seen, threshold, degree) rows of the "last refits" table printed."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("last ")) + 2
    rows = []
    for line in lines[start:]:
        fields = line.split()
        if len(fields) != 3 or not fields[0].isdigit():
            break
        degree = None if fields[2] == "none" else int(fields[2])
        rows.append((int(fields[0]), float(fields[1]), degree))
    return rows


def test_snapshot_of_a_real_monitor_prints_and_plots_its_history(
    tmp_path: Path,
) -> None:
    monitor = _drifting_monitor()
    path = tmp_path / "monitor.snapshot"
    path.write_bytes(monitor.to_bytes())
    png = tmp_path / "history.png"
    done = _run("snapshot", str(path), "--plot", str(png))
    assert done.returncode == 0, done.stderr
    # stderr may hold matplotlib's one-time note that it builds its font cache.
    assert "error" not in done.stderr
    assert "warning" not in done.stderr

    status = monitor.status()
    assert status.threshold is not None
    assert f"source       {path}\n" in done.stdout
    assert f"threshold    {status.threshold:.6g}\n" in done.stdout
    assert f"degree       {status.degree}\n" in done.stdout
    assert f"learned at   score {status.last_refit}\n" in done.stdout
    assert f"{status.n_seen} seen, {status.n_flagged} flagged" in done.stdout
    assert f"refits       {status.n_refits}\n" in done.stdout
    assert f"plot         {png}\n" in done.stdout
    steps, thresholds = monitor.threshold_history()
    degrees = monitor.to_dict()["history"]["degree"]
    rows = _refit_rows(done.stdout)
    assert len(rows) == REFITS_SHOWN < status.n_refits
    # The threshold moved with the drift: the table is not one repeated value.
    assert len({tau for _, tau, _ in rows}) > 1
    for (step, tau, degree), expected in zip(
        rows,
        zip(
            steps[-REFITS_SHOWN:].tolist(),
            thresholds[-REFITS_SHOWN:].tolist(),
            degrees[-REFITS_SHOWN:],
            strict=True,
        ),
        strict=True,
    ):
        assert step == expected[0]
        # Printed with 6 significant digits.
        assert tau == pytest.approx(expected[1], rel=5e-6)
        assert degree == expected[2]

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(png)
    assert image.ndim == 3
    assert image.shape[0] > 200
    assert image.shape[1] > 200
    # Not a blank canvas: something was drawn.
    assert np.ptp(image[..., :3]) > 0.5


def test_snapshot_json_is_the_monitor_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monitor = _drifting_monitor()
    path = tmp_path / "monitor.snapshot"
    path.write_bytes(monitor.to_bytes())
    assert main(["snapshot", str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed.pop("source") == str(path)
    assert printed == monitor.to_dict()
    steps, thresholds = monitor.threshold_history()
    assert printed["history"]["n_seen"] == steps.tolist()
    assert printed["history"]["threshold"] == thresholds.tolist()
    assert printed["history"]["n_seen"][-1] == printed["last_refit"]


def test_snapshot_of_a_breakpoint_method_monitor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monitor = ltrend.Monitor(window=500, refit_every=100, method="knee")
    monitor.update_many(load_demo().scores)
    path = tmp_path / "monitor.snapshot"
    path.write_bytes(monitor.to_bytes())
    assert main(["snapshot", str(path)]) == 0
    printed = capsys.readouterr().out
    assert ", method knee\n" in printed
    assert monitor.threshold is not None
    assert f"threshold    {monitor.threshold:.6g}\n" in printed
    assert "degree       none (a breakpoint method)\n" in printed
    assert {degree for _, _, degree in _refit_rows(printed)} == {None}


def test_snapshot_from_stdin_and_before_the_first_refit() -> None:
    young = ltrend.Monitor(window=100, refit_every=50)
    young.update_many(load_demo().scores[:30])
    done = subprocess.run(
        [sys.executable, "-m", "ltrend", "snapshot", "-"],
        input=young.to_bytes(),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert "source       <stdin>\n" in out
    assert "threshold    none yet (30 of 50 scores needed)\n" in out
    assert "refits       0\n" in out
    assert "last" not in out
    cut = subprocess.run(
        [sys.executable, "-m", "ltrend", "snapshot", "-"],
        input=young.to_bytes()[:-1],
        capture_output=True,
        check=False,
    )
    assert cut.returncode == 2
    assert cut.stdout == b""
    assert cut.stderr.decode().startswith("ltrend: error: <stdin>: snapshot: ")
    assert cut.stderr.count(b"\n") == 1


def test_snapshot_with_a_trimmed_history_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monitor = ltrend.Monitor(window=3, refit_every=1)
    monitor.update_many(np.tile(load_demo().scores, 5))
    path = tmp_path / "long.snapshot"
    path.write_bytes(monitor.to_bytes())
    assert main(["snapshot", str(path)]) == 0
    out = capsys.readouterr().out
    kept = len(monitor.threshold_history()[0])
    assert kept == ltrend.monitor.HISTORY_LIMIT < monitor.n_refits
    assert f"refits       {monitor.n_refits} (the history keeps {kept})\n" in out
