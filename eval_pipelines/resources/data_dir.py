"""The data directory as a Dagster resource, so runs launched from the UI write where the CLI reads."""

from __future__ import annotations

from dagster import ConfigurableResource, get_dagster_logger

from eval_pipelines.core.paths import DataPaths, data_root
from eval_pipelines.core.warehouse import refresh_views


class DataDirResource(ConfigurableResource):
    """Empty `path` means EVAL_PIPELINES_DATA, else the project's data/ directory."""

    path: str = ""

    @property
    def paths(self) -> DataPaths:
        return (
            DataPaths(data_root(self.path, "data_dir.path")) if self.path else DataPaths.from_env()
        )

    def refresh_views(self) -> list[str]:
        """Unreadable files are reported in the run's event log, and the rest is built."""
        return refresh_views(self.paths, get_dagster_logger().warning)
