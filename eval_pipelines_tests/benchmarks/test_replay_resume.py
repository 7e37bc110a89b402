"""Crashes and resume: a benchmark killed with SIGKILL mid-replay and run again loses nothing and
replays nothing twice; and a replay has a deadline past which calls fail as "deadline", not hang."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from eval_pipelines.core.benchmarks import replay
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.storage import read_parquet_dir
from eval_pipelines_tests.cli.conftest import CLI, run_cli
from eval_pipelines_tests.search_stub import search_stub

CHUNK = 4
SESSIONS = 40
PIPELINES = ("slow_base", "slow_cand")
REQUEST = {
    "benchmark_name": "resume test",
    "baseline_retriever_id": "slow_base",
    "candidate_retriever_ids": ["slow_cand"],
    "session_count": SESSIONS,
    "seed": 7,
}
WAIT_S = 180.0


class Engine:
    """A loopback engine answering each text after a pause, counting calls per pipeline.

    A baseline answers the ranking the logs show for the text; a candidate (its texts prefixed
    "cand ") answers it reversed. While `stalled` is set a candidate's answer waits for `release`.
    """

    def __init__(self, rankings: dict[str, list[str]], pause_s: float) -> None:
        self.rankings = rankings
        self.pause_s = pause_s
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.stalled = threading.Event()
        self.release = threading.Event()

    def answer(self, text: str) -> list[tuple[str, float]]:
        pipeline, _, query = text.partition(" ") if text.startswith("cand ") else ("", "", text)
        with self.lock:
            self.calls[pipeline or "base"] += 1
        if pipeline and self.stalled.is_set():
            self.release.wait(WAIT_S)
        time.sleep(self.pause_s)
        ranking = self.rankings.get(query, [])
        if pipeline:
            ranking = ranking[::-1]
        return [(document, float(len(ranking) - rank)) for rank, document in enumerate(ranking)]

    def total(self) -> int:
        with self.lock:
            return sum(self.calls.values())


@pytest.fixture(scope="module")
def engine(small_world: DataPaths) -> Iterator[tuple[Engine, str]]:
    logs = read_parquet_dir(small_world.log_table_dir("executions"), ["query_text", "documents"])
    assert logs is not None
    rankings: dict[str, list[str]] = {}
    for text, documents in zip(
        logs.column("query_text").to_pylist(), logs.column("documents").to_pylist(), strict=True
    ):
        rankings.setdefault(text, documents)
    scripted = Engine(rankings, pause_s=0.04)
    with search_stub(scripted.answer) as url:
        yield scripted, url
    scripted.release.set()


def write_retriever(paths: DataPaths, retriever_id: str, http: dict[str, Any]) -> None:
    config = {"id": retriever_id, "kind": "http", "http": http}
    (paths.retrievers_dir / f"{retriever_id}.yaml").write_text(yaml.safe_dump(config))


def world_with_slow_retrievers(small_world: DataPaths, root: Path, url: str) -> DataPaths:
    paths = DataPaths(root / "data")
    shutil.copytree(small_world.root, paths.root)
    common = {"url": url, "max_retries": 0, "timeout_s": 30, "concurrency": 2}
    write_retriever(paths, "slow_base", common)
    cand_body = {"inputs": {"text": "cand ${text}"}, "limit": "${limit}"}
    write_retriever(paths, "slow_cand", {**common, "request_body": cand_body})
    return paths


def chunk_files(paths: DataPaths) -> list[Path]:
    return sorted((paths.root / "benchmarks").glob("*/replay_chunks/*/*.parquet"))


def wait_for_chunks(process: subprocess.Popen[bytes], paths: DataPaths, count: int) -> None:
    """Until `count` chunk files exist; fails if the run ends first or nothing comes in WAIT_S."""
    give_up = time.monotonic() + WAIT_S
    while len(chunk_files(paths)) < count:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < give_up, "no replay chunk was written"
        time.sleep(0.01)


LATENCY_KEYS = {"latency", "latency_delta_ms", "created_at", "started_at", "completed_at"}


def comparable(value: Any) -> Any:
    """A record without ids, timestamps and latencies (the recommendation quotes a latency)."""
    if isinstance(value, dict):
        return {
            key: comparable(item)
            for key, item in value.items()
            if key not in LATENCY_KEYS and key != "benchmark_id"
        }
    if isinstance(value, list):
        return [comparable(item) for item in value]
    if isinstance(value, str):
        return re.sub(r"latency [+-]?[\d.]+ ms", "latency * ms", value)
    return value


def table(paths: DataPaths, benchmark_id: str, name: str, drop: tuple[str, ...] = ()) -> pa.Table:
    stored = pq.read_table(paths.root / "benchmarks" / benchmark_id / f"{name}.parquet")
    return stored.drop_columns([c for c in ("benchmark_id", *drop) if c in stored.column_names])


def only_benchmark_id(paths: DataPaths) -> str:
    (folder,) = (paths.root / "benchmarks").iterdir()
    return folder.name


def test_a_benchmark_killed_mid_replay_resumes_and_ends_as_an_uninterrupted_run(
    small_world: DataPaths,
    engine: tuple[Engine, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scripted, url = engine
    monkeypatch.setenv(replay.CHUNK_SIZE_ENV, str(CHUNK))
    request = tmp_path / "request.json"
    request.write_text(json.dumps(REQUEST))
    killed = world_with_slow_retrievers(small_world, tmp_path / "killed", url)

    env = {**os.environ, "EVAL_PIPELINES_DATA": str(killed.root)}
    env.pop("DAGSTER_HOME", None)
    log = (tmp_path / "killed-run.log").open("wb")
    process = subprocess.Popen(
        [str(CLI), "benchmark", "create", str(request), "--wait"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_chunks(process, killed, 3)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        log.close()
    assert process.returncode == -signal.SIGKILL
    benchmark_id = only_benchmark_id(killed)
    finished = chunk_files(killed)
    total_chunks = len(PIPELINES) * SESSIONS // CHUNK
    assert 3 <= len(finished) < total_chunks
    finished_rows = pa.concat_tables(pq.read_table(f) for f in finished)

    # Every Parquet file a reader may open is whole; a write cut short left only a hidden temp file.
    for file in killed.root.rglob("*.parquet"):
        if not file.name.startswith("."):
            pq.read_metadata(file)

    after_kill = run_cli(killed.root, "benchmark", "get", benchmark_id)
    assert after_kill.returncode == 0, after_kill.stderr
    dead = json.loads(after_kill.stdout)
    assert dead["status"] == "failed" and dead["results"] is None
    assert dead["error_message"].startswith("benchmark_replays: the process running it (pid ")
    assert "ended before it finished (killed or crashed)" in dead["error_message"]

    calls_before = scripted.total()
    resumed = run_cli(killed.root, "benchmark", "rerun", benchmark_id)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = json.loads(resumed.stdout)
    assert record["status"] == "completed" and record["error_message"] is None
    assert json.loads(run_cli(killed.root, "benchmark", "get", benchmark_id).stdout) == record

    # Chunks finished before the kill were loaded, not replayed: the re-run called the engine
    # exactly once per session it had not finished, and kept the earlier calls' executions.
    assert scripted.total() - calls_before == len(PIPELINES) * SESSIONS - finished_rows.num_rows
    replays = pq.read_table(killed.root / "benchmarks" / benchmark_id / "replays.parquet")
    kept = set(finished_rows.column("replay_execution_id").to_pylist())
    assert kept <= set(replays.column("replay_execution_id").to_pylist())
    for retriever_id in PIPELINES:
        stored = read_parquet_dir(killed.retriever_executions_dir(retriever_id))
        assert stored is not None and stored.num_rows == SESSIONS
        mine = replays.filter(pc.equal(replays.column("retriever_id"), retriever_id))
        assert set(stored.column("execution_id").to_pylist()) == set(
            mine.column("replay_execution_id").to_pylist()
        )

    again = run_cli(killed.root, "benchmark", "rerun", benchmark_id)
    assert again.returncode == 2 and "has completed" in again.stderr

    fresh = world_with_slow_retrievers(small_world, tmp_path / "fresh", url)
    uninterrupted = run_cli(fresh.root, "benchmark", "create", str(request), "--wait")
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    reference = json.loads(uninterrupted.stdout)
    assert reference["status"] == "completed"
    assert comparable(record) == comparable(reference)
    assert (
        record["results"][0]["metrics"]["ndcg_at_k"] != record["results"][1]["metrics"]["ndcg_at_k"]
    )

    reference_id = reference["benchmark_id"]
    for name, drop in (
        ("sessions", ()),
        ("session_interactions", ()),
        ("replays", ("replay_execution_id", "latency_ms", "stage_latencies")),
    ):
        assert table(killed, benchmark_id, name, drop).equals(
            table(fresh, reference_id, name, drop)
        ), name
    scores = table(killed, benchmark_id, "session_scores")
    latency_columns = tuple(c for c in scores.column_names if "latenc" in c)
    assert table(killed, benchmark_id, "session_scores", latency_columns).equals(
        table(fresh, reference_id, "session_scores", latency_columns)
    )


def fake_sessions(count: int) -> pa.Table:
    return pa.table(
        {
            "execution_id": [f"logged-{i}" for i in range(count)],
            "query_input": [json.dumps({"text": f"query {i}"}) for i in range(count)],
        }
    )


@pytest.fixture
def stalling_engine() -> Iterator[tuple[Engine, str]]:
    scripted = Engine({f"query {i}": [f"doc-{i}", f"doc-{i + 1}"] for i in range(40)}, 0.0)
    with search_stub(scripted.answer) as url:
        yield scripted, url
    scripted.release.set()


def test_past_the_deadline_calls_fail_as_deadline_and_a_rerun_replays_only_them(
    stalling_engine: tuple[Engine, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted, url = stalling_engine
    paths = DataPaths(tmp_path / "data")
    paths.retrievers_dir.mkdir(parents=True)
    http = {"url": url, "timeout_s": 0.2, "max_retries": 1, "backoff_max_s": 0.05}
    write_retriever(paths, "quick", {**http, "concurrency": 4})
    cand_body = {"inputs": {"text": "cand ${text}"}, "limit": "${limit}"}
    write_retriever(paths, "stuck", {**http, "concurrency": 2, "request_body": cand_body})
    monkeypatch.setattr(replay, "CHUNK_SIZE", 4)
    sessions = fake_sessions(20)
    resume_dir = tmp_path / "chunks"
    messages: list[str] = []

    scripted.stalled.set()
    rows = replay.replay_sessions(
        paths,
        "bench_deadline",
        sessions,
        ["quick", "stuck"],
        depth=5,
        progress=messages.append,
        resume_dir=resume_dir,
        deadline_s=1.5,
    )
    records = rows.to_pylist()
    assert len(records) == 40
    assert all(r["status"] == "completed" for r in records[:20])
    stuck = records[20:]
    kinds = [r["error_type"] for r in stuck]
    assert set(kinds) <= {"timeout", "deadline"} and kinds[-1] == "deadline"
    first_late = kinds.index("deadline")
    assert "deadline" not in kinds[:first_late] and set(kinds[first_late:]) == {"deadline"}
    late = stuck[first_late:]
    assert all(r["status"] == "failed" and r["ranking"] == [] for r in late)
    assert all("replay deadline of 1.5 s had passed" in r["error"] for r in late)
    assert any("past the 1.5 s deadline" in m for m in messages)
    # A call past the deadline was never made: the engine saw only the earlier ones (2 attempts each).
    assert scripted.calls["cand"] == 2 * first_late

    kept = sorted(p.name[:4] for p in (resume_dir / "stuck").glob("*.parquet"))
    assert kept == [f"{c:04d}" for c in range(first_late // 4)]
    assert len(list((resume_dir / "quick").glob("*.parquet"))) == 5

    scripted.stalled.clear()
    calls = scripted.total()
    rerun = replay.replay_sessions(
        paths, "bench_deadline", sessions, ["quick", "stuck"], depth=5, resume_dir=resume_dir
    )
    replayed = scripted.total() - calls
    assert replayed == 20 - 4 * (first_late // 4)
    again = rerun.to_pylist()
    assert again[:20] == records[:20]
    assert all(r["error_type"] != "deadline" for r in again)
    assert again[20 : 20 + 4 * (first_late // 4)] == stuck[: 4 * (first_late // 4)]
    assert all(r["status"] == "completed" for r in again[20 + 4 * (first_late // 4) :])


def test_finished_chunks_are_reused_only_for_the_same_sessions_depth_and_retriever(
    stalling_engine: tuple[Engine, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted, url = stalling_engine
    paths = DataPaths(tmp_path / "data")
    paths.retrievers_dir.mkdir(parents=True)
    write_retriever(paths, "quick", {"url": url, "max_retries": 0})
    monkeypatch.setenv(replay.CHUNK_SIZE_ENV, "3")
    resume_dir = paths.benchmark_replay_chunks_dir("bench_keys")
    sessions = fake_sessions(7)

    def run(table: pa.Table, depth: int) -> tuple[int, pa.Table]:
        before = scripted.total()
        rows = replay.replay_sessions(
            paths, "bench_keys", table, ["quick"], depth, resume_dir=resume_dir
        )
        return scripted.total() - before, rows

    calls, first = run(sessions, 2)
    assert calls == 7 and len(list((resume_dir / "quick").glob("*.parquet"))) == 3
    calls, same = run(sessions, 2)
    assert calls == 0 and same.equals(first)
    calls, deeper = run(sessions, 1)
    assert calls == 7 and deeper.column("ranking").to_pylist()[0] == ["doc-0"]
    assert len(list((resume_dir / "quick").glob("*.parquet"))) == 3
    reordered = sessions.take([1, 0, 2, 3, 4, 5, 6])
    calls, _ = run(reordered, 1)
    assert calls == 3

    monkeypatch.setenv(replay.CHUNK_SIZE_ENV, "0")
    with pytest.raises(ValueError, match=replay.CHUNK_SIZE_ENV):
        run(sessions, 1)
