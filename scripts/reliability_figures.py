"""Run the reliability tests, the fuzzer and the memory measurement; print figures.

    python scripts/reliability_figures.py                 # tests + CLI memory
    python scripts/reliability_figures.py --fuzz 120      # and 120 s per fuzz target
    LTREND_HYPOTHESIS_EXAMPLES=1000 python scripts/reliability_figures.py

Every number in docs/reliability.md comes from this script's output:

- per hypothesis test, the inputs it tried (from ``pytest
  --hypothesis-show-statistics``) and how their lengths spread;
- the lines the tests print as ``figure: ...`` (threads, snapshots);
- per fuzz target, executions and seconds (from ``scripts/fuzz.sh``);
- the peak resident memory of ``ltrend fit`` on a large generated .csv and
  .npy file, against the bytes of the scores, measured in a child process.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TESTS = [
    "tests/test_properties.py",
    "tests/test_hostile_bytes.py",
    "tests/test_errors.py",
    "tests/test_resources.py",
    "tests/test_threads.py",
    # The distributed mode against the in-memory fit on any finite floats.
    "tests/test_dask.py",
    # The hypothesis tests of the core rules, the reference and the monitor.
    "tests/test_parity.py",
    "tests/test_rules.py",
    "tests/test_monitor.py",
]


def run_tests() -> int:
    """Run the tests with hypothesis statistics; print the figures; return the code."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-s",
        "-q",
        "--hypothesis-show-statistics",
        *TESTS,
    ]
    depth = os.environ.get("LTREND_HYPOTHESIS_EXAMPLES", "150 (default)")
    print(f"== tests (LTREND_HYPOTHESIS_EXAMPLES={depth})")
    print("$ " + " ".join(command[2:]))
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    took = time.monotonic() - started
    out = done.stdout
    tried: dict[str, int] = defaultdict(int)
    events: dict[str, list[str]] = defaultdict(list)
    test = ""
    for line in out.splitlines():
        if line.startswith("tests/") and line.rstrip().endswith(":"):
            test = line.rstrip()[:-1]
        elif match := re.search(r"- (\d+) passing, (\d+) failing", line):
            tried[test] += int(match[1]) + int(match[2])
        elif match := re.search(r"\* ([\d.]+)%, (length .*)", line):
            events[test].append(f"{match[2]} {match[1]}%")
    total = 0
    for name, count in tried.items():
        total += count
        spread = f" ({', '.join(events[name])})" if events[name] else ""
        print(f"  {count:>6} inputs  {name}{spread}")
    print(f"  {total:>6} inputs in {len(tried)} hypothesis tests")
    for line in out.splitlines():
        if "figure: " in line:
            print("  " + line[line.index("figure: ") :])
    summary = [
        line for line in out.splitlines() if re.search(r"\d+ (passed|failed)", line)
    ]
    print(f"  pytest: {summary[-1] if summary else done.returncode} ({took:.0f} s)")
    if done.returncode != 0:
        print(out[-3_000:])
        print(done.stderr[-2_000:])
    return done.returncode


def run_fuzz(seconds: int) -> int:
    print(f"== fuzz ({seconds} s per target)")
    print(f"$ bash scripts/fuzz.sh {seconds}")
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "fuzz.sh"), str(seconds)],
        capture_output=True,
        text=True,
    )
    for line in done.stdout.splitlines():
        if not line.startswith("== fuzzing"):
            print("  " + line)
    return done.returncode


WRAPPER = (
    "import resource, subprocess, sys;"
    "done = subprocess.run(sys.argv[1:], capture_output=True);"
    "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak_rss(command: list[str]) -> tuple[int, int, float]:
    """(exit code, peak resident KiB, seconds) of ``command`` in a fresh child."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *command],
        capture_output=True,
        text=True,
        check=True,
    )
    code, kib = (int(word) for word in done.stdout.split())
    return code, kib, time.monotonic() - started


def measure_cli(n: int) -> int:
    """Peak memory of ``ltrend fit`` on n scores as .csv and .npy."""
    print(f"== ltrend fit on {n:.0e} scores (peak resident memory of the process)")
    rng = np.random.default_rng(8)
    scores = rng.lognormal(size=n)
    scores[rng.random(n) < 0.01] += 20.0
    data_mb = scores.nbytes / 1e6
    status = 0
    _, base_kib, _ = peak_rss([sys.executable, "-c", "import ltrend.cli"])
    print(f"  baseline (python -c 'import ltrend.cli'): {base_kib / 1e3:.0f} MB")
    with tempfile.TemporaryDirectory() as tmp:
        npy = Path(tmp) / "scores.npy"
        np.save(npy, scores)
        csv = Path(tmp) / "scores.csv"
        with csv.open("w") as handle:
            handle.write("score\n")
            for start in range(0, n, 1 << 20):
                chunk = scores[start : start + (1 << 20)].tolist()
                handle.write("\n".join(map(repr, chunk)) + "\n")
        for path in (npy, csv):
            command = [sys.executable, "-m", "ltrend", "fit", str(path), "--json"]
            code, kib, took = peak_rss(command)
            status |= code
            extra = kib / 1e3 - base_kib / 1e3
            print(
                f"  {path.suffix}: file {path.stat().st_size / 1e6:.0f} MB, scores "
                f"{data_mb:.0f} MB (float64), peak {kib / 1e3:.0f} MB = baseline + "
                f"{extra:.0f} MB = baseline + {extra / data_mb:.2f} x scores, "
                f"{took:.1f} s, exit {code}"
            )
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fuzz", type=int, default=0, metavar="SECONDS")
    parser.add_argument("--cli-scores", type=float, default=2e7, metavar="N")
    parser.add_argument("--skip-tests", action="store_true")
    args = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.uname().machine}"
    )
    status = 0 if args.skip_tests else run_tests()
    if args.fuzz:
        status |= run_fuzz(args.fuzz)
    if args.cli_scores:
        status |= measure_cli(int(args.cli_scores))
    free_threaded = [name for name in ("python3.13t", "python3.14t") if _on_path(name)]
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(
        f"== free-threaded interpreters on PATH: {free_threaded or 'none'}; "
        f"this interpreter's GIL enabled: {gil}"
    )
    return status


def _on_path(name: str) -> bool:
    return any(
        (Path(folder) / name).exists()
        for folder in os.environ.get("PATH", "").split(os.pathsep)
    )


if __name__ == "__main__":
    sys.exit(main())
