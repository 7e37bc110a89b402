"""The evaluation's steps as plain functions: plan the queries, run them, score them, summarize.

Skip-and-continue: an empty query input, a failed execution or a query without relevant documents
is skipped with its reason and counted; none of them fails the evaluation.

Every evaluation also reports judged@k (JUDGED_METRIC) per k: the share of the top k retrieved that
the dataset judges at any grade, so a score read against judgments says how much of it was guessed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.datasets import Dataset
from eval_pipelines.core.evaluations.request import EvaluationRequest
from eval_pipelines.core.metrics.ground_truth import evaluate_rankings
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.progress import ProgressOutput
from eval_pipelines.core.retrieval.query_runner import (
    QUERY_ROWS_SCHEMA,
    ChunkDone,
    ChunkWriter,
    QueryRun,
    execute_queries,
)
from eval_pipelines.core.retrieval.registry import open_retriever
from eval_pipelines.core.trec import stream_run, write_run

SKIP_EMPTY_INPUT = "empty_query_input"
SKIP_NO_RELEVANT = "no_relevant_documents"
SKIP_FAILED_EXECUTION = "failed_execution"
CHUNK_SIZE = 1000

# Record metric name -> trec_eval measure at a cutoff k, and uncut (over the whole retrieved list).
CUT_MEASURES = {
    "precision": "P_{k}",
    "recall": "recall_{k}",
    "f1": "F1_{k}",
    "f2": "F2_{k}",
    "map": "map_cut_{k}",
    "ndcg": "ndcg_cut_{k}",
    "mrr": "recip_rank_cut_{k}",
}
UNCUT_MEASURES = {
    "precision": "set_P",
    "recall": "set_recall",
    "f1": "set_F",
    "f2": "set_F2",
    "map": "map",
    "ndcg": "ndcg",
    "mrr": "recip_rank",
}

# Reported at every k whatever the request's metrics: judged@k, on the ranking as retrieved.
JUDGED_METRIC = "judged"
JUDGED_MEASURE = "judged_{k}"

# An evaluation's runs: the query runner's rows without what the evaluation knows already (its
# retriever) or keeps in the executions (stage latencies).
RUNS_SCHEMA = pa.schema(
    [
        QUERY_ROWS_SCHEMA.field(name)
        for name in QUERY_ROWS_SCHEMA.names
        if name not in ("retriever_id", "stage_latencies")
    ]
)


def plan_queries(dataset: Dataset) -> pa.Table:
    """Every dataset query with its relevant-document count and, when it cannot be evaluated, why."""
    queries, judgments = dataset.queries, dataset.judgments
    relevant = judgments.filter(pc.greater_equal(judgments.column("relevance"), 1))
    counts = relevant.group_by("query_id").aggregate([("document_id", "count")])
    index = pc.index_in(queries.column("query_id"), value_set=counts.column("query_id"))
    relevant_count = pc.fill_null(pc.take(counts.column("document_id_count"), index), 0)
    empty = pc.equal(
        pc.utf8_length(pc.utf8_trim_whitespace(pc.fill_null(queries.column("query_text"), ""))), 0
    )
    reason = pc.if_else(
        empty,
        pa.scalar(SKIP_EMPTY_INPUT),
        pc.if_else(
            pc.equal(relevant_count, 0), pa.scalar(SKIP_NO_RELEVANT), pa.scalar(None, pa.string())
        ),
    )
    return queries.append_column("relevant_count", relevant_count).append_column(
        "skip_reason", reason
    )


def run_queries(
    paths: DataPaths,
    evaluation_id: str,
    retriever_id: str,
    planned: pa.Table,
    progress: ProgressOutput | Callable[[str], None] | None = None,
) -> pa.Table:
    """The retriever over every query not already skipped; every call kept as an execution."""
    runnable = planned.filter(pc.is_null(planned.column("skip_reason")))
    run = QueryRun(
        owner_id=evaluation_id,
        batch_prefix=f"evaluation-{evaluation_id}",
        query_ids=runnable.column("query_id").to_pylist(),
        query_inputs=[json.loads(q) for q in runnable.column("query_input").to_pylist()],
        chunk_size=CHUNK_SIZE,
        schema=RUNS_SCHEMA,
        project=runs_table,
    )
    label = f"evaluate {retriever_id} ({evaluation_id})"
    with (
        ProgressOutput.of(progress).track(label, "queries", runnable.num_rows) as tracker,
        open_retriever(paths, retriever_id) as retriever,
        ChunkWriter(paths) as writer,
    ):

        def report(chunk: ChunkDone) -> None:
            tracker.advance(chunk.count, failed=chunk.failed, resumed=chunk.resumed)

        return execute_queries(retriever, run, writer, report)


def runs_table(rows: pa.Table) -> pa.Table:
    """The query runner's rows as RUNS_SCHEMA (an evaluation keeps no stage latencies)."""
    return rows.select(RUNS_SCHEMA.names).cast(RUNS_SCHEMA)


