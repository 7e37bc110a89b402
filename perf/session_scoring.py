"""Benchmark 2: alignment metrics of 10,000 sessions x 4 pipelines at depth 100, then the comparison.

The measured step is what the benchmark assets do after the replay: score the logged ranking (the
baseline's reference) and every pipeline's rankings with score_sessions, assemble the scores table and
run benchmark_results. The check recomputes NDCG@10 and recall@10 of sampled sessions in plain Python
from the metric contract, and the overall mean NDCG@10 from the per-session values.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.benchmarks.comparison import PipelineInfo, benchmark_results
from eval_pipelines.core.metrics.alignment import DEFAULT_INTERACTION_WEIGHTS, score_sessions
from perf.harness import BenchmarkResult, CorrectnessError, Target, run_contenders

NAME = "session_scoring"
SESSIONS: dict[str, int] = {"tiny": 300, "small": 10_000, "full": 10_000}
PIPELINES = 4
DEPTH = 100
CANDIDATES = 130
TYPES: tuple[str, ...] = ("click", "add_to_cart", "bookmark", "purchase", "impression")
TYPE_SHARES: tuple[float, ...] = (0.6, 0.1, 0.05, 0.05, 0.2)
COUNTED: frozenset[str] = frozenset({"click", "add_to_cart", "bookmark", "purchase"})
NODES = 20
CHECKED_SESSIONS = 200
TOLERANCE = 1e-9
TARGET_SECONDS = 0.5


@dataclass(frozen=True)
class SessionInputs:
    """Logged and replayed rankings per session, interactions keyed by session index."""

    execution_ids: pa.Array
    logged: pa.ListArray
    rankings: list[pa.ListArray]
    interactions: pa.Table
    taxonomy_node_id: pa.Array
    query_key: pa.Array
    latency_ms: list[np.ndarray]
    pipelines: list[PipelineInfo]


def _lists(documents: np.ndarray) -> pa.ListArray:
    rows, width = documents.shape
    flat = pc.binary_join_element_wise("p", pc.cast(pa.array(documents.ravel()), pa.string()), "")
    return pa.ListArray.from_arrays(pa.array(np.arange(rows + 1) * width, pa.int32()), flat)


def make_inputs(session_count: int, seed: int) -> SessionInputs:
    rng = np.random.default_rng(seed)
    block = (np.arange(session_count) % 500)[:, None] * (CANDIDATES * 3)
    candidates = np.arange(CANDIDATES) * 3 + rng.integers(0, 3, (session_count, CANDIDATES)) + block
    logged = rng.permuted(candidates, axis=1)[:, :DEPTH]
    rankings = [_lists(rng.permuted(candidates, axis=1)[:, :DEPTH]) for _ in range(PIPELINES)]
    per_session = rng.integers(1, 7, session_count)
    session_index = np.repeat(np.arange(session_count), per_session)
    position = np.minimum(rng.geometric(0.15, session_index.size) - 1, DEPTH - 1)
    interactions = pa.table(
        {
            "session_index": pa.array(session_index),
            "document_id": pc.binary_join_element_wise(
                "p", pc.cast(pa.array(logged[session_index, position]), pa.string()), ""
            ),
            "interaction_type": pa.array(
                np.array(TYPES)[rng.choice(len(TYPES), session_index.size, p=TYPE_SHARES)]
            ),
            "position": pa.array(position),
        }
    )
    return SessionInputs(
        execution_ids=pc.binary_join_element_wise(
            "exec_", pc.cast(pa.array(np.arange(session_count)), pa.string()), ""
        ),
        logged=_lists(logged),
        rankings=rankings,
        interactions=interactions,
        taxonomy_node_id=pa.array([f"node_{n}" for n in rng.integers(0, NODES, session_count)]),
        # A session's query decides its candidate documents (its block): 500 queries, as clusters.
        query_key=pc.binary_join_element_wise(
            "query ", pc.cast(pa.array(np.arange(session_count) % 500), pa.string()), ""
        ),
        latency_ms=[rng.gamma(4.0, 2.0 + p, session_count) for p in range(PIPELINES)],
        pipelines=[
            PipelineInfo(f"pipeline_{p}", f"Pipeline {p}", f"hash{p}") for p in range(PIPELINES)
        ],
    )


def score_and_compare(inputs: SessionInputs) -> tuple[list[pa.Table], list[dict[str, Any]], dict]:
    """Per-pipeline session scores, then the benchmark's results and comparison."""

    def score(rankings: pa.ListArray) -> pa.Table:
        return score_sessions(
            rankings, inputs.interactions, DEFAULT_INTERACTION_WEIGHTS, COUNTED, depth=DEPTH
        )

    logged_ndcg = score(inputs.logged).column("ndcg_at_10")
    session_count = len(inputs.execution_ids)
    per_pipeline = [score(rankings) for rankings in inputs.rankings]
    parts = []
    for pipeline, scores, latency in zip(
        inputs.pipelines, per_pipeline, inputs.latency_ms, strict=True
    ):
        stage_json = [
            json.dumps({"lexical": round(0.8 * ms, 3), "limit": 0.01}) for ms in latency.tolist()
        ]
        parts.append(
            pa.table(
                {
                    "execution_id": inputs.execution_ids,
                    "retriever_id": pa.array([pipeline.retriever_id] * session_count),
                    "status": pa.array(["completed"] * session_count),
                    "error_type": pa.nulls(session_count, pa.string()),
                    "taxonomy_node_id": inputs.taxonomy_node_id,
                    "latency_ms": pa.array(latency),
                    "stage_latencies": pa.array(stage_json),
                    "logged_ndcg_at_10": logged_ndcg,
                    "query_key": inputs.query_key,
                    **{name: scores.column(name) for name in scores.column_names},
                }
            )
        )
    results, comparison = benchmark_results(pa.concat_tables(parts), inputs.pipelines)
    return per_pipeline, results, comparison


