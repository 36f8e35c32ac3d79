"""The ``ltrend`` command line: ``fit`` a file of scores, ``demo``, ``snapshot``.

Bad input (a missing file, a wrong column, text where numbers belong, a wrong
option) ends with one line on stderr, ``ltrend: error: ...``, and exit code 2,
never a traceback. Warnings are one line each, ``ltrend: warning: ...``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

import numpy as np

import ltrend
from ltrend import _plot, metrics
from ltrend._demo import load_demo
from ltrend._fit import DEFAULT_MAX_DEGREE, fit
from ltrend._io import LoadedScores, read_scores
from ltrend._result import Result
from ltrend._validation import METHODS
from ltrend.monitor import Monitor

#: Exit code for bad input or options (argparse uses the same).
EXIT_BAD_INPUT = 2

#: Exit code after Ctrl-C, as shells report SIGINT.
EXIT_INTERRUPTED = 130

#: Exit code when standard output is closed early, as shells report SIGPIPE.
EXIT_BROKEN_PIPE = 141

#: Refits listed by ``ltrend snapshot`` (newest last); ``--json`` gives them all.
REFITS_SHOWN = 10


class CommandError(Exception):
    """A problem to report on one line, without a traceback."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with a pointer to ``--help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            EXIT_BAD_INPUT,
            f"{self.prog}: error: {message} (see {self.prog} --help)\n",
        )


def _size(n_bytes: float) -> str:
    """A byte count for people: 512 B, 12.3 kB, 4.5 MB, 1.2 GB."""
    if n_bytes < 1000:
        return f"{n_bytes:.0f} B"
    for unit in ("kB", "MB"):
        n_bytes /= 1000
        if n_bytes < 1000:
            return f"{n_bytes:.1f} {unit}"
    return f"{n_bytes / 1000:.1f} GB"


class ProgressBar:
    """A one-line progress bar on a terminal stream, erased when done.

    With ``delay`` seconds, nothing is drawn for reads shorter than that, so
    short reads stay quiet.
    """

    #: Seconds between two redraws.
    REFRESH = 0.1

    #: Width of the bar in characters.
    WIDTH = 30

    def __init__(self, stream: IO[str], label: str, *, delay: float) -> None:
        self._stream = stream
        self._label = label
        self._start = time.monotonic()
        self._delay = delay
        self._last = -math.inf
        self._drawn = False

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self._start < self._delay or now - self._last < self.REFRESH:
            return
        self._last = now
        if total:
            share = min(done / total, 1.0)
            filled = round(share * self.WIDTH)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            text = (
                f"reading {self._label} [{bar}] {100 * share:5.1f}% of {_size(total)}"
            )
        else:
            text = f"reading {self._label}: {_size(done)}"
        self._stream.write("\r" + text)
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Erase the bar, if one was drawn."""
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._stream.flush()


def _check_output_path(option: str, path: str) -> None:
    """Fail before any work when an output file cannot be written there."""
    if path == "-":
        raise CommandError(f"{option}: give a file name (standard output is not used)")
    parent = Path(path).parent
    if not parent.is_dir():
        raise CommandError(f"{option}: no directory {str(parent)!r} to write {path!r}")


def _check_plot_path(path: str) -> None:
    _check_output_path("--plot", path)
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise CommandError(f"--plot: {_plot.PLOT_EXTRA_HINT}") from None
    suffix = Path(path).suffix.lower().lstrip(".")
    supported = Figure().canvas.get_supported_filetypes()
    if suffix not in supported:
        raise CommandError(
            f"--plot: cannot tell the image format of {path!r}; end the name with "
            f"one of {', '.join('.' + name for name in sorted(supported))}"
        )


def _write_labels(path: str, result: Result) -> None:
    """The mask in input order: a bool .npy, else text with one 0/1 per line."""
    if Path(path).suffix.lower() == ".npy":
        np.save(path, result.mask)
    else:
        np.savetxt(path, result.labels, fmt="%d")


def _read(args: argparse.Namespace) -> LoadedScores:
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    if not show:
        return read_scores(args.file, column=args.column)
    bar = ProgressBar(
        sys.stderr,
        args.file if args.file != "-" else "standard input",
        # Asked for with --progress: draw at once; on a terminal by default:
        # only when the read turns out to be long.
        delay=0.0 if args.progress else 0.5,
    )
    try:
        return read_scores(args.file, column=args.column, progress=bar)
    finally:
        bar.close()


def _run_fit(args: argparse.Namespace) -> int:
    if args.plot is not None:
        _check_plot_path(args.plot)
    if args.labels is not None:
        _check_output_path("--labels", args.labels)
    loaded = _read(args)
    result = fit(
        loaded.scores,
        max_degree=args.max_degree,
        nan_policy=args.nan_policy,
        method=args.method,
    )
    if args.labels is not None:
        _write_labels(args.labels, result)
    if args.plot is not None:
        _plot.save_result_plot(result, args.plot)
    if args.json:
        summary: dict[str, Any] = {"source": loaded.source, "column": loaded.column}
        summary.update(result.to_dict())
        print(json.dumps(summary, indent=2))
    else:
        column = f" (column {loaded.column!r})" if loaded.column is not None else ""
        print(f"source       {loaded.source}{column}")
        print(result)
        for option, path in (("labels", args.labels), ("plot", args.plot)):
            if path is not None:
                print(f"{option:<12} {path}")
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    demo = load_demo()
    result = fit(demo.scores, max_degree=args.max_degree)
    quality = metrics.report(demo.labels, demo.scores, result.threshold)
    print(f"data         {demo.description}")
    print(result)
    print()
    print("against the labels:")
    for name in ("precision", "recall", "f1", "f1_ratio"):
        print(f"  {name:<10} {quality[name]:.3f}")
    return 0


def _load_monitor(path: str) -> Monitor:
    """The monitor saved in a snapshot file (``-``: standard input)."""
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    try:
        return Monitor.from_bytes(data)
    except ValueError as err:
        source = "<stdin>" if path == "-" else path
        raise CommandError(f"{source}: {err}") from None


def _degree_text(degree: int | None, threshold: float) -> str:
    """The last refit's degree, or why it has none: no split, or a split method."""
    if degree is not None:
        return str(degree)
    return "none (no split)" if threshold == math.inf else "none (a breakpoint method)"


