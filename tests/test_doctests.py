"""Run the examples in the docstrings of the installed package."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import ltrend

MODULES = sorted(
    {"ltrend"}
    | {
        f"ltrend.{info.name}"
        for info in pkgutil.iter_modules(ltrend.__path__)
        if info.name not in {"__main__", "_core"}
    }
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert outcome.failed == 0


def test_some_examples_exist() -> None:
    total = sum(
        doctest.testmod(importlib.import_module(name)).attempted for name in MODULES
    )
    assert total >= 10
