"""The demo with the data root on S3 (moto's server, loopback): what `eval-pipelines demo --small`
runs to build its world (the demo assets, materialized on a real Dagster instance) and its tour writes
the world a local build writes, object for object and row for row; the BM25 index stays in the local
cache; and `retrievers list` and `execution get` read it back through the real CLI.

The demo's benchmark and evaluations after the tour are other verbs' (their own tests on S3); the
whole `demo --small` on S3 runs in dagster_layer/test_demo_on_s3_postgres_dask.py."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from eval_pipelines.cli.demo import DEMO_RETRIEVERS, TOUR_QUERIES, build_world, tour
from eval_pipelines.core.demo import DEFAULT_SEED
from eval_pipelines.core.paths import DataPaths, data_root
from eval_pipelines_tests.cli.conftest import run_cli

# The demo world's own tables and files; benchmarks, evaluations and datasets are other verbs'.
WORLD_DIRS = ("logs", "collections", "retrievers", "demo")


def local_files(root: Path, top: str) -> set[str]:
    return {p.relative_to(root).as_posix() for p in (root / top).rglob("*") if p.is_file()}


def test_the_small_demo_on_s3_writes_the_world_a_local_build_writes(
    small_world: DataPaths,
    s3_root: str,
    s3_service,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    paths = DataPaths(data_root(s3_root, "test"))
    build_world(paths, DEFAULT_SEED, small=True)
    toured = tour(paths)
    assert [row[3] for row in toured] == [f"{TOUR_QUERIES}/{TOUR_QUERIES}"] * len(DEMO_RETRIEVERS)

    bucket, prefix = s3_root.removeprefix("s3://").split("/", 1)
    keys = {k.removeprefix(f"{prefix}/") for k in s3_service.keys(bucket, f"{prefix}/")}
    local = Path(small_world.root)
    for top in WORLD_DIRS:
        expected = {f for f in local_files(local, top) if "/bm25/" not in f}
        assert {k for k in keys if k.startswith(f"{top}/")} == expected, top
    for key in sorted(k for k in keys if k.startswith(WORLD_DIRS)):
        if key.endswith(".parquet"):
            assert pq.read_table(f"{s3_root}/{key}").equals(pq.read_table(local / key)), key
        elif not key.startswith("demo/steps/"):
            remote = data_root(f"{s3_root}/{key}", "test").read_bytes()
            assert remote == (local / key).read_bytes(), key
    # Leases are released and nothing temporary is left beside the objects.
    assert not [k for k in keys if k.rsplit("/", 1)[-1].startswith(".")]

    # Each demo retriever's tour batch: one whole object of TOUR_QUERIES rows.
    for retriever_id in DEMO_RETRIEVERS:
        [batch] = [k for k in keys if k.startswith(f"executions/{retriever_id}/demo-tour-")]
        assert pq.read_table(f"{s3_root}/{batch}").num_rows == TOUR_QUERIES

    # bm25s saves to a folder: the index lives in this machine's cache, never in the bucket.
    assert not [k for k in keys if "/bm25/" in k]
    assert list((paths.local_cache / "collections" / "products" / "bm25").glob("*/manifest.json"))

    listed = run_cli(s3_root, "retrievers", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(r["id"] for r in rows) == sorted(DEMO_RETRIEVERS)
    assert all(r["usable"] and r["file"].startswith(f"{s3_root}/retrievers/") for r in rows)

    retriever_id, execution_id = toured[0][0], toured[0][-1]
    shown = run_cli(s3_root, "execution", "get", retriever_id, execution_id)
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    [batch] = [k for k in keys if k.startswith(f"executions/{retriever_id}/demo-tour-")]
    stored = pq.read_table(f"{s3_root}/{batch}").to_pylist()
    [row] = [r for r in stored if r["execution_id"] == execution_id]
    assert detail["execution_id"] == execution_id and detail["status"] == "completed"
    assert [d["document_id"] for d in detail["documents"]] == [
        d["document_id"] for d in row["documents"]
    ]
    assert set(detail["stage_statistics"]["stages"]) == {
        name for name, _ in row["stage_statistics"]
    }

    missing = run_cli(s3_root, "execution", "get", retriever_id, "exec_nothere")
    assert missing.returncode == 2
    assert "no execution 'exec_nothere' stored for retriever" in missing.stderr
