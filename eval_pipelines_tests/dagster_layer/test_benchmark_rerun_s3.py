"""A `benchmark create --wait` killed mid-replay with the data root on S3 (moto's server, loopback):
`get` settles its record as failed, and `rerun` right away (no waiting out the run lock's lease)
resumes the finished replay chunks from S3 and completes. Real processes throughout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest
import yaml

from eval_pipelines.core.benchmarks.submit import benchmark_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.storage import write_text_atomic
from eval_pipelines_tests.cli.conftest import CLI, run_cli
from eval_pipelines_tests.search_stub import search_stub
from eval_pipelines_tests.services import upload_world

DEADLINE_S = 120


def wait_for(what: str, condition) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_killed_wait_on_s3_is_settled_and_rerun_at_once_resuming_its_chunks(
    small_world: DataPaths, s3_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = upload_world(small_world, s3_root)
    monkeypatch.setenv("EVAL_PIPELINES_REPLAY_CHUNK_SIZE", "5")
    monkeypatch.setenv("EVAL_PIPELINES_PROGRESS_INTERVAL", "0")
    slow = threading.Event()
    slow.set()

    def answer(text: str) -> list[tuple[str, float]]:
        if slow.is_set():
            time.sleep(0.3)
        return [("prod_000001", 1.0)]

    with search_stub(answer) as url:
        config = {"id": "slow", "kind": "http", "http": {"url": url, "concurrency": 1}}
        write_text_atomic(yaml.safe_dump(config), paths.retrievers_dir / "slow.yaml")
        create = ("benchmark", "create", "--name", "killed", "--baseline", "demo_prod")
        create += ("--candidate", "slow", "--sessions", "30", "--min-coverage", "0", "--wait")
        env = {**os.environ, "EVAL_PIPELINES_DATA": s3_root}
        env.pop("DAGSTER_HOME", None)
        waiting = subprocess.Popen(
            [str(CLI), *create, "--json"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        chunks = paths.root / "benchmarks"
        try:
            wait_for(
                "a finished chunk of the slow candidate",
                lambda: bool(list(chunks.glob("*/replay_chunks/slow/*.parquet"))),
            )
        finally:
            waiting.send_signal(signal.SIGKILL)
            waiting.wait(timeout=30)
        [benchmark_id] = benchmark_store(paths).ids()
        assert benchmark_store(paths).get(benchmark_id)["status"] == "replaying"

        got = run_cli(s3_root, "benchmark", "get", benchmark_id, "--json")
        assert got.returncode == 0, got.stderr[-3000:]
        settled = json.loads(got.stdout)
        assert settled["status"] == "failed"
        assert "ended before it finished" in settled["error_message"]

        slow.clear()
        rerun = run_cli(s3_root, "benchmark", "rerun", benchmark_id, "--json")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resumed from an earlier run" in rerun.stderr
    record = json.loads(rerun.stdout)
    assert record["status"] == "completed" and record["benchmark_id"] == benchmark_id
    assert {r["retriever_id"]: r["failed_sessions"] for r in record["results"]} == {
        "demo_prod": 0,
        "slow": 0,
    }
    assert not list(chunks.glob("*/replay_chunks/*/*.parquet"))
