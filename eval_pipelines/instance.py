"""The Dagster instance lives under the data directory unless DAGSTER_HOME says otherwise.

The dagster.yaml written on first use turns on run monitoring with a launcher that can tell a dead
run worker (run_launcher.py), so a run whose process was killed is marked failed by the daemon and
its record follows. A dagster.yaml written by an older version gets the sections it lacks appended;
sections a user set are left alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from dagster import DagsterInstance

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.storage import directory_lock, write_text_atomic

RUN_MONITORING_POLL_S = 30
STORAGE_READY = ".storage-ready"

_HEADER = "# Written by eval-pipelines on first use; edit freely.\n"


def instance_sections(poll_interval_s: int = RUN_MONITORING_POLL_S) -> dict[str, str]:
    """Top-level key -> its YAML block, in the order they are written."""
    return {
        "telemetry": "telemetry:\n  enabled: false\n",
        "run_launcher": (
            "# Launches runs as Dagster's default launcher does, and tells monitoring whether a run's\n"
            "# worker process is alive.\n"
            "run_launcher:\n"
            "  module: eval_pipelines.run_launcher\n"
            "  class: WorkerCheckingRunLauncher\n"
        ),
        "run_monitoring": (
            "# A run whose worker died (e.g. a killed `dagster dev`) is marked failed within\n"
            "# poll_interval_seconds of the daemon running again; `benchmark rerun` can then resume it.\n"
            "run_monitoring:\n"
            "  enabled: true\n"
            "  start_timeout_seconds: 180\n"
            "  cancel_timeout_seconds: 180\n"
            "  max_resume_run_attempts: 0\n"
            f"  poll_interval_seconds: {poll_interval_s}\n"
        ),
    }


def write_instance_config(home: Path, poll_interval_s: int = RUN_MONITORING_POLL_S) -> Path:
    """Create dagster.yaml, or append the sections an existing one lacks."""
    config = home / "dagster.yaml"
    sections = instance_sections(poll_interval_s)
    if not config.exists():
        return write_text_atomic(_HEADER + "".join(sections.values()), config)
    text = config.read_text(encoding="utf-8")
    try:
        present = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return config  # the user's file; Dagster itself reports what is wrong with it
    if not isinstance(present, dict):
        return config
    missing = [block for key, block in sections.items() if key not in present]
    if missing:
        write_text_atomic(text.rstrip("\n") + "\n" + "".join(missing), config)
    return config


def ensure_dagster_home(paths: DataPaths) -> Path:
    """Point DAGSTER_HOME at <data>/dagster_home (unless set), give it a dagster.yaml, and create
    its storage once, under a lock: two processes creating a fresh SQLite storage at once can both
    stamp its schema version ("alembic_version has more than one head")."""
    home = paths.dagster_home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    with directory_lock(home):
        write_instance_config(home)
        marker = home / STORAGE_READY
        if not marker.exists():
            with DagsterInstance.from_config(str(home)):
                pass
            write_text_atomic("", marker)
    return home


def get_instance(paths: DataPaths) -> DagsterInstance:
    ensure_dagster_home(paths)
    return DagsterInstance.get()
