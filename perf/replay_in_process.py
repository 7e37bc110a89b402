"""Benchmark 5: queries per second of each demo BM25 pipeline replayed in process, on one core.

The demo catalog, its retrievers and its query intents are built (deterministically, at the full demo
scale unless told otherwise) in a scratch directory; the queries are the intents' texts, cycled to the
requested count. The process is pinned to one CPU while measuring. The check: every execution
completes with 1..depth documents, the A/A copy of production returns the same rankings, and a
repeated call returns the same ranking.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from eval_pipelines.core.demo.retrievers import BETTER, PROD, PROD_COPY, WORSE
from eval_pipelines.core.demo.world import (
    INTENTS_FILE,
    DemoScale,
    build_catalog,
    build_intents,
    write_demo_retrievers,
)
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.execution import Execution
from eval_pipelines.core.retrieval.registry import open_retrievers
from perf.harness import BenchmarkResult, CorrectnessError, Target, run_contenders

NAME = "replay_in_process"
QUERIES: dict[str, int] = {"tiny": 50, "small": 1_000, "full": 3_000}
DEMO_SCALES: dict[str, DemoScale] = {
    "tiny": DemoScale.small(),
    "small": DemoScale.small(),
    "full": DemoScale(),
}
PIPELINES: tuple[str, ...] = (PROD, BETTER, WORSE)
DEPTH = 100
TARGET_QUERIES_PER_SECOND = 1_000.0


@contextmanager
def one_cpu() -> Iterator[int | None]:
    """Pin this process to its first usable CPU for the block (no-op where affinity is unsupported)."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, allowed)


def build_world(paths: DataPaths, scale: DemoScale, seed: int) -> list[dict[str, Any]]:
    """The demo steps replay needs (catalog, retrievers, intents); the intents' queries."""
    build_catalog(paths, seed, scale)
    write_demo_retrievers(paths)
    build_intents(paths, seed, scale)
    texts = pq.read_table(paths.demo_dir / INTENTS_FILE, columns=["query_text"]).column(
        "query_text"
    )
    return [{"text": text} for text in texts.to_pylist()]


def check_executions(outputs: dict[str, list[Execution]], copy: list[Execution]) -> dict[str, Any]:
    for retriever_id, executions in outputs.items():
        for number, execution in enumerate(executions):
            if execution.status != "completed":
                raise CorrectnessError(
                    f"{retriever_id}: query {number} {execution.status}: {execution.error}"
                )
            if len(execution.document_ids) > DEPTH:
                raise CorrectnessError(
                    f"{retriever_id}: query {number} returned > {DEPTH} documents"
                )
    empty = {p: sum(not e.document_ids for e in ex) for p, ex in outputs.items()}
    if any(count == len(outputs[p]) for p, count in empty.items()):
        raise CorrectnessError(f"a pipeline returned no documents at all: {empty}")
    if [e.document_ids for e in copy] != [e.document_ids for e in outputs[PROD]]:
        raise CorrectnessError(f"{PROD_COPY} and {PROD} rank differently on the same queries")
    return {
        "all_completed": True,
        "queries_without_results": empty,
        "prod_copy_identical": True,
    }


def run(scale: str, repeat: int, workdir: Path, seed: int = 5) -> BenchmarkResult:
    paths = DataPaths(workdir / "data")
    demo_scale = DEMO_SCALES[scale]
    intents = build_world(paths, demo_scale, seed)
    query_count = QUERIES[scale]
    queries = [intents[i % len(intents)] for i in range(query_count)]
    with open_retrievers(paths, [*PIPELINES, PROD_COPY]) as retrievers, one_cpu() as cpu:
        results, outputs = run_contenders(
            [
                (
                    retriever_id,
                    lambda r=retrievers[retriever_id]: r.search_many(queries, limit=DEPTH),
                )
                for retriever_id in PIPELINES
            ],
            repeat,
            items=query_count,
        )
        copy = retrievers[PROD_COPY].search_many(queries, limit=DEPTH)
    checks = check_executions(outputs, copy)
    return BenchmarkResult(
        name=NAME,
        parameters={
            "queries": query_count,
            "distinct_queries": min(len(intents), query_count),
            "depth": DEPTH,
            "demo_products": demo_scale.products,
            "pinned_cpu": cpu,
            "seed": seed,
        },
        contenders=results,
        checks=checks,
        targets=[
            Target(
                f"{r.name} queries/s on one core",
                r.items_per_second or 0.0,
                TARGET_QUERIES_PER_SECOND,
                higher_is_better=True,
            )
            for r in results
        ],
        notes=["ratios compare pipelines with each other (same queries, same collection)."],
    )