def _describe_monitor(monitor: Monitor) -> list[str]:
    """The state of a monitor as aligned lines, and its last refits as a table."""
    summary = monitor.to_dict()
    lines = [
        f"options      window {summary['window']}, refit every "
        f"{summary['refit_every']}, min_scores {summary['min_scores']}, "
        f"max_degree {summary['max_degree']}, nan_policy {summary['nan_policy']}, "
        f"method {summary['method']}",
    ]
    threshold = monitor.threshold
    if threshold is None:
        lines.append(
            f"threshold    none yet ({summary['n_window']} of "
            f"{summary['min_scores']} scores needed)"
        )
    else:
        lines.append(f"threshold    {threshold:.6g}")
        lines.append(f"degree       {_degree_text(summary['degree'], threshold)}")
        lines.append(f"learned at   score {summary['last_refit']}")
    lines.append(
        f"scores       {summary['n_seen']} seen, {summary['n_flagged']} flagged, "
        f"{summary['n_omitted']} omitted"
    )
    since = "" if threshold is None else f", {summary['since_refit']} since the refit"
    lines.append(f"window       {summary['n_window']} scores{since}")
    history = summary["history"]
    kept = len(history["n_seen"])
    dropped = "" if kept == summary["n_refits"] else f" (the history keeps {kept})"
    lines.append(f"refits       {summary['n_refits']}{dropped}")
    if kept:
        shown = min(kept, REFITS_SHOWN)
        lines.append("")
        lines.append("last refit" if shown == 1 else f"last {shown} refits")
        lines.append("  n_seen     threshold   degree")
        _, thresholds = monitor.threshold_history()
        for step, tau, degree in zip(
            history["n_seen"][-shown:],
            thresholds[-shown:].tolist(),
            history["degree"][-shown:],
            strict=True,
        ):
            chosen = "none" if degree is None else str(degree)
            lines.append(f"{step:>8}  {tau:>12.6g}  {chosen:>7}")
    return lines


