"""The retrieval engine on a data root on S3 (moto's server, loopback): collections and retriever
files read from objects and cached while unchanged (by ETag), BM25 indexes kept in the local cache,
replay chunks stored as whole objects and resumed, and Dask tasks given the root as its URL."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.bm25_index import BM25Settings, get_index, index_dir
from eval_pipelines.core.retrieval.collections import (
    collection_file,
    load_collection,
    write_collection,
)
from eval_pipelines.core.retrieval.dask_engine import run_on_dask
from eval_pipelines.core.retrieval.dask_tasks import ChunkTask, run_chunk_task
from eval_pipelines.core.retrieval.engines import parse_engine
from eval_pipelines.core.retrieval.execution_store import find_execution
from eval_pipelines.core.retrieval.file_cache import cache_info
from eval_pipelines.core.retrieval.query_runner import (
    ChunkDone,
    ChunkWriter,
    QueryRun,
    execute_queries,
    run_chunks,
)
from eval_pipelines.core.retrieval.registry import load_retriever_registry, open_retriever
from eval_pipelines_tests.services import upload_world

TEXTS = ["red shoes", "rain jacket", "wool hat", "leather belt", "laptop case", "desk lamp"]


def keys_under(s3_service, s3_root: str, folder: str) -> list[str]:
    bucket, prefix = s3_root.removeprefix("s3://").split("/", 1)
    return sorted(
        k.removeprefix(f"{prefix}/") for k in s3_service.keys(bucket, f"{prefix}/{folder}")
    )


def query_run(paths: DataPaths, owner: str, resume: bool = True) -> QueryRun:
    return QueryRun(
        owner_id=owner,
        batch_prefix=f"replay-{owner}",
        query_ids=[f"q{i}" for i in range(len(TEXTS))],
        query_inputs=[{"text": text} for text in TEXTS],
        chunk_size=4,
        depth=10,
        resume_dir=paths.benchmark_replay_chunks_dir(owner) if resume else None,
    )


def test_a_collection_on_s3_is_cached_by_etag_and_its_bm25_index_stays_local(
    small_world: DataPaths, s3_root: str, s3_service
) -> None:
    paths = upload_world(small_world, s3_root)
    first = load_collection(paths, "products")
    assert first.table.equals(load_collection(small_world, "products").table)
    assert load_collection(paths, "products") is first  # unchanged object: not read again

    settings = BM25Settings(fields=("title",))
    uploaded = keys_under(s3_service, s3_root, "")
    assert get_index(first, settings).source == "built"
    assert index_dir(first, settings).is_relative_to(paths.local_cache)
    assert (index_dir(first, settings) / "manifest.json").is_file()
    assert keys_under(s3_service, s3_root, "") == uploaded  # nothing of the index in the bucket

    # Replaced by a table of the same size (two ids swapped), maybe within the same second: the
    # object's ETag tells them apart.
    ids = first.table.column("document_id").to_pylist()
    ids[0], ids[1] = ids[1], ids[0]
    swapped = first.table.set_column(0, "document_id", pa.array(ids))
    size = collection_file(paths, "products").stat().st_size
    write_collection(paths, "products", swapped)
    assert collection_file(paths, "products").stat().st_size == size
    second = load_collection(paths, "products")
    assert second is not first
    assert second.document_ids[:2].tolist() == ids[:2]
    assert get_index(second, settings).source == "built"  # new content, new key


def test_retriever_files_another_process_rewrites_on_s3_are_read_again(
    small_world: DataPaths, s3_root: str
) -> None:
    paths = upload_world(small_world, s3_root)
    before = load_retriever_registry(paths)
    assert before.configs["demo_prod"].name == "Production BM25 (title + description)"
    assert str(before.configs["demo_prod"].source_path) == f"{s3_root}/retrievers/demo_prod.yaml"
    load_retriever_registry(paths)
    hits = cache_info().hits

    edit = (
        "from eval_pipelines.core.paths import DataPaths, data_root\n"
        f"r = DataPaths(data_root({s3_root!r}, 'x')).retrievers_dir\n"
        "text = (r / 'demo_prod.yaml').read_text()\n"
        "(r / 'demo_prod.yaml').write_text(text.replace('Production BM25', 'Productive BM25'))\n"
        "(r / 'demo_new.yaml').write_text(text.replace('id: demo_prod', 'id: demo_new'))\n"
    )
    subprocess.run([sys.executable, "-c", edit], check=True, timeout=60)

    after = load_retriever_registry(paths)
    assert after.configs["demo_prod"].name == "Productive BM25 (title + description)"
    assert after.configs["demo_new"].pipeline_hash == before.configs["demo_prod"].pipeline_hash
    assert cache_info().hits > hits  # the unchanged files were not parsed again


def test_replay_chunks_on_s3_are_whole_objects_and_a_rerun_resumes_them(
    small_world: DataPaths, s3_root: str, s3_service
) -> None:
    paths = upload_world(small_world, s3_root)
    run = query_run(paths, "b1")
    done: list[ChunkDone] = []
    with open_retriever(paths, "demo_prod") as retriever, ChunkWriter(paths) as writer:
        rows = execute_queries(retriever, run, writer, done.append)
        again: list[ChunkDone] = []
        assert execute_queries(retriever, run, writer, again.append).equals(rows)
    assert [c.resumed for c in done] == [False, False]
    assert [c.resumed for c in again] == [True, True]

    chunks = keys_under(s3_service, s3_root, "benchmarks/b1/replay_chunks/demo_prod/")
    assert [k.rsplit("/", 1)[1][:5] for k in chunks] == ["0000-", "0001-"]
    assert keys_under(s3_service, s3_root, "executions/demo_prod/replay-b1") == [
        "executions/demo_prod/replay-b1-0000.parquet",
        "executions/demo_prod/replay-b1-0001.parquet",
    ]
    first = rows.column("execution_id")[0].as_py()
    stored = find_execution(paths, "demo_prod", first)
    assert stored is not None and stored.execution_id == first
    assert [d.document_id for d in stored.documents] == rows.column("ranking")[0].as_py()


def test_dask_tasks_and_a_dask_replay_use_the_s3_root(
    small_world: DataPaths, s3_root: str, s3_service
) -> None:
    pytest.importorskip("distributed", reason="dask distributed is not installed (`scale` extra)")
    paths = upload_world(small_world, s3_root)
    run = query_run(paths, "b2")
    config = load_retriever_registry(paths).configs["demo_better"]
    chunk = run_chunks(run)[0]
    shipped = replace(run, query_ids=(), query_inputs=())
    task = ChunkTask(s3_root, "demo_better", config.pipeline_hash, shipped, chunk)
    result = run_chunk_task(task)
    assert result.path is not None and result.path.startswith(f"{s3_root}/benchmarks/b2/")
    assert not result.resumed and result.failed == 0
    assert run_chunk_task(task).resumed

    # No resume directory: the workers' chunk files go to a scratch prefix, removed afterwards.
    engine = parse_engine("dask", "local-cluster:1")
    replay = run_on_dask(
        paths, query_run(paths, "b3", resume=False), {"demo_better": config}, engine
    )
    table = replay.tables["demo_better"]
    assert table.num_rows == len(TEXTS)
    assert pc.all(pc.equal(table.column("status"), "completed")).as_py()
    assert keys_under(s3_service, s3_root, "replay_scratch") == []
    assert len(keys_under(s3_service, s3_root, "executions/demo_better/replay-b3-")) == 2
