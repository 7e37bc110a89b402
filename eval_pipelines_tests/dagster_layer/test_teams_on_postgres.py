"""Several teams submit at once from different machines against one shared Postgres instance and one
S3 data root (issue 16 point 4): four benchmarks and two evaluations, each from a "machine" that is a
process with its own temporary DAGSTER_HOME (a copy of the dagster.yaml `instance config` wrote), its
own HOME and its own local cache, running `benchmark create --wait` or `evaluation run --wait` through
the real CLI, all started together. They share only Postgres and the bucket (moto's S3 server on
loopback).

Nothing may be lost or doubled: every record completes and is valid, each request has exactly one
partition and one successful run in Postgres, every replay and execution is stored once, and a machine
that ran nothing lists every record."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from eval_pipelines.core.object_store import connect_duckdb
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.records import RecordStore
from eval_pipelines_tests.cli.conftest import CLI
from eval_pipelines_tests.dagster_layer.test_concurrency import (
    BENCHMARKS,
    EVALUATIONS,
    check_record,
    check_warehouse,
)
from eval_pipelines_tests.services import (
    Postgres,
    configure_instance,
    postgres_server,
    upload_world,
)

DEADLINE_S = 300
SESSIONS = 20
PASSWORD_ENV = "EVAL_PIPELINES_POSTGRES_PASSWORD"


@dataclass
class Machine:
    """One simulated machine: its own homes, one CLI process, its output files."""

    name: str
    args: list[str]
    kind: str
    asked: dict[str, object]
    env: dict[str, str]
    out: Path
    err: Path
    process: subprocess.Popen[bytes] | None = None


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


def machine_env(root: Path, data: str, config: Path, password: str) -> dict[str, str]:
    """A machine's environment: a DAGSTER_HOME, HOME and cache of its own, the shared data root
    (the AWS variables come from os.environ) and password."""
    home = root / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(config, home / "dagster.yaml")
    (root / "home").mkdir()
    env = {**os.environ, "EVAL_PIPELINES_DATA": data, "DAGSTER_HOME": str(home)}
    env.update({"HOME": str(root / "home"), PASSWORD_ENV: password})
    env["EVAL_PIPELINES_CACHE"] = str(root / "cache")
    env["PATH"] = f"{CLI.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def machines(tmp_path: Path, data: str, config: Path, password: str) -> list[Machine]:
    """Four benchmarks and two evaluations: the concurrency test's requests, with fewer sessions."""
    requests: list[tuple[str, dict[str, object], list[str]]] = []
    for name, candidates, _ in BENCHMARKS:
        asked: dict[str, object] = {
            "benchmark_name": name,
            "baseline_retriever_id": "demo_prod",
            "candidate_retriever_ids": candidates,
            "session_count": SESSIONS,
        }
        request = tmp_path / f"{name}.json"
        request.write_text(json.dumps({**asked, "min_coverage": 0}))
        requests.append(("benchmark", asked, ["benchmark", "create", str(request)]))
    for retriever, k in EVALUATIONS:
        cutoffs = ",".join(map(str, k))
        args = ["evaluation", "run", retriever, "--dataset", "demo-judgments", "--k", cutoffs]
        asked = {"retriever_id": retriever, "dataset_name": "demo-judgments"}
        requests.append(("evaluation", asked, args))
    made = []
    for number, (kind, asked, args) in enumerate(requests):
        root = tmp_path / f"machine{number}"
        made.append(
            Machine(
                root.name,
                [*args, "--wait", "--json"],
                kind,
                asked,
                machine_env(root, data, config, password),
                root / "stdout",
                root / "stderr",
            )
        )
    return made


