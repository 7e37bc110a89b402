"""The pilot of a plan: sessions sampled, replayed in memory and compared; nothing is stored."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.benchmarks.comparison import PipelineInfo, benchmark_results
from eval_pipelines.core.benchmarks.replay import replay_rows
from eval_pipelines.core.benchmarks.request import BenchmarkRequest
from eval_pipelines.core.benchmarks.sampling import sample_sessions
from eval_pipelines.core.benchmarks.score_table import (
    COMPLETED,
    LOGGED_NDCG_COLUMN,
    PRIMARY_NDCG,
    QUERY_KEY_COLUMN,
    RETRIEVER_COLUMN,
)
from eval_pipelines.core.benchmarks.scoring import score_benchmark
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.execution_store import executions_table
from eval_pipelines.core.retrieval.registry import open_retrievers

PILOT_ID = "pilot"


@dataclass
class PilotResult:
    """What the pilot measured for one candidate."""

    retriever_id: str
    differences: np.ndarray
    clusters: np.ndarray
    comparison: dict[str, Any]
    unscored: str | None = None  # which side scored no pilot session, and why


@dataclass
class Pilot:
    sampled: int
    matched: int
    queries: int
    failed_sessions: dict[str, int]
    results: list[PilotResult]
    warnings: list[str] = field(default_factory=list)


def replay_in_memory(
    paths: DataPaths, sessions: pa.Table, retriever_ids: Sequence[str], depth: int
) -> tuple[pa.Table, list[PipelineInfo]]:
    """Replay rows (REPLAYS_SCHEMA) of every session through every retriever, and the retrievers
    as a comparison names them; no execution is stored."""
    logged_ids = sessions.column("execution_id").to_pylist()
    query_inputs = [json.loads(q) for q in sessions.column("query_input").to_pylist()]
    parts, infos = [], []
    with open_retrievers(paths, list(retriever_ids)) as retrievers:
        for retriever_id in retriever_ids:
            retriever = retrievers[retriever_id]
            executions = retriever.search_many(query_inputs, limit=depth)
            parts.append(
                replay_rows(PILOT_ID, logged_ids, executions, executions_table(executions))
            )
            infos.append(
                PipelineInfo(retriever_id, retriever.config.name, retriever.config.pipeline_hash)
            )
    return pa.concat_tables(parts), infos


def primary_differences(
    scores: pa.Table, baseline: str, candidate: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per scorable session, candidate minus baseline NDCG@10 with a failed replay scored 0 (the
    primary estimate's differences), and each session's query code."""

    def rows(retriever_id: str) -> pa.Table:
        return scores.filter(pc.equal(scores.column(RETRIEVER_COLUMN), retriever_id))

    base, cand = rows(baseline), rows(candidate)
    if not base.column("execution_id").equals(cand.column("execution_id")):
        raise ValueError("scores: the pipelines' rows are not in the same session order")

    def outcome(table: pa.Table) -> np.ndarray:
        ndcg = table.column(PRIMARY_NDCG).to_numpy(zero_copy_only=False).astype(np.float64)
        completed = pc.equal(table.column("status"), COMPLETED).to_numpy(zero_copy_only=False)
        return np.where(completed, np.nan_to_num(ndcg), 0.0)

    logged = base.column(LOGGED_NDCG_COLUMN).to_numpy(zero_copy_only=False).astype(np.float64)
    scorable = np.isfinite(logged)
    keys = base.column(QUERY_KEY_COLUMN).to_numpy(zero_copy_only=False)
    query = np.unique(keys, return_inverse=True)[1]
    return (outcome(cand) - outcome(base))[scorable], query[scorable]


def run_pilot(
    paths: DataPaths,
    request: BenchmarkRequest,
    sessions: int,
    progress: Callable[[str], None] | None = None,
) -> Pilot:
    """Sample, replay in memory and score `sessions` sessions as the benchmark would."""
    sample = sample_sessions(paths, request.sampling_filter, sessions, request.seed)
    if sample.sessions.num_rows == 0:
        raise InvalidInputError(
            "session_filter: no logged session matches the filter, so there is nothing to plan"
            " a benchmark of"
        )
    sampled = sample.sessions.num_rows
    if progress:
        progress(
            f"pilot: replaying {sampled} sessions through"
            f" {', '.join(request.retriever_ids)} (nothing is stored)"
        )
    replays, infos = replay_in_memory(
        paths, sample.sessions, request.retriever_ids, request.replay_depth
    )
    scores = score_benchmark(request, sample.sessions, sample.interactions, replays)
    results, comparison = benchmark_results(
        scores, infos, epsilon=request.epsilon, settings=request.inference_settings
    )
    measured = []
    for candidate, compared, outcome in zip(
        request.candidate_retriever_ids, comparison["comparisons"], results[1:], strict=True
    ):
        differences, clusters = primary_differences(
            scores, request.baseline_retriever_id, candidate
        )
        unscored = _unscored(results[0], outcome, sampled)
        measured.append(PilotResult(candidate, differences, clusters, compared, unscored))
    failed = {result["retriever_id"]: result["failed_sessions"] for result in results}
    warnings = list(sample.warnings)
    warnings += [
        f"pilot: {retriever_id} failed on {count} of {sampled} sessions; each failure scores 0"
        " NDCG@10 in the spread and delta the plan uses"
        for retriever_id, count in failed.items()
        if count
    ]
    queries = pc.count_distinct(scores.column(QUERY_KEY_COLUMN)).as_py()
    return Pilot(sampled, sample.matched, queries, failed, measured, warnings)


def _unscored(baseline: dict[str, Any], candidate: dict[str, Any], sampled: int) -> str | None:
    """Which side of a pilot comparison scored no session, and why (None: both scored)."""
    return next(
        (
            f"{who} {side['retriever_id']} scored no pilot session"
            f" ({side['failed_sessions']} of {sampled} failed"
            + "".join(f", {kind} {count}" for kind, count in side["error_summary"].items())
            + ")"
            for who, side in (("the baseline", baseline), ("the candidate", candidate))
            if side["scored_sessions"] == 0
        ),
        None,
    )
