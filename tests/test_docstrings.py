"""Every ``Examples:`` block in the package runs and prints what it says (the doctest of each module).

One test per module, so that a failing example names its module. Examples that need data a test machine
does not have carry ``# doctest: +SKIP``; a module whose optional extra is not installed is skipped with
the reason.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lungcad_transforms"
MODULES = sorted(
    ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    for path in PACKAGE.rglob("*.py")
    if ">>>" in path.read_text(encoding="utf-8")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        module = importlib.import_module(name)
    except ImportError as err:  # an optional extra (vtk, highdicom, itk-elastix) that is not installed
        pytest.skip(f"{name} needs {err.name}: {err}")
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures = []
    for test in finder.find(module, name):
        runner.run(test, out=failures.append)
    assert runner.failures == 0, "".join(failures)


def test_the_package_has_examples() -> None:
    # the mechanism above must be looking at something: the public transforms carry Examples blocks
    assert len(MODULES) > 40, MODULES
