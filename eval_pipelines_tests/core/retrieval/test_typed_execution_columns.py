"""Stage statistics and latencies are typed Arrow columns that DuckDB reads without parsing text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eval_pipelines.core import warehouse
from eval_pipelines.core.benchmarks import replay
from eval_pipelines.core.benchmarks.submit import benchmark_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.execution_store import (
    EXECUTIONS_SCHEMA,
    find_execution,
    get_execution,
)

from .conftest import pipeline_config, write_retriever

STAGES = [
    {"stage_id": "feature_search", "parameters": {"fields": ["title", "description"]}},
    {"stage_id": "attribute_filter", "parameters": {"fields": ["price"]}},
    {"stage_id": "limit", "parameters": {"n": 5}},
]
QUERIES = [
    {"text": "running shoes"},
    {"text": "leather", "filters": {"price": {"lt": 100}, "size": 9}},
    {"text": "boots", "filters": {"price": {"bad_op": 1}}},
]
CLI = str(Path(sys.executable).with_name("eval-pipelines"))


def replayed(paths: DataPaths) -> pa.Table:
    """Three sessions replayed through a local pipeline: the real runner, writer and Parquet."""
    write_retriever(paths, pipeline_config("shop", STAGES))
    sessions = pa.table(
        {
            "execution_id": [f"logged-{i}" for i in range(len(QUERIES))],
            "query_input": [json.dumps(q) for q in QUERIES],
        }
    )
    return replay.replay_sessions(paths, "typed", sessions, ["shop"], depth=5)


def test_duckdb_reads_stage_statistics_as_a_map_of_structs(paths: DataPaths) -> None:
    rows = replayed(paths)
    table = warehouse.query(
        paths,
        "SELECT execution_id, typeof(stage_statistics) AS type,"
        " map_keys(stage_statistics) AS stages,"
        " stage_statistics['feature_search'].duration_ms AS search_ms,"
        " stage_statistics['feature_search'].input_count AS searched,"
        " stage_statistics['attribute_filter'].metadata AS filter_metadata"
        " FROM executions ORDER BY created_at",
    )
    by_id = {r["execution_id"]: r for r in table.to_pylist()}
    assert len(by_id) == len(QUERIES)
    for replayed_row in rows.to_pylist():
        row = by_id[replayed_row["replay_execution_id"]]
        assert row["type"].startswith("MAP(VARCHAR, STRUCT(input_count BIGINT")
        latencies = dict(replayed_row["stage_latencies"])
        assert row["stages"] == list(latencies)
        if "feature_search" in latencies:
            assert row["search_ms"] == latencies["feature_search"]
            assert row["searched"] == 30
    warned = by_id[rows.column("replay_execution_id")[1].as_py()]
    assert "size" in json.loads(warned["filter_metadata"])["warnings"][0]
    per_stage = warehouse.query(
        paths,
        "SELECT s.key AS stage, count(*) AS calls, avg(s.value.duration_ms) AS mean_ms"
        " FROM executions, unnest(map_entries(stage_statistics)) AS t(s)"
        " GROUP BY s.key ORDER BY s.key",
    ).to_pylist()
    reported = [dict(pairs) for pairs in rows.column("stage_latencies").to_pylist()]
    assert {r["stage"]: r["calls"] for r in per_stage} == {
        stage: sum(stage in latencies for latencies in reported)
        for stage in ("feature_search", "attribute_filter", "limit")
    }
    assert {r["stage"]: r["mean_ms"] for r in per_stage} == pytest.approx(
        {
            r["stage"]: float(np.mean([x[r["stage"]] for x in reported if r["stage"] in x]))
            for r in per_stage
        }
    )


def test_duckdb_reads_replay_stage_latencies_as_a_map(paths: DataPaths) -> None:
    """The replays table as the benchmark_replays asset stores it, read back with SQL."""
    rows = replayed(paths)
    benchmark_store(paths).write_table("typed", "replays", rows)
    table = warehouse.query(
        paths,
        "SELECT replay_execution_id, typeof(stage_latencies) AS type,"
        " stage_latencies['feature_search'] AS search_ms,"
        " map_extract(stage_latencies, 'limit') AS limit_ms"
        " FROM benchmark_replays",
    )
    by_id = {r["replay_execution_id"]: r for r in table.to_pylist()}
    for row in rows.to_pylist():
        latencies = dict(row["stage_latencies"])
        read = by_id[row["replay_execution_id"]]
        assert read["type"] == "MAP(VARCHAR, DOUBLE)"
        assert read["search_ms"] == latencies["feature_search"]
        assert read["limit_ms"] == ([latencies["limit"]] if "limit" in latencies else [])
        executed = find_execution(paths, "shop", row["replay_execution_id"])
        assert executed is not None
        assert latencies == {name: s.duration_ms for name, s in executed.stages.items()}


def test_the_cli_prints_the_record_rebuilt_from_the_typed_columns(paths: DataPaths) -> None:
    rows = replayed(paths)
    for execution_id in rows.column("replay_execution_id").to_pylist():
        executed = find_execution(paths, "shop", execution_id)
        assert executed is not None
        printed = subprocess.run(
            [CLI, "--data-dir", str(paths.root), "execution", "get", "shop", execution_id],
            capture_output=True,
            text=True,
            check=False,
        )
        assert printed.returncode == 0, printed.stderr
        assert json.loads(printed.stdout) == json.loads(json.dumps(executed.to_detail()))
    failed = get_execution(paths, "shop", rows.column("replay_execution_id")[2].as_py())
    assert failed is not None and failed["status"] == "failed"
    assert failed["stage_statistics"]["stages"]["attribute_filter"]["error"]


def test_files_written_with_json_text_columns_read_beside_typed_ones(paths: DataPaths) -> None:
    """A data directory from before the typed columns: its text files and new typed files answer
    `execution get` and the views together, the text cast to the typed column."""
    rows = replayed(paths)
    directory = paths.retriever_executions_dir("shop")
    (file,) = directory.glob("*.parquet")
    table = pq.read_table(file)
    details = {e: get_execution(paths, "shop", e) for e in table.column("execution_id").to_pylist()}
    old_rows = table.slice(0, 2)
    stages = [
        json.dumps(_stage_dicts(paths, e)) for e in old_rows.column("execution_id").to_pylist()
    ]
    index = EXECUTIONS_SCHEMA.get_field_index("stage_statistics")
    old_rows = old_rows.set_column(index, "stage_statistics", pa.array(stages, pa.string()))
    pq.write_table(old_rows, directory / "old-batch.parquet")
    pq.write_table(table.slice(2), file)
    for execution_id, detail in details.items():
        assert get_execution(paths, "shop", execution_id) == detail

    old_replays = rows.slice(0, 2)
    latencies = [json.dumps(dict(p)) for p in old_replays.column("stage_latencies").to_pylist()]
    # As earlier versions wrote them: latencies as JSON text under their old name, and the
    # retriever's id under its old name.
    old_replays = old_replays.set_column(
        replay.REPLAYS_SCHEMA.get_field_index("stage_latencies"),
        "stage_latencies_json",
        pa.array(latencies, pa.string()),
    )
    old_replays = old_replays.rename_columns(
        ["pipeline_id" if c == "retriever_id" else c for c in old_replays.column_names]
    )
    benchmark_store(paths).write_table("old", "replays", old_replays)
    benchmark_store(paths).write_table("typed", "replays", rows)
    for view, column, count in (
        ("executions", "stage_statistics", len(QUERIES)),
        ("benchmark_replays", "stage_latencies", len(QUERIES) + 2),
    ):
        read = warehouse.query(
            paths, f"SELECT typeof({column}) AS type, map_keys({column}) AS stages FROM {view}"
        ).to_pylist()
        assert len(read) == count and len({r["type"] for r in read}) == 1, view
        assert read[0]["type"].startswith("MAP(VARCHAR, "), view
    both = warehouse.query(
        paths, "SELECT replay_execution_id AS id, stage_latencies AS ms FROM benchmark_replays"
    ).to_pylist()
    read_back: dict[str, list] = {}
    for row in both:
        read_back.setdefault(row["id"], []).append(row["ms"])
    twice = [values for values in read_back.values() if len(values) == 2]
    assert len(twice) == 2 and all(old == new for old, new in twice)
    unnamed = warehouse.query(
        paths, "SELECT count(*) AS n FROM benchmark_replays WHERE retriever_id IS NULL"
    ).to_pylist()
    assert unnamed == [{"n": 0}]  # the old files' pipeline_id reads as retriever_id


def _stage_dicts(paths: DataPaths, execution_id: str) -> dict[str, dict]:
    """The stages as the JSON text column held them: {name: StageStatistics.to_dict()}."""
    execution = find_execution(paths, "shop", execution_id)
    assert execution is not None
    return {name: s.to_dict() for name, s in execution.stages.items()}
