"""The data readers (datasets, logs, TREC files, judgments) stay small rooms: issue 12's proof targets.

Each module is at most 500 lines, opens with a one-line docstring saying what it is for, and has no
function of cyclomatic complexity above 15 (as radon counts it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[3] / "eval_pipelines" / "core"
READER_MODULES = sorted(
    {
        *(CORE / "datasets").glob("*.py"),
        *(CORE / "logs").glob("*.py"),
        *(CORE / "trec").glob("*.py"),
        *CORE.glob("trec*.py"),
        *CORE.glob("arrow_text.py"),
        CORE / "metrics" / "ground_truth" / "judgments.py",
    }
)
MAX_LINES = 500
MAX_COMPLEXITY = 15


def _name(module: Path) -> str:
    return str(module.relative_to(CORE))


def test_the_reader_modules_are_all_there() -> None:
    names = {_name(module) for module in READER_MODULES}
    assert {"datasets/readers.py", "logs/contract.py", "trec/__init__.py", "trec_eval.py"} <= names
    assert "arrow_text.py" in names


def test_no_reader_module_is_over_500_lines() -> None:
    lengths = {_name(m): len(m.read_text(encoding="utf-8").splitlines()) for m in READER_MODULES}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


def test_every_reader_module_says_what_it_is_for_in_one_line() -> None:
    missing = []
    for module in READER_MODULES:
        docstring = ast.get_docstring(ast.parse(module.read_text(encoding="utf-8")))
        first = (docstring or "").splitlines()[0] if docstring else ""
        if not first.endswith(".") or len(first.split()) < 4:
            missing.append(_name(module))
    assert missing == []


def test_no_reader_function_is_more_complex_than_15() -> None:
    complexity = pytest.importorskip("radon.complexity")
    too_complex = {
        f"{_name(module)}:{block.fullname}": block.complexity
        for module in READER_MODULES
        for block in complexity.cc_visit(module.read_text(encoding="utf-8"))
        if block.complexity > MAX_COMPLEXITY
    }
    assert too_complex == {}