def run_all(team: list[Machine]) -> None:
    """Start every machine's process at once; wait for all within the deadline; kill what is left."""
    try:
        for machine in team:
            with machine.out.open("wb") as out, machine.err.open("wb") as err:
                machine.process = subprocess.Popen(
                    [str(CLI), *machine.args],
                    env=machine.env,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
        deadline = time.monotonic() + DEADLINE_S
        for machine in team:
            assert machine.process is not None
            machine.process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for machine in team:
            if machine.process is not None and machine.process.poll() is None:
                os.killpg(machine.process.pid, signal.SIGKILL)
                machine.process.wait(timeout=30)


def listed(env: dict[str, str], kind: str) -> list[dict]:
    """`KIND list --json` as a machine that ran nothing sees it."""
    result = subprocess.run(
        [str(CLI), kind, "list", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def check_postgres(home: Path, paths: DataPaths, ids: dict[str, str]) -> None:
    """Each request is one dynamic partition and one successful run, the run its record names; no run
    of any other partition; and the runs overlapped, so the machines did work at once."""
    with DagsterInstance.from_config(str(home)) as instance:
        for kind in ("benchmark", "evaluation"):
            partitions = instance.get_dynamic_partitions(kind)
            assert Counter(partitions) == Counter(i for i, k in ids.items() if k == kind)
        runs = instance.get_run_records(RunsFilter())
        by_partition = Counter(run.dagster_run.tags.get("dagster/partition") for run in runs)
        assert by_partition == Counter(list(ids)), "one run per request, no other run"
        assert {run.dagster_run.status for run in runs} == {DagsterRunStatus.SUCCESS}
        for run in runs:
            record_id = run.dagster_run.tags["dagster/partition"]
            entry = RecordStore(paths, f"{ids[record_id]}s").entry(record_id)
            assert entry is not None and entry["run_id"] == run.dagster_run.run_id
        spans = sorted((run.start_time or 0.0, run.end_time or 0.0) for run in runs)
        assert any(later[0] < earlier[1] for earlier, later in pairwise(spans)), spans


def column(con: duckdb.DuckDBPyConnection, pattern: str, names: str) -> Counter:
    """How often each value (or tuple of values) of these columns occurs across the Parquet files."""
    rows = con.execute(f"SELECT {names} FROM read_parquet('{pattern}', union_by_name=true)")
    return Counter(rows.fetchall())


def check_stored_once(paths: DataPaths, records: dict[str, dict]) -> None:
    """Every replay row and every execution is in the Parquet files exactly once, and the executions
    are exactly those the replays and evaluation runs point to."""
    root = paths.root
    with connect_duckdb(root) as con:
        replays = column(
            con,
            f"{root}/benchmarks/*/replays.parquet",
            "benchmark_id, retriever_id, execution_id, replay_execution_id",
        )
        runs = column(
            con, f"{root}/evaluations/*/runs.parquet", "evaluation_id, query_id, execution_id"
        )
        executions = column(con, f"{root}/executions/*/*.parquet", "execution_id")
    expected = sum(
        r["session_count"] * (1 + len(r["candidate_retriever_ids"]))
        for r in records.values()
        if "benchmark_id" in r
    )
    assert sum(replays.values()) == len(replays) == expected, "each replay stored once"
    assert max(runs.values()) == 1 and {key[0] for key in runs} == {
        i for i, r in records.items() if "evaluation_id" in r
    }
    assert max(executions.values()) == 1, [e for e, n in executions.items() if n > 1][:5]
    pointed = [key[3] for key in replays] + [key[2] for key in runs if key[2] is not None]
    assert Counter((e,) for e in pointed) == executions, "no execution lost, none extra"


def test_teams_on_separate_machines_share_one_postgres_instance_and_s3_root(
    small_world: DataPaths,
    postgres: Postgres,
    s3_root: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    paths = upload_world(small_world, s3_root)
    setup_home = tmp_path / "setup_home"
    url = postgres.create_database("teams")
    env = {"DAGSTER_HOME": str(setup_home), PASSWORD_ENV: postgres.password}
    configure_instance(s3_root, env, "--storage", "postgres", "--postgres-url", url)
    config = setup_home / "dagster.yaml"
    team = machines(tmp_path, s3_root, config, postgres.password)

    run_all(team)

    records: dict[str, dict] = {}
    kinds: dict[str, str] = {}
    for machine in team:
        assert machine.process is not None
        stderr = machine.err.read_text()
        assert machine.process.returncode == 0, (machine.name, stderr[-4000:])
        record = json.loads(machine.out.read_text())
        record_id = record[f"{machine.kind}_id"]
        assert record["status"] == "completed", (machine.name, record)
        assert {key: record[key] for key in machine.asked} == machine.asked, machine.name
        check_record(machine.kind, record, record)
        assert record_id not in records, "two machines got one id"
        records[record_id], kinds[record_id] = record, machine.kind
        assert not (Path(machine.env["DAGSTER_HOME"]) / "history").exists(), "no SQLite storage"

    reader = machine_env(tmp_path / "reader", s3_root, config, postgres.password)
    for kind in ("benchmark", "evaluation"):
        shown = {r[f"{kind}_id"]: r for r in listed(reader, kind)}
        assert shown == {i: r for i, r in records.items() if kinds[i] == kind}, "none lost"

    monkeypatch.setitem(os.environ, PASSWORD_ENV, postgres.password)
    check_postgres(Path(reader["DAGSTER_HOME"]), paths, kinds)
    seen = check_warehouse(paths, records)
    benchmarks = {i for i, k in kinds.items() if k == "benchmark"}
    assert seen == {"replays": benchmarks, "evaluation_runs": set(records) - benchmarks}
    check_stored_once(paths, records)
