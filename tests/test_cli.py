"""The command line: the demo the README promises."""

from __future__ import annotations

import subprocess
import sys

import pytest

import ltrend
from ltrend import metrics
from ltrend._demo import load_demo
from ltrend.cli import main


def test_demo_prints_the_threshold_table_and_quality(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    demo = load_demo()
    result = ltrend.fit(demo.scores)
    assert f"{result.threshold:.6g}" in out
    for row in result.table:
        assert f"{row.compactness:.6g}" in out
    f1 = metrics.f1(demo.labels, result.mask)
    assert f"f1         {f1:.3f}" in out


def test_demo_runs_as_an_installed_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ltrend", "demo"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "threshold" in done.stdout
    assert "precision" in done.stdout


def test_bad_option_is_one_line_and_exit_code_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--max-degree", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "max_degree" in err
