"""Partition tables go through one store on a filesystem abstraction: the same code writes them to
the local data directory (atomically, readable by DuckDB) and to another fsspec filesystem."""

from pathlib import Path

import duckdb
import pyarrow as pa
from upath import UPath

from eval_pipelines.core.partition_tables import PartitionTables

TABLE = pa.table({"execution_id": ["e1", "e2"], "ndcg_at_10": [0.5, 1.0]})
FACTS = {"sampled": 2, "matched": 9, "warnings": ["few sessions"]}


def test_local_tables_are_parquet_files_duckdb_reads_with_their_facts(tmp_path: Path) -> None:
    tables = PartitionTables(tmp_path / "benchmarks")
    written = tables.write("bench_1", "sessions", TABLE, FACTS)
    assert Path(written.path) == tmp_path / "benchmarks" / "bench_1" / "sessions.parquet"
    assert tables.read("bench_1", "sessions").select(TABLE.column_names).to_pylist() == (
        TABLE.to_pylist()
    )
    assert tables.read_facts("bench_1", "sessions") == FACTS
    rows = duckdb.sql(f"SELECT count(*) FROM '{written.path}'").fetchall()[0]
    assert rows == (2,)
    assert not [p for p in written.parent.iterdir() if p.name.startswith(".")]


def test_the_same_store_writes_to_another_filesystem() -> None:
    tables = PartitionTables(UPath("memory://eval-pipelines/benchmarks"))
    assert not tables.is_local
    tables.write("bench_2", "replays", TABLE, FACTS)
    assert tables.path("bench_2", "replays").exists()
    assert tables.read("bench_2", "replays").to_pylist() == TABLE.to_pylist()
    assert tables.read_facts("bench_2", "replays") == FACTS
