"""The k8s section of a deployment (issue 16 point 3), rendered and validated, never run (no cluster
here): deploy/k8s/executor.yaml is run config that dagster-k8s's own k8s_job_executor schema
accepts, for the image deploy/Dockerfile builds with the `scale` extra."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from dagster._config import validate_config

PROJECT = Path(__file__).resolve().parents[1]
DEPLOY = PROJECT / "deploy"


def executor_config() -> dict:
    return yaml.safe_load((DEPLOY / "k8s" / "executor.yaml").read_text())["execution"]["config"]


def test_the_dockerfile_builds_the_image_the_executor_names_with_the_scale_extra() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    built = re.search(r"docker build -f deploy/Dockerfile -t (\S+) \.", dockerfile)
    assert built is not None and built.group(1) == executor_config()["job_image"]
    assert re.search(r'pip install "\.\[scale\]" "dagster-k8s>=0\.29,<0\.30"', dockerfile)
    extras = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    scale = " ".join(extras["optional-dependencies"]["scale"])
    for package in ("dagster-postgres", "dagster-celery", "psycopg2-binary", "redis"):
        assert package in scale
    for copied in re.findall(r"^COPY (.+) \S+$", dockerfile, flags=re.M):
        for path in copied.split():
            assert (PROJECT / path).exists(), f"Dockerfile copies {path}, which does not exist"


def test_the_executor_config_has_no_secret_and_shares_the_data_root() -> None:
    config = executor_config()
    assert "EVAL_PIPELINES_DATA=/data" in config["env_vars"]
    mounted = {mount["name"]: mount["mountPath"] for mount in config["volume_mounts"]}
    assert mounted["data"] == "/data"
    text = (DEPLOY / "k8s" / "executor.yaml").read_text()
    assert not re.search(r"password\s*[:=]", text, flags=re.I)


def test_the_executor_config_validates_against_dagster_k8s_schema() -> None:
    dagster_k8s = pytest.importorskip(
        "dagster_k8s", reason="dagster-k8s is not installed (pip install 'dagster-k8s>=0.29,<0.30')"
    )
    schema = dagster_k8s.k8s_job_executor.config_schema.config_type
    result = validate_config(schema, executor_config())
    assert result.success, [error.message for error in result.errors]
    broken = {**executor_config(), "max_concurrent": "four"}
    assert not validate_config(schema, broken).success


def test_the_run_jobs_take_the_k8s_executor_when_asked() -> None:
    pytest.importorskip("dagster_k8s", reason="dagster-k8s is not installed")
    code = (
        "from eval_pipelines.definitions import defs;"
        "print(defs.resolve_job_def('run_benchmark').executor_def.name)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "EVAL_PIPELINES_EXECUTOR": "k8s"},
        capture_output=True,
        text=True,
    )
    assert result.stdout.split() == ["k8s"], result.stderr[-2000:]