def _reference_scores(
    ranking: list[str], interactions: list[tuple[str, str]], k: int
) -> tuple[float, float]:
    """NDCG@k and recall@k of one session, written from the metric contract."""
    gain: dict[str, float] = {}
    interacted: set[str] = set()
    for document, kind in interactions:
        gain[document] = max(gain.get(document, 0.0), DEFAULT_INTERACTION_WEIGHTS.get(kind, 0.0))
        if kind in COUNTED:
            interacted.add(document)
    rank = {}
    for position, document in enumerate(ranking[:DEPTH], start=1):
        rank.setdefault(document, position)
    dcg = sum(gain[d] / math.log2(rank[d] + 1) for d in interacted if rank.get(d, DEPTH + 1) <= k)
    ideal = sorted((gain[d] for d in interacted), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    hits = sum(1 for d in interacted if rank.get(d, DEPTH + 1) <= k)
    return dcg / idcg, hits / len(interacted)


def check_scores(
    inputs: SessionInputs, output: tuple[list[pa.Table], list[dict[str, Any]], dict], seed: int
) -> dict[str, Any]:
    per_pipeline, results, comparison = output
    if len(results) != PIPELINES or len(comparison["comparisons"]) != PIPELINES - 1:
        raise CorrectnessError(
            f"expected {PIPELINES} results and {PIPELINES - 1} comparisons,"
            f" got {len(results)} and {len(comparison['comparisons'])}"
        )
    session_index = inputs.interactions.column("session_index").to_numpy()
    documents = inputs.interactions.column("document_id").to_pylist()
    kinds = inputs.interactions.column("interaction_type").to_pylist()
    by_session: dict[int, list[tuple[str, str]]] = {}
    for index, document, kind in zip(session_index.tolist(), documents, kinds, strict=True):
        by_session.setdefault(index, []).append((document, kind))
    rng = np.random.default_rng(seed)
    sessions = rng.choice(
        len(inputs.execution_ids), min(CHECKED_SESSIONS, len(inputs.execution_ids)), replace=False
    )
    compared = 0
    for pipeline, scores, rankings, result in zip(
        inputs.pipelines, per_pipeline, inputs.rankings, results, strict=True
    ):
        ndcg = scores.column("ndcg_at_10").to_numpy(zero_copy_only=False)
        recall = scores.column("recall_at_10").to_numpy(zero_copy_only=False)
        for session in sessions.tolist():
            interactions = by_session.get(session, [])
            if not any(kind in COUNTED for _, kind in interactions):
                continue
            expected = _reference_scores(rankings[session].as_py(), interactions, 10)
            if not np.allclose((ndcg[session], recall[session]), expected, atol=TOLERANCE, rtol=0):
                raise CorrectnessError(
                    f"{pipeline.retriever_id} session {session}: (ndcg@10, recall@10)"
                    f" {(ndcg[session], recall[session])} != reference {expected}"
                )
            compared += 1
        mean = float(np.nanmean(ndcg))
        reported = result["metrics"]["ndcg_at_k"]["10"]
        if abs(mean - reported) > TOLERANCE:
            raise CorrectnessError(
                f"{pipeline.retriever_id}: mean ndcg@10 {reported} != per-session mean {mean}"
            )
    return {
        "sessions_compared_per_pipeline": int(sessions.size),
        "session_scores_compared": compared,
        "results": len(results),
        "comparisons": len(comparison["comparisons"]),
        "tolerance": TOLERANCE,
    }


def run(scale: str, repeat: int, workdir: Path, seed: int = 2) -> BenchmarkResult:
    session_count = SESSIONS[scale]
    inputs = make_inputs(session_count, seed)
    results, outputs = run_contenders(
        [("eval-pipelines", lambda: score_and_compare(inputs))],
        repeat,
        items=session_count * PIPELINES,
    )
    checks = check_scores(inputs, outputs["eval-pipelines"], seed)
    return BenchmarkResult(
        name=NAME,
        parameters={
            "sessions": session_count,
            "pipelines": PIPELINES,
            "depth": DEPTH,
            "interactions": inputs.interactions.num_rows,
            "seed": seed,
        },
        contenders=results,
        checks=checks,
        targets=[Target("median seconds", results[0].median_seconds, TARGET_SECONDS)],
        notes=["items/s counts (session, pipeline) pairs; the logged ranking is scored as well."],
    )
