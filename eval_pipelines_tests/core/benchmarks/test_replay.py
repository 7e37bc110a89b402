"""replay_sessions against the shared loopback search engine: rows, stored executions, chunks, GC."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from eval_pipelines.core.benchmarks import replay
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.execution_store import find_execution
from eval_pipelines_tests.search_stub import search_stub

TEXTS = ["red shoes", "rain jacket", "boom", "wool hat", "leather belt"]


def answer(text: str) -> list[tuple[str, float]] | None:
    """A failure for "boom", else a ranking that spells the text."""
    if text == "boom":
        return None
    return [(f"{text.replace(' ', '-')}-{rank}", 10.0 - rank) for rank in range(3)]


def write_http_retriever(paths: DataPaths, retriever_id: str, url: str) -> None:
    config = {"id": retriever_id, "kind": "http", "http": {"url": url, "max_retries": 0}}
    paths.retrievers_dir.mkdir(parents=True, exist_ok=True)
    (paths.retrievers_dir / f"{retriever_id}.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture
def sessions() -> pa.Table:
    return pa.table(
        {
            "execution_id": [f"logged-{i}" for i in range(len(TEXTS))],
            "query_input": [json.dumps({"text": text}) for text in TEXTS],
        }
    )


@pytest.mark.parametrize("gc_enabled_before", [True, False])
def test_replay_rows_match_the_engine_and_the_stored_executions(
    tmp_path: Path,
    sessions: pa.Table,
    monkeypatch: pytest.MonkeyPatch,
    gc_enabled_before: bool,
) -> None:
    paths = DataPaths(tmp_path / "data")
    monkeypatch.setattr(replay, "CHUNK_SIZE", 2)
    messages: list[str] = []
    if not gc_enabled_before:
        gc.disable()
    try:
        with search_stub(answer) as url:
            for retriever_id in ("base", "cand"):
                write_http_retriever(paths, retriever_id, url)
            rows = replay.replay_sessions(
                paths, "bench1", sessions, ["base", "cand"], depth=2, progress=messages.append
            )
        assert gc.isenabled() is gc_enabled_before
    finally:
        gc.enable()

    assert rows.schema == replay.REPLAYS_SCHEMA
    records = rows.to_pylist()
    assert [(r["retriever_id"], r["execution_id"]) for r in records] == [
        (pipeline, f"logged-{i}") for pipeline in ("base", "cand") for i in range(len(TEXTS))
    ]
    for record, text in zip(records, TEXTS * 2, strict=True):
        assert record["benchmark_id"] == "bench1"
        expected = answer(text)
        if expected is None:
            assert (record["status"], record["error_type"]) == ("failed", "http_5xx")
            assert record["ranking"] == []
        else:
            assert record["status"] == "completed" and record["error"] is None
            assert record["ranking"] == [document for document, _ in expected[:2]]
            assert [stage for stage, _ in record["stage_latencies"]] == ["http"]
        stored = find_execution(paths, record["retriever_id"], record["replay_execution_id"])
        assert stored is not None
        assert (stored.status, stored.document_ids) == (record["status"], record["ranking"])
        assert stored.total_time_ms == record["latency_ms"]
    for retriever_id in ("base", "cand"):
        files = sorted(p.name for p in paths.retriever_executions_dir(retriever_id).iterdir())
        assert files == [f"benchmark-bench1-{chunk:04d}.parquet" for chunk in range(3)]
    assert messages[0] == "replay bench1: 0/10 replays (0%)"
    assert messages[2].startswith("replay bench1: 4/10 replays (40%), 1 failed, now base (1/2), ")
    assert messages[3].startswith("replay bench1: 5/10 replays (50%), 1 failed, now base (1/2), ")
    assert messages[-1].startswith("replay bench1: 10/10 replays (100%), 2 failed, now cand (2/2)")
    assert len(messages) == 8


def test_replay_of_no_sessions_is_an_empty_table(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "data")
    write_http_retriever(paths, "base", "http://127.0.0.1:9/search")
    empty = pa.table(
        {"execution_id": pa.array([], pa.string()), "query_input": pa.array([], pa.string())}
    )
    rows = replay.replay_sessions(paths, "bench2", empty, ["base"], depth=10)
    assert rows.num_rows == 0 and rows.schema == replay.REPLAYS_SCHEMA
    assert gc.isenabled()
