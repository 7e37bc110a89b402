"""Session scores for every pipeline of a benchmark, plus the logged ranking as the baseline's reference."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.benchmarks.request import BenchmarkRequest
from eval_pipelines.core.metrics.alignment import score_sessions

COMPLETED = "completed"


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
    parts = []
    order = {eid: i for i, eid in enumerate(sessions.column("execution_id").to_pylist())}
    for pipeline_id in request.pipeline_ids:
        rows = replays.filter(pc.equal(replays.column("pipeline_id"), pipeline_id))
        positions = np.array(
            [order[e] for e in rows.column("execution_id").to_pylist()], dtype=np.int64
        )
        rows = rows.take(np.argsort(positions, kind="stable"))
        positions = np.sort(positions)
        scores = score(rows.column("ranking"))
        failed = pc.not_equal(rows.column("status"), COMPLETED)
        metric_columns = {
            name: pc.if_else(failed, pa.scalar(None, scores.column(name).type), scores.column(name))
            for name in scores.column_names
        }
        parts.append(
            pa.table(
                {
                    "benchmark_id": rows.column("benchmark_id"),
                    "execution_id": rows.column("execution_id"),
                    "pipeline_id": rows.column("pipeline_id"),
                    "status": rows.column("status"),
                    "error_type": rows.column("error_type"),
                    "taxonomy_node_id": sessions.column("taxonomy_node_id").take(positions),
                    "latency_ms": rows.column("latency_ms"),
                    "stage_latencies_json": rows.column("stage_latencies_json"),
                    "logged_ndcg_at_10": logged.column("ndcg_at_10").take(positions),
                    **metric_columns,
                }
            )
        )
    return pa.concat_tables(parts)
