"""The README's example runs as written."""

from __future__ import annotations

import doctest
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example() -> None:
    outcome = doctest.testfile(str(README), module_relative=False)
    assert outcome.attempted > 0
    assert outcome.failed == 0
