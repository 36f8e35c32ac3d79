"""Threshold quality on real scores: ``python benches/quality.py``.

Scores every benchmark data set with every detector, applies every thresholder to
the same scores, and writes ``docs/benchmarks.md`` (and prints its tables).
Everything is cached in ``benches/.cache``: a rerun with nothing changed only reads.
Needs the ``bench`` extra (``pip install -e ".[bench]"``) and the shared data
(``$LTREND_DATA``); data sets whose files are absent are skipped.
"""

from __future__ import annotations

import os

# One BLAS thread per process: the runner already keeps both cores busy.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_bench import data, report, runner, thresholders

_DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds per PyThresh call"
    )
    parser.add_argument("--cases", default="", help="regex: only matching data sets")
    parser.add_argument("--no-pythresh", action="store_true", help="skip PyThresh")
    parser.add_argument("--scores-only", action="store_true", help="only score")
    parser.add_argument("--output", type=Path, default=_DOCS)
    args = parser.parse_args(argv)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    started = time.perf_counter()
    root = data.data_dir()
    if root is None:
        log("no shared data folder found (set LTREND_DATA); nothing to do")
        return 0
    cases = [c for c in data.datasets() if c.available(root)]
    skipped = [c.name for c in data.datasets() if not c.available(root)]
    if args.cases:
        cases = [c for c in cases if re.search(args.cases, c.name)]
    quiet = [c for c in cases if c.name in data.NO_ANOMALY_CASES]
    sets = runner.score_sets(cases, root, jobs=args.jobs, log=log)
    clean = runner.score_sets(quiet, root, jobs=args.jobs, normal_only=True, log=log)
    if args.scores_only:
        return 0
    chosen = thresholders.thresholders()
    if args.no_pythresh:
        chosen = [t for t in chosen if t.family != "pythresh"]
    results = runner.evaluate(
        sets + clean, chosen, jobs=args.jobs, timeout=args.timeout, log=log
    )
    text = report.render(
        sets,
        clean,
        chosen,
        results,
        versions=runner.versions(),
        settings={"timeout": args.timeout, "jobs": args.jobs, "skipped": skipped},
        seconds=time.perf_counter() - started,
    )
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    log(f"wrote {args.output} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
