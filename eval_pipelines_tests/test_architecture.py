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


PACKAGE = CORE.parent
ARCHITECTURE = PACKAGE.parent / "docs" / "ARCHITECTURE.md"
MAX_LINES = 500
MAX_COMPLEXITY = 15
# The demo world's generator simulates a shop; its branching is the simulation, not our logic.
COMPLEXITY_EXEMPT = ("core/demo/",)


def modules() -> list[str]:
    return sorted(
        str(f.relative_to(PACKAGE))
        for f in PACKAGE.rglob("*.py")
        if f.name != "__init__.py" or f.stat().st_size > 200
    )


def test_every_module_is_on_the_architecture_map() -> None:
    """docs/ARCHITECTURE.md names every module (path relative to eval_pipelines/), so the map a
    newcomer reads cannot fall behind the code."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    missing = [module for module in modules() if f"`{module}`" not in text]
    assert len(modules()) > 50
    assert missing == []


def _functions(blocks: list) -> list:
    """Every function radon sees: top-level ones, methods and closures (classes are not scored)."""
    found = []
    for block in blocks:
        inner = [*getattr(block, "methods", []), *getattr(block, "closures", [])]
        if not hasattr(block, "methods"):
            found.append(block)
        found += _functions(inner)
    return found


def test_no_module_is_too_long_or_too_branchy() -> None:
    """Files under 500 lines, functions of cyclomatic complexity 15 at most (radon)."""
    from radon.complexity import cc_visit

    too_long = {}
    too_branchy = {}
    for module in modules():
        source = (PACKAGE / module).read_text(encoding="utf-8")
        if (lines := source.count("\n")) > MAX_LINES:
            too_long[module] = lines
        if module.startswith(COMPLEXITY_EXEMPT):
            continue
        for function in _functions(cc_visit(source)):
            if function.complexity > MAX_COMPLEXITY:
                too_branchy[f"{module}:{function.fullname}"] = function.complexity
    assert too_long == {}
    assert too_branchy == {}