def _run_snapshot(args: argparse.Namespace) -> int:
    if args.plot is not None:
        _check_plot_path(args.plot)
    monitor = _load_monitor(args.file)
    source = "<stdin>" if args.file == "-" else args.file
    if args.plot is not None:
        steps, thresholds = monitor.threshold_history()
        _plot.save_history_plot(steps, thresholds, args.plot, until=monitor.n_seen)
    if args.json:
        summary: dict[str, Any] = {"source": source}
        summary.update(monitor.to_dict())
        print(json.dumps(summary, indent=2))
    else:
        print(f"source       {source}")
        for line in _describe_monitor(monitor):
            print(line)
        if args.plot is not None:
            print(f"plot         {args.plot}")
    return 0


def _degree(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``ltrend`` command."""
    parser = _Parser(
        prog="ltrend",
        description="Learn the anomaly threshold of a set of scores (L-trend).",
    )
    parser.add_argument("--version", action="version", version=ltrend.__version__)
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )

    fit_cmd = commands.add_parser(
        "fit",
        help="learn the threshold of the scores in a file",
        description=(
            "Learn the threshold of one column of scores (higher = more anomalous) "
            "and print it with the degree, the anomaly count and the per-degree "
            "table."
        ),
    )
    fit_cmd.add_argument(
        "file",
        metavar="FILE",
        help=".npy, .csv, .tsv or other text table; - reads standard input",
    )
    fit_cmd.add_argument(
        "-c",
        "--column",
        metavar="COL",
        help="the column of scores: a header name or an index (0 = first, -1 = last)",
    )
    fit_cmd.add_argument(
        "--max-degree",
        metavar="D",
        type=_degree,
        default=DEFAULT_MAX_DEGREE,
        help=f"highest polynomial degree tried (default {DEFAULT_MAX_DEGREE})",
    )
    fit_cmd.add_argument(
        "--method", choices=METHODS, default="paper", help="default: paper"
    )
    fit_cmd.add_argument(
        "--nan-policy",
        choices=("raise", "omit"),
        default="raise",
        help="refuse NaN/inf scores (raise, default) or leave them out (omit)",
    )
    fit_cmd.add_argument("--json", action="store_true", help="print the result as JSON")
    fit_cmd.add_argument(
        "--labels",
        metavar="OUT",
        help="write the labels in input order: .npy (bool) or text (one 0/1 a line)",
    )
    fit_cmd.add_argument(
        "--plot",
        metavar="OUT",
        help="draw the sorted scores, each fit and the threshold (.png, .svg, .pdf)",
    )
    fit_cmd.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar while reading (default: on a terminal, for "
        "long reads)",
    )
    fit_cmd.set_defaults(handler=_run_fit)

    demo = commands.add_parser(
        "demo", help="learn the threshold of a small real score set shipped inside"
    )
    demo.add_argument("--max-degree", type=_degree, default=DEFAULT_MAX_DEGREE)
    demo.set_defaults(handler=_run_demo)

    snapshot = commands.add_parser(
        "snapshot",
        help="show a saved monitor's state and its threshold over time",
        description=(
            "Read a monitor saved with Monitor.to_bytes() and print its options, "
            "threshold, counters and last refits."
        ),
    )
    snapshot.add_argument(
        "file",
        metavar="FILE",
        help="the bytes of Monitor.to_bytes(); - reads standard input",
    )
    snapshot.add_argument(
        "--json",
        action="store_true",
        help="print the state and the whole history as JSON (Monitor.to_dict())",
    )
    snapshot.add_argument(
        "--plot",
        metavar="OUT",
        help="draw the threshold against the scores seen (.png, .svg, .pdf)",
    )
    snapshot.set_defaults(handler=_run_snapshot)
    return parser


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: IO[str] | None = None,
    line: str | None = None,
) -> None:
    print(f"ltrend: warning: {message}", file=sys.stderr)


def _describe_os_error(err: OSError) -> str:
    if err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return str(err)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        try:
            code: int = args.handler(args)
        except CommandError as err:
            message = str(err)
        except BrokenPipeError:
            # The reader of our output went away (`ltrend fit ... | head`): stop
            # quietly, and keep Python from complaining again when it flushes.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_BROKEN_PIPE
        except OSError as err:
            message = _describe_os_error(err)
        except (ValueError, TypeError, ImportError) as err:
            message = str(err)
        except KeyboardInterrupt:
            print("ltrend: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        else:
            return code
    print(f"ltrend: error: {' '.join(message.split())}", file=sys.stderr)
    return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
