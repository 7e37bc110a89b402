"""A truncated Parquet file somewhere in the data directory, through the real CLI: work that does not
read it succeeds (exit 0) and stderr names it; the warehouse keeps every other view and row."""

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.cli.conftest import run_cli

EXECUTION = {
    "execution_id": "exec_1",
    "retriever_id": "prod",
    "session_id": "s1",
    "query_input": {"text": "red sofa"},
    "documents": ["d1", "d2"],
    "created_at": "2026-10-01T12:00:00Z",
}


def truncated(path: Path) -> Path:
    """A real Parquet file cut short, as a crash or a full disk leaves it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"execution_id": [f"e{n}" for n in range(200)]}), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_ingest_with_a_truncated_file_elsewhere_stores_its_rows_exits_0_and_names_it(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    bad_execution = truncated(data_dir / "executions" / "ghost" / "batch.parquet")
    bad_replays = truncated(data_dir / "benchmarks" / "bench_old" / "replays.parquet")
    source = tmp_path / "executions.jsonl"
    source.write_text(json.dumps(EXECUTION) + "\n", encoding="utf-8")

    ingested = run_cli(data_dir, "ingest", "executions", str(source), "--json")
    assert ingested.returncode == 0, ingested.stderr
    assert json.loads(ingested.stdout)["ingested"] == 1
    for bad, view in ((bad_execution, "executions"), (bad_replays, "benchmark_replays")):
        line = next(line for line in ingested.stderr.splitlines() if str(bad) in line)
        assert line.startswith("warning: ")
        assert "not a readable Parquet file" in line and f"left out of view {view}" in line

    collection = tmp_path / "products.jsonl"
    collection.write_text(json.dumps({"document_id": "d1", "title": "sofa"}) + "\n")
    loaded = run_cli(data_dir, "ingest", "collection", str(collection), "--name", "products")
    assert loaded.returncode == 0, loaded.stderr
    assert str(bad_execution) in loaded.stderr

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        views = {
            row[0]
            for row in con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        }
        assert views == {"logged_executions", "collection_products"}
        assert con.execute("SELECT execution_id FROM logged_executions").fetchall() == [("exec_1",)]


def test_benchmark_and_evaluation_runs_are_not_failed_by_a_bad_file_they_do_not_read(
    world_copy: DataPaths,
) -> None:
    bad = [
        truncated(world_copy.root / "executions" / "ghost" / "batch.parquet"),
        truncated(world_copy.root / "benchmarks" / "bench_old" / "session_scores.parquet"),
        truncated(world_copy.root / "evaluations" / "eval_old" / "runs.parquet"),
    ]
    benchmark = run_cli(
        world_copy.root,
        "benchmark",
        "create",
        "--name",
        "past a bad file",
        "--baseline",
        "demo_prod",
        "--candidate",
        "demo_better",
        "--sessions",
        "60",
        "--wait",
    )
    assert benchmark.returncode == 0, benchmark.stderr[-3000:]
    assert json.loads(benchmark.stdout)["status"] == "completed"
    assert all(str(file) in benchmark.stderr for file in bad), benchmark.stderr[-3000:]

    evaluation = run_cli(
        world_copy.root, "evaluation", "run", "demo_prod", "--dataset", "demo-judgments", "--wait"
    )
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    assert json.loads(evaluation.stdout)["status"] == "completed"
    assert all(str(file) in evaluation.stderr for file in bad), evaluation.stderr[-3000:]

    with duckdb.connect(str(world_copy.warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM evaluation_runs").fetchone()[0] > 0
        assert con.execute(
            "SELECT count(DISTINCT retriever_id) FROM benchmark_replays"
        ).fetchone() == (2,)
