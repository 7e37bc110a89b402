"""Benchmark 3: filter and stratified-sample 10,000 sessions from 1,000,000 executions / 10,000,000 interactions.

The log is written as normalized Parquet (the ingest's schemas) straight with pyarrow, so the measured
step is sample_sessions alone: DuckDB over the Parquet files. A fifth of the interactions are of a type
that does not count and some executions have none that count, so the filter has work to do. The check
verifies the sample size, the ranks, each stratum's share against the allocation, and that every
sampled session matches the filter.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.benchmarks.sampling import (
    NULL_STRATUM,
    SessionFilter,
    SessionSample,
    sample_sessions,
)
from eval_pipelines.core.logs.tables import EXECUTIONS_SCHEMA, INTERACTIONS_SCHEMA
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.storage import write_parquet_atomic
from perf.harness import BenchmarkResult, CorrectnessError, Target, run_contenders

NAME = "sampling"
EXECUTIONS: dict[str, int] = {"tiny": 2_000, "small": 100_000, "full": 1_000_000}
INTERACTIONS_PER_EXECUTION = 10
SAMPLE: dict[str, int] = {"tiny": 200, "small": 10_000, "full": 10_000}
DOCUMENTS_PER_EXECUTION = 10
NODES = 40
TYPES: tuple[str, ...] = ("click", "add_to_cart", "bookmark", "purchase", "impression")
TYPE_SHARES: tuple[float, ...] = (0.6, 0.1, 0.05, 0.05, 0.2)
PART_ROWS = 2_000_000
TARGET_SECONDS = 3.0
TARGET_PEAK_BYTES = 2 * 2**30
_START = datetime(2025, 1, 1, tzinfo=UTC)


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")


def _micros(offsets_s: np.ndarray) -> pa.Array:
    start = int(_START.timestamp() * 1_000_000)
    return pa.array(start + offsets_s.astype(np.int64) * 1_000_000, pa.timestamp("us", tz="UTC"))


def write_log(paths: DataPaths, execution_count: int, seed: int) -> int:
    """Normalized executions and interactions Parquet under paths' log tables; returns interactions."""
    rng = np.random.default_rng(seed)
    execution = np.arange(execution_count)
    execution_ids = _ids("exec_", execution)
    created_s = np.sort(rng.integers(0, 35 * 86_400, execution_count))
    node = rng.integers(-1, NODES, execution_count)
    node_lists = pa.ListArray.from_arrays(
        pa.array(np.r_[0, np.cumsum(node >= 0)].astype(np.int32)),
        _ids("node_", node[node >= 0]),
    )
    documents = rng.integers(0, 200_000, (execution_count, DOCUMENTS_PER_EXECUTION))
    document_lists = pa.ListArray.from_arrays(
        pa.array(np.arange(execution_count + 1, dtype=np.int32) * DOCUMENTS_PER_EXECUTION),
        _ids("doc_", documents.ravel()),
    )
    executions = pa.table(
        {
            "execution_id": execution_ids,
            "retriever_id": pa.array(
                np.array(["prod", "canary"])[(rng.random(execution_count) < 0.1).astype(int)]
            ),
            "session_id": _ids("sess_", execution),
            "user_id": _ids("user_", rng.integers(0, 50_000, execution_count)),
            "query_text": _ids("query ", rng.integers(0, 30_000, execution_count)),
            "query_input": pc.binary_join_element_wise(
                '{"text": "query ', pc.cast(pa.array(execution % 30_000), pa.string()), '"}', ""
            ),
            "documents": document_lists,
            "taxonomy_node_ids": node_lists,
            "created_at": _micros(created_s),
            "metadata": pa.nulls(execution_count, pa.string()),
        },
        schema=EXECUTIONS_SCHEMA,
    )
    write_parquet_atomic(executions, paths.log_table_dir("executions") / "part-00000.parquet")
    del executions, document_lists

    interaction_count = execution_count * INTERACTIONS_PER_EXECUTION
    owner = rng.integers(0, execution_count, interaction_count)
    owner[: execution_count // 2] = np.arange(0, execution_count, 2)
    owner.sort()
    position = rng.integers(0, DOCUMENTS_PER_EXECUTION, interaction_count)
    kind = np.array(TYPES)[rng.choice(len(TYPES), interaction_count, p=TYPE_SHARES)]
    for part, start in enumerate(range(0, interaction_count, PART_ROWS)):
        rows = slice(start, min(start + PART_ROWS, interaction_count))
        who = owner[rows]
        table = pa.table(
            {
                "interaction_id": _ids("int_", np.arange(rows.start, rows.stop)),
                "execution_id": pc.take(execution_ids, who),
                "document_id": _ids("doc_", documents[who, position[rows]]),
                "interaction_type": pa.array(kind[rows]),
                "position": pa.array(position[rows].astype(np.int32)),
                "session_id": _ids("sess_", who),
                "user_id": pa.nulls(len(who), pa.string()),
                "timestamp": _micros(created_s[who] + 5),
                "metadata": pa.nulls(len(who), pa.string()),
            },
            schema=INTERACTIONS_SCHEMA,
        )
        write_parquet_atomic(
            table, paths.log_table_dir("interactions") / f"part-{part:05d}.parquet"
        )
    return interaction_count


def check_sample(sample: SessionSample, requested: int) -> dict[str, Any]:
    sessions = sample.sessions
    if sessions.num_rows != requested:
        raise CorrectnessError(f"sampled {sessions.num_rows} sessions, requested {requested}")
    ranks = sessions.column("sample_rank").to_numpy()
    if not np.array_equal(ranks, np.arange(requested)):
        raise CorrectnessError("sample_rank is not 0..count-1 in order")
    if pc.count_distinct(sessions.column("execution_id")).as_py() != requested:
        raise CorrectnessError("a session was sampled twice")
    if pc.min(sessions.column("interaction_count")).as_py() < 1:
        raise CorrectnessError("a sampled session has no counted interaction (min_interactions 1)")
    allocation = sample.allocation or {}
    if sum(allocation.values()) != requested:
        raise CorrectnessError(f"allocation {allocation} does not add up to {requested}")
    nodes = pc.fill_null(sessions.column("taxonomy_node_id"), NULL_STRATUM)
    counts = pc.value_counts(nodes).to_pylist()
    taken = {c["values"]: c["counts"] for c in counts}
    wanted = {node: share for node, share in allocation.items() if share}
    if taken != wanted:
        raise CorrectnessError(f"per-stratum counts {taken} differ from the allocation {wanted}")
    sampled = pc.is_in(sample.interactions.column("execution_id"), sessions.column("execution_id"))
    if not pc.all(sampled).as_py():
        raise CorrectnessError("an interaction belongs to a session that was not sampled")
    return {
        "sampled": sessions.num_rows,
        "requested": requested,
        "matched": sample.matched,
        "strata": len(wanted),
        "interactions": sample.interactions.num_rows,
    }


def run(scale: str, repeat: int, workdir: Path, seed: int = 3) -> BenchmarkResult:
    paths = DataPaths(workdir / "data")
    execution_count = EXECUTIONS[scale]
    interaction_count = write_log(paths, execution_count, seed)
    requested = SAMPLE[scale]
    session_filter = SessionFilter(strategy="stratified")
    results, outputs = run_contenders(
        [("eval-pipelines", lambda: sample_sessions(paths, session_filter, requested, seed))],
        repeat,
    )
    checks = check_sample(outputs["eval-pipelines"], requested)
    outputs.clear()
    measured = results[0]
    return BenchmarkResult(
        name=NAME,
        parameters={
            "executions": execution_count,
            "interactions": interaction_count,
            "sample": requested,
            "strategy": "stratified",
            "seed": seed,
        },
        contenders=results,
        checks=checks,
        targets=[
            Target("median seconds", measured.median_seconds, TARGET_SECONDS),
            Target("peak RSS GiB", measured.peak_rss_bytes / 2**30, TARGET_PEAK_BYTES / 2**30),
        ],
    )
