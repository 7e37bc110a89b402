"""Tests read the session's demo worlds (conftest.py) or copies of them, instead of building their
own: a private build costs about a second per module on two cores, a copy a few milliseconds."""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# The shared fixtures themselves, and the generator's own tests (they compare fresh builds).
MAY_BUILD = {"conftest.py", "core/demo/test_world_small.py"}


def demo_world_builds(root: Path) -> list[str]:
    """Every call of build_demo_world under root, as `file:line`, outside the files that may build."""
    found = []
    for file in sorted(root.rglob("*.py")):
        name = file.relative_to(root).as_posix()
        if name in MAY_BUILD:
            continue
        for node in ast.walk(ast.parse(file.read_text(), filename=name)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if called == "build_demo_world":
                found.append(f"{name}:{node.lineno}")
    return found


def test_no_test_builds_a_private_demo_world() -> None:
    assert demo_world_builds(TESTS) == [], (
        "use small_world (read only), world_copy or module_world_copy from conftest.py"
    )


def test_the_scan_finds_a_private_build(tmp_path: Path) -> None:
    (tmp_path / "test_private.py").write_text(
        "from eval_pipelines.core import demo\n"
        "from eval_pipelines.core.demo import build_demo_world\n\n"
        "def test_x(tmp_path):\n"
        "    build_demo_world(tmp_path)\n"
        "    demo.build_demo_world(tmp_path)\n"
    )
    (tmp_path / "conftest.py").write_text("build_demo_world(None)\n")
    assert demo_world_builds(tmp_path) == ["test_private.py:5", "test_private.py:6"]
