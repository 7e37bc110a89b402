"""The demo world's steps on a small scale: outputs, determinism, re-runs."""

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from eval_pipelines.core.demo import (
    DEFAULT_SEED,
    DemoScale,
    build_catalog,
    build_demo_world,
    dataset_files,
    demo_world_exists,
    raw_log_files,
    simulate_logs,
)
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.storage import parquet_files, read_parquet_dir
from eval_pipelines_tests.conftest import copy_world

SMALL = DemoScale.small()


def world_files(root: Path) -> dict[str, bytes]:
    """Every file of the world except the bm25 index cache and import metadata, by relative path."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and "bm25" not in p.relative_to(root).parts
        and p.name != "dataset.json"  # the imported dataset's metadata records when it was imported
    }


@pytest.fixture(scope="module")
def pristine_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataPaths, dict]:
    """A world built here, with its build summary, that only this module reads (others copy it):
    byte-identity needs a world no other test has added to (the session's small_world gains the
    caches of the tests that search it)."""
    paths = DataPaths(tmp_path_factory.mktemp("small") / "data")
    return paths, build_demo_world(paths, scale=SMALL)


def test_the_same_seed_gives_byte_identical_files(
    pristine_world: tuple[DataPaths, dict], tmp_path: Path
) -> None:
    paths, _ = pristine_world
    again = DataPaths(tmp_path / "again")
    build_demo_world(again, scale=SMALL)
    first, second = world_files(paths.root), world_files(again.root)
    assert sorted(first) == sorted(second)
    assert {
        "collections/products/documents.parquet",
        "demo/intents.parquet",
        "demo/grades.parquet",
        "demo/raw/executions.jsonl",
        "demo/raw/interactions.jsonl",
        "demo/datasets/demo-judgments.jsonl",
        "demo/datasets/demo-judgments.qrels",
        "demo/datasets/demo-judgments.topics.tsv",
        "retrievers/demo_prod.yaml",
    } <= set(first)
    # The logs are stored one part per day of each table, and the same seed names them the same.
    logs = [f for f in first if f.startswith("logs/")]
    day_part = re.compile(
        r"logs/(executions|interactions)/part-\d{4}-\d\d-\d\d-[0-9a-f]{16}\.parquet"
    )
    assert all(day_part.fullmatch(f) for f in logs), logs
    assert {f.split("/")[1] for f in logs} == {"executions", "interactions"}
    assert [f for f in first if first[f] != second[f]] == []


def test_another_seed_gives_another_world(
    pristine_world: tuple[DataPaths, dict], tmp_path: Path
) -> None:
    paths, _ = pristine_world
    other = DataPaths(tmp_path / "other")
    summary = build_demo_world(other, seed=DEFAULT_SEED + 1, scale=SMALL)
    assert summary["seed"] == DEFAULT_SEED + 1
    first, second = world_files(paths.root), world_files(other.root)
    for name in (
        "collections/products/documents.parquet",
        "demo/intents.parquet",
        "demo/grades.parquet",
        "demo/raw/executions.jsonl",
        "demo/datasets/demo-judgments.qrels",
    ):
        assert first[name] != second[name], name
    assert first["retrievers/demo_better.yaml"] == second["retrievers/demo_better.yaml"]


def test_summaries_are_json_and_record_the_seed(pristine_world: tuple[DataPaths, dict]) -> None:
    paths, summary = pristine_world
    assert json.loads(json.dumps(summary)) == summary
    assert list(summary["steps"]) == ["catalog", "retrievers", "intents", "logs", "judgments"]
    for step in ("catalog", "intents", "logs", "judgments"):
        assert summary["steps"][step]["seed"] == DEFAULT_SEED
    logs = summary["steps"]["logs"]
    assert logs["executions"] == SMALL.executions
    assert logs["ingest"]["executions"]["ingested"] == SMALL.executions
    assert logs["ingest"]["interactions"]["ingested"] == logs["interactions"]
    assert sum(logs["interactions_by_type"].values()) == logs["interactions"]
    assert pq.read_schema(paths.demo_dir / "grades.parquet").metadata[b"demo_seed"] == b"20261101"


def test_raw_logs_are_what_a_user_would_bring_and_were_ingested(
    pristine_world: tuple[DataPaths, dict],
) -> None:
    paths, _ = pristine_world
    raw = raw_log_files(paths)
    executions = [json.loads(line) for line in raw["executions"].read_text().splitlines()]
    interactions = [json.loads(line) for line in raw["interactions"].read_text().splitlines()]
    first = executions[0]
    assert first["execution_id"] == "exec_demo_000001"
    # The logs open in the earlier ranker's period; its executions say so in their metadata.
    assert first["retriever_id"] == "demo_prod_previous"
    assert first["metadata"] == {"ranker_version": "previous"}
    assert set(first) == {
        "execution_id",
        "retriever_id",
        "session_id",
        "user_id",
        "query_input",
        "documents",
        "taxonomy_node_ids",
        "created_at",
        "metadata",
    }
    assert first["created_at"].startswith("2026-") and first["created_at"].endswith("Z")
    assert max(e["created_at"] for e in executions) < "2026-11-01T00:00:00"
    assert all(0 < len(e["documents"]) <= 24 for e in executions)
    served = {e["execution_id"]: e["documents"] for e in executions}
    assert all(served[i["execution_id"]][i["position"]] == i["document_id"] for i in interactions)
    assert {i["interaction_type"] for i in interactions} == {
        "click",
        "add_to_cart",
        "purchase",
        "impression",
    }

    stored_executions = read_parquet_dir(paths.log_table_dir("executions"))
    stored_interactions = read_parquet_dir(paths.log_table_dir("interactions"))
    assert stored_executions.num_rows == len(executions)
    assert stored_interactions.num_rows == len(interactions)
    assert read_parquet_dir(paths.log_table_dir("quarantine")) is None
    assert sorted(stored_executions.column("execution_id").to_pylist()) == sorted(served)


def test_judgments_dataset_shapes_agree(pristine_world: tuple[DataPaths, dict]) -> None:
    paths, _ = pristine_world
    files = dataset_files(paths)
    records = [json.loads(line) for line in files["jsonl"].read_text().splitlines()]
    assert len(records) == SMALL.judged_queries
    assert len({r["query_input"]["text"] for r in records}) == len(records)
    for record in records:
        assert set(record) == {"query_id", "query_input", "relevant_documents", "relevance_scores"}
        scores = record["relevance_scores"]
        assert record["relevant_documents"] == list(scores)
        assert all(1 <= scores[d] <= 3 for d in scores)
        assert [scores[d] for d in scores] == sorted(scores.values(), reverse=True)
    qrels = [line.split() for line in files["qrels"].read_text().splitlines()]
    assert len(qrels) == sum(len(r["relevance_scores"]) for r in records)
    by_query = {r["query_id"]: r["relevance_scores"] for r in records}
    assert all(by_query[q][d] == int(g) and zero == "0" for q, zero, d, g in qrels)
    topics = [line.split("\t") for line in files["topics"].read_text().splitlines()]
    assert topics == [[r["query_id"], r["query_input"]["text"]] for r in records]


def test_world_exists_only_when_every_step_left_its_outputs(
    pristine_world: tuple[DataPaths, dict], tmp_path: Path
) -> None:
    paths, _ = pristine_world
    assert demo_world_exists(paths)
    empty = DataPaths(tmp_path / "empty")
    assert not demo_world_exists(empty)
    build_catalog(empty, scale=SMALL)
    assert not demo_world_exists(empty)
    partial = copy_world(paths, tmp_path / "partial")
    dataset_files(partial)["qrels"].unlink()
    assert not demo_world_exists(partial)


def test_simulating_again_replaces_the_demo_logs_without_duplicates(
    pristine_world: tuple[DataPaths, dict], tmp_path: Path
) -> None:
    paths = copy_world(pristine_world[0], tmp_path)
    simulate_logs(paths, seed=DEFAULT_SEED + 5, scale=SMALL)
    again = simulate_logs(paths, seed=DEFAULT_SEED + 5, scale=SMALL)
    for table, day in (("executions", "created_at"), ("interactions", "timestamp")):
        # One part per day, each day once: the earlier simulation's parts were replaced.
        stored = read_parquet_dir(paths.log_table_dir(table))
        days = {moment.date() for moment in stored[day].to_pylist()}
        assert len(parquet_files(paths.log_table_dir(table))) == len(days)
        assert stored.num_rows == again[table]
    assert demo_world_exists(paths)


def test_steps_need_their_inputs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"intents\.parquet.*missing"):
        simulate_logs(DataPaths(tmp_path / "nothing"), scale=SMALL)


def test_scale_rejects_non_positive_sizes() -> None:
    with pytest.raises(ValueError, match=r"DemoScale\.executions"):
        DemoScale(executions=0)
