"""Fixtures shared across test packages."""

import pytest

from eval_pipelines.core.demo import build_demo_world
from eval_pipelines.core.paths import DataPaths


@pytest.fixture(scope="session")
def full_demo_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataPaths, dict]:
    """The full-scale demo world, built once per test session (about 15 s)."""
    paths = DataPaths(tmp_path_factory.mktemp("full-demo") / "data")
    summary = build_demo_world(paths)
    return paths, summary
