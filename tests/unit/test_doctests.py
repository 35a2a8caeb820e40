"""Every example in riverflink's docstrings runs, imported by its installed name.

Modules are imported as ``riverflink.*`` (not by their folder's name, as pytest's own
``--doctest-modules`` would), so the examples see the package a user sees.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {"jobs": "riverflink", "operators": "riverflink.operators", "state": "riverflink.state"}
#: Examples that run a Flink job (a JVM, seconds): with the integration tests.
WITH_FLINK = {"riverflink.library.learn"}


def _module_names() -> list[str]:
    names = []
    for folder, package in PACKAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = [package, *path.relative_to(REPO / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            if parts[-1] != "__main__":
                names.append(".".join(parts))
    return names


def _cases():
    for name in _module_names():
        marks = [pytest.mark.integration] if name in WITH_FLINK else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_cases()))
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        if test.examples and test.name.startswith(name):
            runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples failed"
