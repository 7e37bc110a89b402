"""Session scores for every pipeline of a benchmark, plus the logged ranking as the baseline's reference."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.benchmarks.estimators import COUNTERFACTUAL_PREFIX, EstimatorChoice
from eval_pipelines.core.benchmarks.request import BenchmarkRequest
from eval_pipelines.core.benchmarks.score_table import (
    CF_CLIPPED_COLUMN,
    CF_RANK_WEIGHT_COLUMN,
    CF_WEIGHTED_COLUMN,
    COMPLETED,
    COVERAGE_COLUMNS,
    IF_UNSEEN_BEST,
    LOGGED_CF_NDCG_COLUMN,
    LOGGED_NDCG_COLUMN,
    LOGGED_OVERLAP_COLUMN,
    PRIMARY_NDCG,
    QUERY_KEY_COLUMN,
    RETRIEVER_COLUMN,
    SHOWN_COLUMN,
    metric_names,
)
from eval_pipelines.core.benchmarks.stage_latencies import STAGE_LATENCIES_COLUMN
from eval_pipelines.core.metrics.agreement import top_k_overlap
from eval_pipelines.core.metrics.alignment import CUTOFFS, score_sessions
from eval_pipelines.core.metrics.counterfactual import (
    UNSEEN_DISCOUNT,
    counterfactual_scores,
    if_unseen_best,
    session_gains,
)
from eval_pipelines.core.query_keys import normalized_text, query_keys


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
    request: BenchmarkRequest,
    sessions: pa.Table,
    interactions: pa.Table,
    replays: pa.Table,
    choice: EstimatorChoice | None = None,
    evidence: pa.Table | None = None,
) -> pa.Table:
    """One row per (session, pipeline): replay facts, every logged-order metric (null when failed),
    each ranking's top-10 coverage and, when the estimator is counterfactual, the cf_ metrics.

    evidence: what all users of the sample's queries did with each document (click_model's
    query_document_evidence); without it, coverage knows only what each session's user was shown."""
    keyed = _session_interactions(sessions, interactions)
    logged_documents = sessions.column("logged_documents")
    cutoffs = CUTOFFS

    def score(rankings: pa.ChunkedArray) -> pa.Table:
        return score_sessions(
            rankings, keyed, request.weights, request.counted_types, depth=request.replay_depth
        )

    counterfactual = bool(choice and choice.counterfactual)
    in_session = (  # the logged order's own gains, for its bound
        None
        if counterfactual or evidence is None
        else session_gains(
            logged_documents,
            keyed,
            request.weights,
            request.counted_types,
            cutoffs,
            normalize="session",
        )
    )
    query_level = session_gains(
        logged_documents,
        keyed,
        request.weights,
        request.counted_types,
        cutoffs,
        propensities=choice.propensities() if choice else None,
        session_queries=normalized_text(sessions.column("query_text")),
        evidence=evidence,
    )

    def extra_columns(rankings: pa.Array, logged_ndcg: np.ndarray) -> dict[str, np.ndarray]:
        """What each ranking's top 10 covers; with query evidence, the primary NDCG@10 again with
        its unseen documents at their best; with the counterfactual estimator, its metrics."""
        corrected = counterfactual_scores(rankings, query_level, request.replay_depth, cutoffs)
        columns = {SHOWN_COLUMN: corrected[SHOWN_COLUMN]}
        if evidence is None:  # what anyone was ever shown for the query is unknown
            return columns
        columns.update({name: corrected[name] for name in COVERAGE_COLUMNS})
        unseen = corrected[UNSEEN_DISCOUNT]
        if counterfactual:
            for name in (*metric_names(cutoffs), "rank_sum"):
                columns[COUNTERFACTUAL_PREFIX + name] = corrected[name]
            columns[COUNTERFACTUAL_PREFIX + IF_UNSEEN_BEST] = if_unseen_best(
                corrected[PRIMARY_NDCG], unseen, query_level
            )
        else:
            assert in_session is not None
            columns[IF_UNSEEN_BEST] = if_unseen_best(logged_ndcg, unseen, in_session)
        return columns

    logged = score(logged_documents)
    logged_cf = (
        counterfactual_scores(logged_documents, query_level, request.replay_depth, cutoffs)
        if counterfactual
        else None
    )
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
        rankings = _per_session(rows.column("ranking"), positions, len(sessions))
        all_scores = score(rankings)
        scores = all_scores.take(positions)
        failed = pc.not_equal(rows.column("status"), COMPLETED)
        overlap = top_k_overlap(rows.column("ranking"), logged_documents.take(positions), 10)
        metric_columns = {
            name: pc.if_else(failed, pa.scalar(None, scores.column(name).type), scores.column(name))
            for name in scores.column_names
        }
        extra = {
            name: pc.if_else(failed, pa.scalar(None, pa.float64()), pa.array(values[positions]))
            for name, values in extra_columns(
                rankings, all_scores.column(PRIMARY_NDCG).to_numpy(zero_copy_only=False)
            ).items()
        }
        session_level = {}
        if logged_cf is not None:
            session_level[LOGGED_CF_NDCG_COLUMN] = pa.array(logged_cf[PRIMARY_NDCG][positions])
            session_level[CF_RANK_WEIGHT_COLUMN] = pa.array(query_level.rank_weight[positions])
            session_level[CF_CLIPPED_COLUMN] = pa.array(query_level.clipped[positions])
            session_level[CF_WEIGHTED_COLUMN] = pa.array(
                np.bincount(
                    query_level.acted_key // max(len(query_level.acted_ids), 1),
                    minlength=len(sessions),
                )[positions]
            )
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
                    **extra,
                    **session_level,
                }
            )
        )
    return pa.concat_tables(parts)


def _per_session(rankings: pa.ChunkedArray, positions: np.ndarray, count: int) -> pa.Array:
    """The rankings laid out one per session of the sample (null where this pipeline has no row),
    so every scorer indexes sessions the same way."""
    slots = np.full(count, -1, dtype=np.int64)
    slots[positions] = np.arange(positions.size)
    return rankings.combine_chunks().take(pa.array(slots, mask=slots < 0))