def measures_for(request: EvaluationRequest) -> list[str]:
    cut = [CUT_MEASURES[m].format(k=k) for m in request.metrics for k in request.k_values]
    judged = [JUDGED_MEASURE.format(k=k) for k in request.k_values]
    return cut + judged + [UNCUT_MEASURES[m] for m in request.metrics]


def reported_metrics(request: EvaluationRequest) -> tuple[str, ...]:
    """The metric names of metrics_by_k: the request's, then judged."""
    return (*request.metrics, JUDGED_METRIC)


def _measure(metric: str, k: int | None) -> str:
    if metric == JUDGED_METRIC and k is not None:
        return JUDGED_MEASURE.format(k=k)
    return UNCUT_MEASURES[metric] if k is None else CUT_MEASURES[metric].format(k=k)


def _cutoffs(metric: str, request: EvaluationRequest) -> tuple[int | None, ...]:
    """Every k, then None for the uncut value (judged@k has none)."""
    return request.k_values if metric == JUDGED_METRIC else (*request.k_values, None)


def score_queries(request: EvaluationRequest, dataset: Dataset, runs: pa.Table) -> pa.Table:
    """Per query, per metric, per k (k null for the uncut value): one long table, computed in one pass."""
    completed = runs.filter(pc.equal(runs.column("status"), "completed"))
    wide = evaluate_rankings(
        completed.column("query_id"),
        completed.column("ranking").combine_chunks(),
        dataset.judgments,
        k_values=request.k_values,
        measures=measures_for(request),
        judged_only=request.judged_only,
    )
    parts = []
    for metric in reported_metrics(request):
        for k in _cutoffs(metric, request):
            measure = _measure(metric, k)
            parts.append(
                pa.table(
                    {
                        "query_id": wide.column("query_id"),
                        "metric": pa.array([metric] * wide.num_rows, pa.string()),
                        "k": pa.array([k] * wide.num_rows, pa.int32()),
                        "value": wide.column(measure).cast(pa.float64()),
                    }
                )
            )
    return pa.concat_tables(parts)


def summarize(
    request: EvaluationRequest, planned: pa.Table, runs: pa.Table, metrics: pa.Table
) -> dict[str, Any]:
    """Means over evaluated queries; totals and skipped counts by reason."""
    skipped: dict[str, int] = {}
    for reason in planned.column("skip_reason").drop_null().to_pylist():
        skipped[reason] = skipped.get(reason, 0) + 1
    failures = runs.filter(pc.not_equal(runs.column("status"), "completed"))
    failed = failures.num_rows
    if failed:
        skipped[SKIP_FAILED_EXECUTION] = failed
    error_types: dict[str, int] = {}
    for error_type in failures.column("error_type").to_pylist():
        error_types[error_type or "unknown"] = error_types.get(error_type or "unknown", 0) + 1
    evaluated = runs.num_rows - failed
    means = (
        metrics.group_by(["metric", "k"]).aggregate([("value", "mean")]).to_pylist()
        if metrics.num_rows
        else []
    )
    by_key = {(row["metric"], row["k"]): row["value_mean"] for row in means}

    def mean(metric: str, k: int | None) -> float:
        value = by_key.get((metric, k))
        return 0.0 if value is None or np.isnan(value) else float(value)

    return {
        "overall_metrics": {m: mean(m, None) for m in request.metrics},
        "metrics_by_k": {
            str(k): {m: mean(m, k) for m in reported_metrics(request)} for k in request.k_values
        },
        "total_queries": planned.num_rows,
        "evaluated_queries": evaluated,
        "skipped_queries": planned.num_rows - evaluated,
        "skipped_reasons": dict(sorted(skipped.items())),
        "failed_error_types": dict(sorted(error_types.items())),
    }


def export_trec_run(runs: pa.Table, destination: Path | BinaryIO, tag: str) -> int:
    """Write the completed runs as a TREC run file (or stream); returns the number of queries written.

    trec_eval re-sorts each query by score, so the scores written are rank-derived (n, n-1, ... 1):
    any tool re-scoring the file then sees exactly the retriever's order, whatever its own scores were.
    """
    completed = runs.filter(pc.equal(runs.column("status"), "completed"))
    rankings = completed.column("ranking").to_pylist()
    scores = [[float(len(r) - i) for i in range(len(r))] for r in rankings]
    query_ids = completed.column("query_id").to_pylist()
    if isinstance(destination, Path):
        write_run(destination, query_ids, rankings, scores, tag)
    else:
        stream_run(destination, query_ids, rankings, scores, tag)
    return completed.num_rows
