"""The layering rule: core logic is plain Python, so it never imports Dagster."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "eval_pipelines" / "core"


def imported_modules(source: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_core_has_no_dagster_import() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 5
    offenders = {
        str(f.relative_to(CORE)): sorted(
            m for m in imported_modules(f) if m.split(".")[0].startswith("dagster")
        )
        for f in files
    }
    assert {f: m for f, m in offenders.items() if m} == {}
