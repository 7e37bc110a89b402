"""The Dagster instance lives under the data directory unless DAGSTER_HOME says otherwise."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import DagsterInstance

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.storage import write_text_atomic

_DAGSTER_YAML = """\
# Written by eval-pipelines on first use; edit freely.
telemetry:
  enabled: false
"""


def ensure_dagster_home(paths: DataPaths) -> Path:
    """Point DAGSTER_HOME at <data>/dagster_home (unless set) and give it a dagster.yaml."""
    home = paths.dagster_home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    config = home / "dagster.yaml"
    if not config.exists():
        write_text_atomic(_DAGSTER_YAML, config)
    return home


def get_instance(paths: DataPaths) -> DagsterInstance:
    ensure_dagster_home(paths)
    return DagsterInstance.get()
