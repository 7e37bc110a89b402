"""Session scores for every pipeline of a benchmark, plus the logged ranking as the baseline's reference."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.benchmarks.request import BenchmarkRequest
from eval_pipelines.core.benchmarks.score_table import (
    COMPLETED,
    LOGGED_NDCG_COLUMN,
    LOGGED_OVERLAP_COLUMN,
    QUERY_KEY_COLUMN,
    RETRIEVER_COLUMN,
)
from eval_pipelines.core.benchmarks.stage_latencies import STAGE_LATENCIES_COLUMN
from eval_pipelines.core.metrics.agreement import top_k_overlap
from eval_pipelines.core.metrics.alignment import score_sessions
from eval_pipelines.core.query_keys import query_keys


def _session_interactions(sessions: pa.Table, interactions: pa.Table) -> pa.Table:
    """Interactions keyed by the session's index in the sample (what score_sessions expects)."""
    index = pc.index_in(
        interactions.column("execution_id"), value_set=sessions.column("execution_id")
    )
    return pa.table(
        {
            "session_index": index,
            "document_id": interactions.column("document_id"),
            "interaction_type": interactions.column("interaction_type"),
            "position": interactions.column("position"),
        }
    )


def score_benchmark(
    request: BenchmarkRequest, sessions: pa.Table, interactions: pa.Table, replays: pa.Table
) -> pa.Table:
    """One row per (session, pipeline): replay facts and every alignment metric (null when failed)."""
    keyed = _session_interactions(sessions, interactions)

    def score(rankings: pa.ChunkedArray) -> pa.Table:
        return score_sessions(
            rankings, keyed, request.weights, request.counted_types, depth=request.replay_depth
        )

    logged = score(sessions.column("logged_documents"))
    keys = query_keys(sessions, request.query_key)
    parts = []
    order = {eid: i for i, eid in enumerate(sessions.column("execution_id").to_pylist())}
    for retriever_id in request.retriever_ids:
        rows = replays.filter(pc.equal(replays.column("retriever_id"), retriever_id))
        positions = np.array(
            [order[e] for e in rows.column("execution_id").to_pylist()], dtype=np.int64
        )
        rows = rows.take(np.argsort(positions, kind="stable"))
        positions = np.sort(positions)
        scores = score(rows.column("ranking"))
        failed = pc.not_equal(rows.column("status"), COMPLETED)
        overlap = top_k_overlap(
            rows.column("ranking"), sessions.column("logged_documents").take(positions), 10
        )
        metric_columns = {
            name: pc.if_else(failed, pa.scalar(None, scores.column(name).type), scores.column(name))
            for name in scores.column_names
        }
        parts.append(
            pa.table(
                {
                    "benchmark_id": rows.column("benchmark_id"),
                    "execution_id": rows.column("execution_id"),
                    RETRIEVER_COLUMN: rows.column("retriever_id"),
                    "status": rows.column("status"),
                    "error_type": rows.column("error_type"),
                    "taxonomy_node_id": sessions.column("taxonomy_node_id").take(positions),
                    QUERY_KEY_COLUMN: keys.take(positions),
                    "latency_ms": rows.column("latency_ms"),
                    STAGE_LATENCIES_COLUMN: rows.column("stage_latencies"),
                    LOGGED_NDCG_COLUMN: logged.column("ndcg_at_10").take(positions),
                    LOGGED_OVERLAP_COLUMN: pc.if_else(
                        failed, pa.scalar(None, pa.float64()), pa.array(overlap, pa.float64())
                    ),
                    **metric_columns,
                }
            )
        )
    return pa.concat_tables(parts)
