"""A malformed ranking is a failed call with error_type malformed_ranking (issue 10, point 17).

A ranking is malformed when a score is not a finite number (NaN, Infinity, or a number too large
for a float) or a document is listed twice. Such a call fails instead of being stored, for HTTP
and pipeline retrievers alike, so `execution get` always prints JSON and every evaluation export
is a run file the project's own `trec-eval` accepts.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.collections import (
    Collection,
    CollectionError,
    collection_file,
    load_collection,
    write_collection,
)
from eval_pipelines.core.retrieval.execution import Execution, ScoredDocument
from eval_pipelines.core.retrieval.execution_store import write_executions
from eval_pipelines.core.retrieval.http_client import HttpRetriever
from eval_pipelines.core.retrieval.pipeline import PipelineRetriever
from eval_pipelines.core.retrieval.registry import load_retriever_config
from eval_pipelines_tests.cli.conftest import run_cli
from eval_pipelines_tests.core.retrieval.conftest import write_retriever
from eval_pipelines_tests.loopback import LoopbackServer, QuietHandler, serving

# The answer's documents, as raw JSON text (Python's json module reads NaN and Infinity).
ANSWERS = {
    "ok": '[{"document_id": "prod_000001", "score": 2.0}, {"document_id": "prod_000002", "score": 1}]',
    "nan": '[{"document_id": "prod_000001", "score": 2.0}, {"document_id": "prod_000002", "score": NaN}]',
    "infinity": '[{"document_id": "prod_000001", "score": Infinity}]',
    "minus_infinity": '[{"document_id": "prod_000001", "score": 1}, {"document_id": "prod_000003", "score": -Infinity}]',
    "overflow": '[{"document_id": "prod_000001", "score": 1e999}]',
    "duplicate": '[{"document_id": "prod_000001", "score": 3}, {"document_id": "prod_000002", "score": 2}, {"document_id": "prod_000001", "score": 1}]',
}
MODES = tuple(ANSWERS)
PROBLEMS = {
    "nan": "documents[1].score: nan is not a finite number",
    "infinity": "documents[0].score: inf is not a finite number",
    "minus_infinity": "documents[1].score: -inf is not a finite number",
    "overflow": "documents[0].score: inf is not a finite number",
    "duplicate": "documents[2].document_id: 'prod_000001' is listed twice (first at documents[0])",
}


def mode_of(text: str) -> str:
    return MODES[int(hashlib.sha256(text.encode()).hexdigest(), 16) % len(MODES)]


class _Engine(LoopbackServer):
    def __init__(self) -> None:
        super().__init__(_Handler)
        self.modes: Counter[str] = Counter()
        self.lock = threading.Lock()


class _Handler(QuietHandler):
    protocol_version = "HTTP/1.1"
    server: _Engine

    def do_POST(self) -> None:
        text = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["inputs"]["text"]
        mode = mode_of(text)
        with self.server.lock:
            self.server.modes[mode] += 1
        self.reply(200, f'{{"documents": {ANSWERS[mode]}}}')


def http_config(port: int) -> dict[str, Any]:
    return {"id": "odd", "kind": "http", "http": {"url": f"http://127.0.0.1:{port}/search"}}


def strict_json(text: str) -> Any:
    """json.loads that refuses NaN and Infinity, as every JSON parser but Python's does."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def texts_for_every_mode() -> dict[str, str]:
    found: dict[str, str] = {}
    index = 0
    while len(found) < len(MODES):
        found.setdefault(mode_of(f"query {index}"), f"query {index}")
        index += 1
    return found


def test_an_http_ranking_with_a_non_finite_score_or_a_repeated_document_fails(
    paths: DataPaths,
) -> None:
    with serving(_Engine()) as server:
        config = load_retriever_config(
            write_retriever(paths, http_config(server.server_address[1])), paths
        )
        with HttpRetriever(config) as client:
            executions = {m: client.search({"text": t}) for m, t in texts_for_every_mode().items()}
    assert executions["ok"].status == "completed"
    assert executions["ok"].document_ids == ["prod_000001", "prod_000002"]
    for mode, problem in PROBLEMS.items():
        execution = executions[mode]
        assert (execution.status, execution.error_type) == ("failed", "malformed_ranking"), mode
        assert execution.documents == []
        assert problem in execution.error, (mode, execution.error)
        assert execution.error.startswith(f"POST {config.http.url}: malformed ranking: ")
        assert execution.attempts == 1, "a malformed ranking is a final answer: not retried"
        strict_json(json.dumps(execution.to_detail()))


