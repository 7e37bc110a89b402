"""Ingest with its data root on S3 (a real moto server on loopback): ingests running at once take
turns through the logs lease and store each id once; the duplicate-id check names parts on S3."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from eval_pipelines.core.logs import find_duplicate_ids
from eval_pipelines.core.paths import DataPaths, data_root
from eval_pipelines.core.storage import read_parquet_dir, write_parquet_atomic
from eval_pipelines_tests.cli.test_ingest_concurrency_cli import execution, ingest_at_once
from eval_pipelines_tests.services import S3

RANGES = ((0, 3000), (2000, 5000)) * 2
UNIQUE_IDS = 5000


def test_ingests_at_once_on_s3_store_each_id_once(
    s3_root: str, s3_service: S3, tmp_path: Path
) -> None:
    files = []
    for n, (start, stop) in enumerate(RANGES):
        files.append(tmp_path / f"executions_{n}.jsonl")
        files[-1].write_text("\n".join(execution(i) for i in range(start, stop)) + "\n")
    reports = ingest_at_once(s3_root, "executions", files, cwd=tmp_path)

    stored = read_parquet_dir(DataPaths(data_root(s3_root, "t")).log_table_dir("executions"))
    assert stored is not None and stored.num_rows == UNIQUE_IDS
    assert len(set(stored.column("execution_id").to_pylist())) == UNIQUE_IDS
    assert sum(r["ingested"] for r in reports) == UNIQUE_IDS
    assert sum(r["already_present"] for r in reports) == sum(b - a for a, b in RANGES) - UNIQUE_IDS
    bucket, prefix = s3_root.split("/")[2], s3_root.split("/", 3)[3]
    assert not any(key.endswith("/.lock") for key in s3_service.keys(bucket, prefix))


def test_duplicate_ids_are_named_by_their_parts_under_the_root(s3_root: str) -> None:
    paths = DataPaths(data_root(s3_root, "t"))
    folder = paths.log_table_dir("executions")
    write_parquet_atomic(pa.table({"execution_id": ["e1", "e2"]}), folder / "part-a.parquet")
    write_parquet_atomic(pa.table({"execution_id": ["e1"]}), folder / "part-b.parquet")

    found = find_duplicate_ids(paths, "executions", ["e1", "e1", "e2"])

    assert found.duplicated == 1
    assert found.stored == {
        "e1": {"logs/executions/part-a.parquet": 1, "logs/executions/part-b.parquet": 1}
    }
