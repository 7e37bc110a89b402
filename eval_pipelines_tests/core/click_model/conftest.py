"""Logged worlds with a known position-based click model, shared by the click model's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.core.click_model.pbm_logs import Truth, write_logs


@pytest.fixture(scope="module")
def randomized_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataPaths, Truth]:
    """Fixed pages plus 30% of searches with a shuffled top 12."""
    root = tmp_path_factory.mktemp("randomized")
    paths = DataPaths(root / "data")
    return paths, write_logs(paths, root / "raw")


@pytest.fixture(scope="module")
def fixed_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataPaths, Truth]:
    """Each query always served the same page: no pair at two positions, no randomization."""
    root = tmp_path_factory.mktemp("fixed")
    paths = DataPaths(root / "data")
    return paths, write_logs(paths, root / "raw", randomized_share=0.0)


def copy_logs(source: DataPaths, target: Path) -> DataPaths:
    """The stored log parts of source, byte for byte, in a new data directory."""
    paths = DataPaths(target)
    for table in ("executions", "interactions"):
        directory = paths.log_table_dir(table)
        directory.mkdir(parents=True)
        for part in source.log_table_dir(table).glob("*.parquet"):
            (directory / part.name).write_bytes(part.read_bytes())
    return paths