def test_a_pipeline_ranking_obeys_the_same_rule(tmp_path: Path) -> None:
    """An infinite rating makes the min-max rerank produce NaN: the call fails the same way.

    Collections refuse infinite values when written or loaded, so the collection is built in
    memory here, as a stage bug or a future source could still produce one."""
    paths = DataPaths(tmp_path / "data")
    documents = pa.Table.from_pylist(
        [
            {"document_id": "a", "title": "red shoe", "rating": float("inf")},
            {"document_id": "b", "title": "red hat", "rating": 1.0},
        ]
    )
    with pytest.raises(CollectionError, match=r"rating: infinite value at row 0"):
        write_collection(paths, "odd", documents)
    stored = collection_file(paths, "odd")
    stored.parent.mkdir(parents=True)
    pq.write_table(documents, stored)
    with pytest.raises(CollectionError, match=r"rating: infinite value at row 0"):
        load_collection(paths, "odd")
    stages = [
        {"stage_id": "feature_search", "parameters": {"fields": ["title"]}},
        {"stage_id": "rerank", "parameters": {"weights": {"rating": 1.0}}},
    ]
    file = write_retriever(
        paths, {"id": "odd_pipeline", "kind": "pipeline", "collection": "odd", "stages": stages}
    )
    collection = Collection("odd", stored, documents)
    retriever = PipelineRetriever(load_retriever_config(file, paths), collection)
    with pytest.warns(RuntimeWarning):
        execution = retriever.search({"text": "red"})
    assert (execution.status, execution.error_type) == ("failed", "malformed_ranking")
    assert "score: nan is not a finite number" in execution.error
    strict_json(json.dumps(execution.to_detail()))


def test_cli_evaluation_export_and_execution_get_stay_valid(
    world_copy: DataPaths, tmp_path: Path
) -> None:
    """Through the real CLI: the evaluation skips the malformed calls as failed executions,
    `execution get` prints strict JSON for each, and `trec-eval` accepts the export."""
    with serving(_Engine()) as server:
        write_retriever(world_copy, http_config(server.server_address[1]))
        run = run_cli(
            world_copy.root, "evaluation", "run", "odd", "--dataset", "demo-judgments", "--wait"
        )
        assert run.returncode == 0, run.stderr[-3000:]
        modes = dict(server.modes)
    record = json.loads(run.stdout)
    assert record["status"] == "completed"
    malformed = sum(count for mode, count in modes.items() if mode != "ok")
    assert set(modes) == set(MODES), modes
    assert record["skipped_reasons"]["failed_execution"] == malformed

    stored = pq.read_table(world_copy.retriever_executions_dir("odd")).to_pylist()
    assert len(stored) == sum(modes.values())
    one_per_mode = {mode_of(json.loads(r["query_input"])["text"]): r for r in stored}
    for mode, row in sorted(one_per_mode.items()):
        shown = run_cli(world_copy.root, "execution", "get", "odd", row["execution_id"])
        assert shown.returncode == 0, shown.stderr
        detail = strict_json(shown.stdout)
        if mode == "ok":
            assert detail["status"] == "completed"
        else:
            assert (detail["error_type"], detail["documents"]) == ("malformed_ranking", []), mode
            assert PROBLEMS[mode] in detail["error"]

    run_file = tmp_path / "odd.run"
    exported = run_cli(
        world_copy.root, "evaluation", "export", record["evaluation_id"], "--output", str(run_file)
    )
    assert exported.returncode == 0, exported.stderr
    qrels = world_copy.demo_dir / "datasets" / "demo-judgments.qrels"
    scored = run_cli(world_copy.root, "trec-eval", str(qrels), str(run_file), "-m", "map")
    assert scored.returncode == 0, scored.stderr
    assert record["evaluated_queries"] == modes["ok"]
    assert len(run_file.read_text().splitlines()) == 2 * modes["ok"]


def test_execution_get_never_prints_nan_even_for_an_old_record(tmp_path: Path) -> None:
    """A record stored before the rule (written here directly) is refused, not printed as NaN."""
    paths = DataPaths(tmp_path / "data")
    now = datetime.now(UTC)
    old = Execution(
        execution_id="exec_old",
        retriever_id="legacy",
        query_input={"text": "red"},
        status="completed",
        documents=[ScoredDocument("a", 1.0), ScoredDocument("b", float("nan"))],
        stages={},
        total_time_ms=1.0,
        created_at=now,
        completed_at=now,
        error=None,
        error_type=None,
        pipeline_hash="h",
    )
    write_executions(paths, [old], "batch")
    shown = run_cli(paths.root, "execution", "get", "legacy", "exec_old")
    assert shown.returncode == 1
    assert shown.stdout == ""
    assert "documents[1].score: nan" in shown.stderr and "exec_old" in shown.stderr
