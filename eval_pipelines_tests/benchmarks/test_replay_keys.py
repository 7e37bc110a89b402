"""Finished replay chunks are keyed by what the rankings depend on, the collection's content included:
a collection re-ingested under the same name is never served from chunks of the old one."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from eval_pipelines.core.benchmarks import replay
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.collections import collection_file, write_collection
from eval_pipelines.core.storage import read_parquet_dir


def logged_sessions(paths: DataPaths, count: int) -> pa.Table:
    logs = read_parquet_dir(paths.log_table_dir("executions"), ["execution_id", "query_input"])
    assert logs is not None
    return logs.slice(0, count)


def rankings(rows: pa.Table) -> list[list[str]]:
    return rows.column("ranking").to_pylist()


def test_a_collection_changed_under_its_name_is_replayed_again_not_read_from_old_chunks(
    world_copy: DataPaths,
) -> None:
    sessions = logged_sessions(world_copy, 30)
    resume_dir = world_copy.benchmark_replay_chunks_dir("bench_keys")

    def run(resume: bool) -> pa.Table:
        return replay.replay_sessions(
            world_copy,
            "bench_keys",
            sessions,
            ["demo_prod"],
            depth=20,
            resume_dir=resume_dir if resume else None,
        )

    before = run(resume=True)
    assert len(list((resume_dir / "demo_prod").glob("*.parquet"))) == 1

    # The same name, other content: half the products are gone, so most rankings change.
    documents = pq.read_table(collection_file(world_copy, "products"))
    write_collection(world_copy, "products", documents.take(list(range(1, len(documents), 2))))

    after = run(resume=True)
    fresh = run(resume=False)
    assert rankings(after) == rankings(fresh)
    assert rankings(after) != rankings(before)
    kept = list((resume_dir / "demo_prod").glob("*.parquet"))
    assert len(kept) == 1 and pq.read_table(kept[0]).column("ranking").to_pylist() == rankings(
        fresh
    )


def test_the_chunk_key_names_the_collection_content_for_pipelines_only(
    world_copy: DataPaths, tmp_path
) -> None:
    from eval_pipelines.core.retrieval.registry import open_retrievers

    with open_retrievers(world_copy, ["demo_prod", "demo_prod_copy"]) as retrievers:
        prod, copy = retrievers["demo_prod"], retrievers["demo_prod_copy"]
        inputs = replay.ranking_inputs(prod)
        assert inputs == [prod.config.pipeline_hash, prod.collection.content_digest]
        # Two ids with one definition rank alike, but each keeps its own chunk folder.
        assert replay.ranking_inputs(copy) == inputs
        files = {
            replay.chunk_file(tmp_path, "b", r, 10, 0, ["x"]).parent.name for r in (prod, copy)
        }
        assert files == {"demo_prod", "demo_prod_copy"}
