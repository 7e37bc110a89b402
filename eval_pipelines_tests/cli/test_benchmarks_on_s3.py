"""Benchmarks with the data root on S3 (moto's server, loopback), through the real CLI: the same
request gives the record a local data directory gives; records are whole objects; every verb reads
them back; a malformed request writes nothing."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path

import pyarrow.parquet as pq

from eval_pipelines.core.paths import DataPaths, data_root
from eval_pipelines_tests.cli.conftest import CLI, CliResult, run_cli
from eval_pipelines_tests.services import S3, comparable, upload_world

REQUEST = {
    "benchmark_name": "s3 parity",
    "baseline_retriever_id": "demo_prod",
    "candidate_retriever_ids": ["demo_better"],
    "session_count": 60,
    "session_filter": {"sample_strategy": "stratified"},
}


def bucket_keys(s3_service: S3, s3_root: str) -> set[str]:
    bucket, prefix = s3_root.removeprefix("s3://").split("/", 1)
    return {k.removeprefix(f"{prefix}/") for k in s3_service.keys(bucket, f"{prefix}/")}


def start(root: str | Path, *args: str) -> subprocess.Popen[str]:
    """The real CLI on root, started now (most of a call waits on imports or the store)."""
    env = {**os.environ, "EVAL_PIPELINES_DATA": str(root)}
    env.pop("DAGSTER_HOME", None)
    return subprocess.Popen(
        [str(CLI), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finished(process: subprocess.Popen[str]) -> CliResult:
    stdout, stderr = process.communicate(timeout=240)
    return CliResult(process.returncode, stdout, stderr)


def record_of(process: subprocess.Popen[str]) -> dict:
    result = finished(process)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


def test_a_benchmark_on_s3_equals_the_local_one_and_every_verb_reads_it(
    world_copy: DataPaths, small_world: DataPaths, s3_root: str, s3_service: S3, tmp_path: Path
) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(REQUEST))
    create = ("benchmark", "create", str(request), "--wait", "--json")
    running_locally = start(world_copy.root, *create)
    upload_world(small_world, s3_root)
    remote = record_of(start(s3_root, *create))
    local = record_of(running_locally)
    assert remote["status"] == "completed"
    assert comparable(remote) == comparable(local)

    benchmark_id = remote["benchmark_id"]
    keys = bucket_keys(s3_service, s3_root)
    mine = sorted(k for k in keys if k.startswith(f"benchmarks/{benchmark_id}/"))
    # Whole objects only: no temporary, no lease left behind, and the replay chunks are gone.
    assert not [k for k in mine if k.rsplit("/", 1)[-1].startswith(".") or "/replay_chunks/" in k]
    # The Dagster instance cannot live on S3: its home is this machine's cache for the root.
    assert not [k for k in keys if k.startswith(("dagster_home/", "warehouse"))]
    cache = DataPaths(data_root(s3_root, "test")).local_cache
    assert (cache / "dagster_home" / "dagster.yaml").is_file()
    assert (cache / "warehouse.duckdb").is_file()
    folder = data_root(s3_root, "test") / "benchmarks" / benchmark_id
    stored = json.loads((folder / "record.json").read_text())
    assert stored["record"] == remote and stored["run_id"]
    assert json.loads((folder / "request.json").read_text())["benchmark_name"] == "s3 parity"
    sessions = pq.read_table(f"{s3_root}/benchmarks/{benchmark_id}/sessions.parquet")
    assert sessions.num_rows == remote["session_count"]

    verbs = {
        "get": ("get", benchmark_id, "--json"),
        "list": ("list", "--json"),
        "export": ("export", benchmark_id, "--format", "csv"),
        "history": ("history", "--baseline", "demo_prod", "--candidate", "demo_better"),
        "rerun": ("rerun", benchmark_id),
    }
    plan = ("benchmark", "plan", "--name", "p", "--baseline", "demo_prod", "--candidate")
    plan += ("demo_better", "--pilot-sessions", "30", "--json")
    running = {verb: start(s3_root, "benchmark", *args) for verb, args in verbs.items()}
    plans = [start(s3_root, *plan), start(world_copy.root, *plan)]
    got, listed, exported, history, again = (finished(running[verb]) for verb in verbs)
    planned_remotely, planned_locally = (finished(p) for p in plans)
    for result in (got, listed, exported, history, planned_remotely, planned_locally):
        assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(planned_remotely.stdout) == json.loads(planned_locally.stdout)
    assert json.loads(got.stdout) == remote
    assert [r["benchmark_id"] for r in json.loads(listed.stdout)] == [benchmark_id]
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len(rows) == 2 * sessions.num_rows
    assert {r["benchmark_id"] for r in rows} == {benchmark_id}
    [point] = json.loads(history.stdout)
    assert point["benchmark_id"] == benchmark_id
    assert point["verdict"] == local["comparison"]["comparisons"][0]["verdict"]
    assert again.returncode == 2
    assert f"benchmark_id: {benchmark_id} has completed" in again.stderr
    assert bucket_keys(s3_service, s3_root) == keys


def test_a_malformed_request_on_s3_exits_2_and_writes_no_object(
    small_world: DataPaths, s3_root: str, s3_service: S3, tmp_path: Path
) -> None:
    remote = data_root(s3_root, "test")
    for top in ("retrievers", "collections"):  # what validating a request reads
        for file in Path(small_world.root, top).rglob("*"):
            if not file.is_file() or "bm25" in file.parts:
                continue
            relative = file.relative_to(small_world.root).as_posix()
            remote.fs.put_file(str(file), (remote / relative).path)
    before = bucket_keys(s3_service, s3_root)
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps({**REQUEST, "candidate_retriever_ids": ["ghost"], "session_count": 0})
    )
    create = ("benchmark", "create", str(request))
    for result in [
        finished(p) for p in (start(s3_root, *create), start(s3_root, *create, "--wait"))
    ]:
        assert result.returncode == 2, result.stderr[-2000:]
        assert "candidate_retriever_ids.0: unknown retriever 'ghost'" in result.stderr
        assert "session_count" in result.stderr
    assert bucket_keys(s3_service, s3_root) == before
    listed = run_cli(s3_root, "benchmark", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
