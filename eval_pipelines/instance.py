"""The Dagster instance lives under the data directory unless DAGSTER_HOME says otherwise (under
this machine's cache for the root when the root is on S3: SQLite storage cannot live there).

The dagster.yaml written on first use turns on run monitoring with a launcher that can tell a dead
run worker (run_launcher.py), so a run whose process was killed is marked failed by the daemon and
its record follows. A dagster.yaml written by an older version gets the sections it lacks appended;
sections a user set are left alone.

A deployment beyond one machine writes its dagster.yaml with `eval-pipelines instance config`
(Postgres storage, the queued coordinator's limits per kind, the same run monitoring), checked by
Dagster's own instance schema before it is written, and creates its storage once with `migrate`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from dagster import DagsterInstance
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config

from eval_pipelines.core import deployment
from eval_pipelines.core.deployment import DeploymentSettings
from eval_pipelines.core.errors import InvalidInputError
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
    """Point DAGSTER_HOME at paths.dagster_home (unless set), give it a dagster.yaml, and create
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


_DEPLOYMENT_HEADER = (
    "# Written by `eval-pipelines instance config`: every machine of the deployment uses this file\n"
    "# (DAGSTER_HOME). The Postgres password is read from the environment, never stored here.\n"
)


def checked_instance_yaml(text: str, name: str = "dagster.yaml") -> dict[str, Any]:
    """The instance config as Dagster itself loads and validates it; its errors name the field."""
    with tempfile.TemporaryDirectory() as scratch:
        Path(scratch, "dagster.yaml").write_text(text, encoding="utf-8")
        try:
            value, _ = dagster_instance_config(scratch)
        except DagsterInvalidConfigError as exc:
            problems = [error.message for error in exc.errors] or [str(exc).splitlines()[0]]
            raise InvalidInputError(f"{name}: " + "\n  ".join(problems)) from exc
    return dict(value)


def deployment_yaml(settings: DeploymentSettings) -> str:
    """dagster.yaml for a deployment: its storage and run coordination, then the sections every
    instance of the project has (telemetry off, the worker-checking launcher, run monitoring);
    validated against Dagster's instance schema."""
    chosen = yaml.safe_dump(deployment.instance_sections(settings), sort_keys=False)
    text = _DEPLOYMENT_HEADER + chosen + "".join(instance_sections().values())
    checked_instance_yaml(text)
    return text


def celery_worker_yaml() -> str:
    """The `-y` file of `dagster-celery worker start`: broker and backend read from the environment,
    so a URL with a password stays out of files; checked against the executor's own schema."""
    from dagster._config import validate_config
    from dagster_celery import celery_executor

    broker = {"env": deployment.BROKER_ENV}
    config = {"broker": broker, "backend": broker}
    result = validate_config(celery_executor.config_schema.config_type, config)
    if not result.success:
        raise InvalidInputError("celery.yaml: " + "; ".join(e.message for e in result.errors))
    return yaml.safe_dump({"execution": {"config": config}}, sort_keys=False)


def write_deployment(settings: DeploymentSettings, output: Path) -> list[Path]:
    """dagster.yaml at output, and beside it what the executor asked for needs: `executor.env`
    (the variables to export on every machine) and, for celery, the workers' `celery.yaml`.
    Everything is built and checked before the first file is written."""
    files = {output: deployment_yaml(settings)}
    env = deployment.executor_env(settings)
    if env:
        lines = "".join(f"{key}={value}\n" for key, value in env.items())
        files[output.parent / "executor.env"] = lines
    if settings.executor == "celery":
        files[output.parent / "celery.yaml"] = celery_worker_yaml()
    output.parent.mkdir(parents=True, exist_ok=True)
    return [write_text_atomic(text, path) for path, text in files.items()]


def _unset_variables(value: Any, where: str = "") -> list[str]:
    """Each `{env: NAME}` in an instance config whose variable is not set, with where it is read."""
    if isinstance(value, dict) and set(value) == {"env"} and isinstance(value["env"], str):
        return (
            [] if os.environ.get(value["env"]) else [f"${value['env']}: not set ({where} reads it)"]
        )
    if isinstance(value, dict):
        return [
            p
            for key, item in value.items()
            for p in _unset_variables(item, f"{where}.{key}".lstrip("."))
        ]
    return []


def migrate_instance(home: Path) -> str:
    """Create or upgrade the instance's storage schema once, before daemons and workers start:
    several processes creating a fresh schema at once can corrupt it."""
    config = home / "dagster.yaml"
    if not config.is_file():
        raise InvalidInputError(
            f"--home: {home} has no dagster.yaml (write it with `instance config`)"
        )
    text = config.read_text(encoding="utf-8")
    checked_instance_yaml(text, str(config))
    unset = _unset_variables(yaml.safe_load(text))
    if unset:
        raise InvalidInputError(f"{config}: " + "; ".join(unset))
    with directory_lock(home), DagsterInstance.from_config(str(home)) as instance:
        instance.upgrade()
        return type(instance.run_storage).__name__
