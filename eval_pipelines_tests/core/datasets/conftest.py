"""Real data directories for the dataset tests, and the demo's judgments written by the demo itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval_pipelines.core.demo import (
    DemoScale,
    build_catalog,
    build_intents,
    build_judgments,
    dataset_files,
)
from eval_pipelines.core.paths import DataPaths


@pytest.fixture
def paths(tmp_path: Path) -> DataPaths:
    return DataPaths(tmp_path / "data")


@pytest.fixture(scope="module")
def demo_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], dict]:
    """The small demo's demo-judgments files (only the steps they need) and the step's summary."""
    demo = DataPaths(tmp_path_factory.mktemp("demo") / "data")
    scale = DemoScale.small()
    build_catalog(demo, scale=scale)
    build_intents(demo, scale=scale)
    summary = build_judgments(demo, scale=scale)
    return dataset_files(demo), summary
