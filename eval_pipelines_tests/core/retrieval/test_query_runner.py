"""The one query runner behind replay and evaluation: chunks, resume, deadline, stored executions."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from eval_pipelines.core.benchmarks import replay
from eval_pipelines.core.evaluations import pipeline
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval import query_runner
from eval_pipelines.core.retrieval.execution_store import EXECUTIONS_SCHEMA, find_execution
from eval_pipelines.core.retrieval.query_runner import (
    ChunkDone,
    ChunkWriter,
    Deadline,
    QueryRun,
    execute_queries,
)
from eval_pipelines.core.retrieval.registry import open_retriever
from eval_pipelines_tests.search_stub import search_stub

TEXTS = ["red shoes", "rain jacket", "boom", "wool hat", "leather belt"]


class CountingEngine:
    """Answers every text but "boom" with a ranking spelled from it, and counts the calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def answer(self, text: str) -> list[tuple[str, float]] | None:
        self.calls.append(text)
        if text == "boom":
            return None
        return [(f"{text.replace(' ', '-')}-{rank}", 10.0 - rank) for rank in range(3)]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[CountingEngine, DataPaths]]:
    paths = DataPaths(tmp_path / "data")
    counting = CountingEngine()
    with search_stub(counting.answer) as url:
        config = {"id": "remote", "kind": "http", "http": {"url": url, "max_retries": 0}}
        paths.retrievers_dir.mkdir(parents=True)
        (paths.retrievers_dir / "remote.yaml").write_text(yaml.safe_dump(config))
        yield counting, paths


def evaluation_run(resume_dir: Path | None, deadline: Deadline | None = None) -> QueryRun:
    return QueryRun(
        owner_id="eval1",
        batch_prefix="evaluation-eval1",
        query_ids=[f"q{i}" for i in range(len(TEXTS))],
        query_inputs=[{"text": text} for text in TEXTS],
        chunk_size=2,
        deadline=deadline,
        resume_dir=resume_dir,
    )


def run(paths: DataPaths, query_run: QueryRun) -> tuple[pa.Table, list[ChunkDone]]:
    chunks: list[ChunkDone] = []
    with open_retriever(paths, "remote") as retriever, ChunkWriter(paths) as writer:
        rows = execute_queries(retriever, query_run, writer, chunks.append)
    return rows, chunks


def test_a_run_is_chunked_stored_and_resumed_from_its_finished_chunks(
    engine: tuple[CountingEngine, DataPaths], tmp_path: Path
) -> None:
    counting, paths = engine
    resume_dir = tmp_path / "chunks"
    rows, chunks = run(paths, evaluation_run(resume_dir))

    assert rows.schema == query_runner.QUERY_ROWS_SCHEMA
    assert rows.column("query_id").to_pylist() == ["q0", "q1", "q2", "q3", "q4"]
    assert rows.column("status").to_pylist() == ["completed"] * 2 + ["failed"] + ["completed"] * 2
    assert rows.column("ranking").to_pylist()[0] == ["red-shoes-0", "red-shoes-1", "red-shoes-2"]
    assert rows.column("scores").to_pylist()[0] == [10.0, 9.0, 8.0]
    assert [(c.done, c.failed, c.resumed) for c in chunks] == [
        (2, 0, False),
        (4, 1, False),
        (5, 0, False),
    ]
    stored = sorted(p.name for p in paths.retriever_executions_dir("remote").glob("*.parquet"))
    assert stored == [f"evaluation-eval1-{chunk:04d}.parquet" for chunk in range(3)]
    for file in paths.retriever_executions_dir("remote").glob("*.parquet"):
        assert pq.read_schema(file) == EXECUTIONS_SCHEMA
    for row in rows.to_pylist():
        execution = find_execution(paths, "remote", row["execution_id"])
        assert execution is not None and execution.status == row["status"]
    assert len(list((resume_dir / "remote").glob("*.parquet"))) == 3

    calls = len(counting.calls)
    again, chunks = run(paths, evaluation_run(resume_dir))
    assert len(counting.calls) == calls
    assert again.equals(rows)
    assert all(c.resumed for c in chunks)


def test_past_the_deadline_no_call_starts_and_no_chunk_is_kept(
    engine: tuple[CountingEngine, DataPaths], tmp_path: Path
) -> None:
    counting, paths = engine
    resume_dir = tmp_path / "chunks"
    passed = Deadline(seconds=0.0, at=time.monotonic() - 1.0, what="evaluation")
    rows, chunks = run(paths, evaluation_run(resume_dir, passed))

    assert counting.calls == []
    assert set(rows.column("error_type").to_pylist()) == {query_runner.ERROR_DEADLINE}
    assert all(
        error == "remote: not called, the evaluation deadline of 0 s had passed"
        for error in rows.column("error").to_pylist()
    )
    assert [c.late for c in chunks] == [2, 2, 1]
    assert list((resume_dir / "remote").glob("*.parquet")) == []
    assert len(list(paths.retriever_executions_dir("remote").glob("*.parquet"))) == 3


def test_evaluation_and_replay_run_through_the_same_runner(
    engine: tuple[CountingEngine, DataPaths], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both kinds keep their own table, projected from the runner's rows of the same calls."""
    _, paths = engine
    planned = pa.table(
        {
            "query_id": [f"q{i}" for i in range(len(TEXTS))],
            "query_input": [json.dumps({"text": text}) for text in TEXTS],
            "skip_reason": pa.array([None, None, None, "empty_query_input", None], pa.string()),
        }
    )
    messages: list[str] = []
    monkeypatch.setattr(pipeline, "CHUNK_SIZE", 2)
    runs = pipeline.run_queries(paths, "eval1", "remote", planned, messages.append)
    assert runs.schema == pipeline.RUNS_SCHEMA
    assert runs.column("query_id").to_pylist() == ["q0", "q1", "q2", "q4"]
    assert [m.split(", ")[0] for m in messages] == [
        "evaluate remote (eval1): 0/4 queries (0%)",
        "evaluate remote (eval1): 2/4 queries (50%)",
        "evaluate remote (eval1): 4/4 queries (100%)",
        "evaluate remote (eval1): 4/4 queries (100%)",
    ]
    assert "done in" in messages[-1]

    sessions = pa.table(
        {
            "execution_id": [f"logged-{i}" for i in range(len(TEXTS))],
            "query_input": [json.dumps({"text": text}) for text in TEXTS],
        }
    )
    replays = replay.replay_sessions(paths, "bench1", sessions, ["remote"], depth=3)
    assert replays.schema == replay.REPLAYS_SCHEMA
    evaluated = {
        r["query_id"]: (r["status"], r["ranking"], r["error_type"]) for r in runs.to_pylist()
    }
    replayed = {
        f"q{i}": (r["status"], r["ranking"], r["error_type"])
        for i, r in enumerate(replays.to_pylist())
    }
    assert evaluated == {q: replayed[q] for q in evaluated}
    batches = sorted(p.stem for p in paths.retriever_executions_dir("remote").glob("*.parquet"))
    assert batches == ["benchmark-bench1-0000", "evaluation-eval1-0000", "evaluation-eval1-0001"]
