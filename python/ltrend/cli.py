"""The ``ltrend`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ltrend import metrics
from ltrend._demo import load_demo
from ltrend._fit import fit


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``ltrend`` command."""
    parser = argparse.ArgumentParser(
        prog="ltrend",
        description="Learn the anomaly threshold of a set of scores (L-trend).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="learn the threshold of a small real score set shipped inside"
    )
    demo.add_argument("--max-degree", type=int, default=5)
    demo.set_defaults(handler=_run_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except (ValueError, TypeError, OSError) as err:
        print(f"ltrend: error: {err}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
