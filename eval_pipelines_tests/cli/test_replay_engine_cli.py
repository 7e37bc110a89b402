"""The CLI's --wait replays where EVAL_PIPELINES_REPLAY_ENGINE says; a bad engine or a scheduler
nobody runs is refused (exit 2) before anything is accepted."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from eval_pipelines.core.benchmarks.submit import benchmark_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.engines import ENGINE_ENV, SCHEDULER_ENV
from eval_pipelines_tests.cli.conftest import CLI
from eval_pipelines_tests.loopback import free_port

CREATE = (
    "benchmark",
    "create",
    "--name",
    "engine from the environment",
    "--baseline",
    "demo_prod",
    "--candidate",
    "demo_http",
    "--sessions",
    "30",
    "--wait",
)


def start(data_dir: Path, engine: dict[str, str]) -> subprocess.Popen[str]:
    env = {**os.environ, "EVAL_PIPELINES_DATA": str(data_dir), **engine}
    env.pop("DAGSTER_HOME", None)
    return subprocess.Popen(
        [str(CLI), *CREATE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_wait_replays_on_the_environments_engine_and_refuses_a_bad_one(
    world_copy: DataPaths,
) -> None:
    pytest.importorskip(
        "distributed", reason="dask distributed is not installed (the `scale` extra)"
    )
    cases = {
        "dask": {ENGINE_ENV: "dask", SCHEDULER_ENV: "local-cluster:1"},
        "typo": {ENGINE_ENV: "spark"},
        "no scheduler": {ENGINE_ENV: "dask", SCHEDULER_ENV: f"tcp://127.0.0.1:{free_port()}"},
        "bad address": {ENGINE_ENV: "dask", SCHEDULER_ENV: "127.0.0.1:8786"},
    }
    running = {name: start(world_copy.root, env) for name, env in cases.items()}
    done = {name: process.communicate(timeout=240) for name, process in running.items()}
    codes = {name: process.returncode for name, process in running.items()}

    out, err = done["dask"]
    assert codes["dask"] in (0, 3), err[-3000:]
    engine = json.loads(out)["settings"]["replay_engine"]
    assert engine["engine"] == "dask" and engine["cluster"] == "local-cluster:1"
    assert len(engine["workers"]) == 1 and engine["tasks"] == 2

    assert codes["typo"] == 2
    assert f"{ENGINE_ENV}: expected one of local, dask, got 'spark'" in done["typo"][1]
    assert codes["no scheduler"] == 2
    assert (
        f"{SCHEDULER_ENV}: no Dask scheduler answers at tcp://127.0.0.1:" in done["no scheduler"][1]
    )
    assert codes["bad address"] == 2
    assert f"{SCHEDULER_ENV}: expected tcp://host:port" in done["bad address"][1]
    # The refused ones accepted nothing: the one record is the dask run's.
    assert benchmark_store(world_copy).request_ids() == [json.loads(out)["benchmark_id"]]
