"""Evaluation assets, partitioned by evaluation id: queries -> runs -> per-query metrics -> summary.

Each step records itself in the evaluation's record as it starts; the summary writes the completed
record.
"""

from functools import partial

import pyarrow.compute as pc
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from eval_pipelines.assets.checks import check_result
from eval_pipelines.assets.inputs import collections, ground_truth_datasets, retriever_configs
from eval_pipelines.assets.recording import recorded_step
from eval_pipelines.assets.tables import table_metadata
from eval_pipelines.core.benchmarks.health import every_pipeline_answered
from eval_pipelines.core.datasets import load_dataset
from eval_pipelines.core.evaluations import pipeline
from eval_pipelines.core.evaluations.request import EvaluationRequest
from eval_pipelines.core.evaluations.submit import EVALUATION_RECORDS, load_request
from eval_pipelines.core.markdown import metrics_by_k_table
from eval_pipelines.core.progress import ProgressOutput
from eval_pipelines.core.records import with_record_id
from eval_pipelines.core.reports.verdict_table import EVALUATION_COLUMNS, evaluation_rows
from eval_pipelines.core.table_names import QUERIES, QUERY_METRICS, RUNS
from eval_pipelines.partitions import evaluation_partitions
from eval_pipelines.resources import DataDirResource

GROUP = "evaluation"
# Every asset of the kind: one partition per request, in the kind's group.
partition_asset = partial(asset, partitions_def=evaluation_partitions, group_name=GROUP)
ID_COLUMN = "evaluation_id"


def evaluation_labels(request: EvaluationRequest) -> dict[str, str]:
    """What a person knows an evaluation by (it has no name): Dagster lists its partitions by id
    only, so every step's materialization and the run's tags carry its retriever and dataset."""
    return {"retriever_id": request.retriever_id, "dataset_name": request.dataset_name}


@partition_asset(
    deps=[ground_truth_datasets],
    description="The dataset's queries, each with its relevant-document count and skip reason, if any.",
)
def evaluation_queries(
    context: AssetExecutionContext, data_dir: DataDirResource
) -> MaterializeResult:
    with recorded_step(context, EVALUATION_RECORDS, data_dir) as (paths, evaluation_id, store):
        request = load_request(paths, evaluation_id)
        planned = pipeline.plan_queries(load_dataset(paths, request.dataset_name))
        store.write_table(evaluation_id, QUERIES, with_record_id(planned, ID_COLUMN, evaluation_id))
    skipped = planned.column("skip_reason").drop_null().to_pylist()
    return MaterializeResult(
        metadata={
            **evaluation_labels(request),
            "queries": planned.num_rows,
            "to_run": planned.num_rows - len(skipped),
            "skipped": MetadataValue.json({r: skipped.count(r) for r in sorted(set(skipped))}),
        }
    )


@partition_asset(
    deps=[evaluation_queries, retriever_configs, collections],
    description="Each runnable query through the retriever; every call kept as an execution.",
    check_specs=[AssetCheckSpec("retriever_answered_a_query", asset="evaluation_runs")],
)
def evaluation_runs(context: AssetExecutionContext, data_dir: DataDirResource) -> MaterializeResult:
    with recorded_step(context, EVALUATION_RECORDS, data_dir) as (paths, evaluation_id, store):
        request = load_request(paths, evaluation_id)
        planned = store.read_table(evaluation_id, QUERIES)
        runs = pipeline.run_queries(
            paths,
            evaluation_id,
            request.retriever_id,
            planned,
            ProgressOutput.to_log(context.log.info),
        )
        store.write_table(evaluation_id, RUNS, with_record_id(runs, ID_COLUMN, evaluation_id))
    failed = (
        int(pc.sum(pc.not_equal(runs.column("status"), "completed")).as_py() or 0)
        if runs.num_rows
        else 0
    )
    return MaterializeResult(
        metadata={
            **evaluation_labels(request),
            "runs": runs.num_rows,
            "failed_executions": failed,
        },
        check_results=[
            check_result(
                "retriever_answered_a_query",
                every_pipeline_answered({request.retriever_id: runs.column("status")}, "queries"),
                AssetCheckSeverity.ERROR,
            )
        ],
    )


@partition_asset(
    deps=[evaluation_runs],
    description="Per query, per metric, per k (null k = uncut): trec_eval's numbers, computed in one pass.",
    check_specs=[AssetCheckSpec("metrics_within_unit_interval", asset="evaluation_query_metrics")],
)
def evaluation_query_metrics(
    context: AssetExecutionContext, data_dir: DataDirResource
) -> MaterializeResult:
    with recorded_step(context, EVALUATION_RECORDS, data_dir) as (paths, evaluation_id, store):
        request = load_request(paths, evaluation_id)
        runs = store.read_table(evaluation_id, RUNS)
        metrics = pipeline.score_queries(request, load_dataset(paths, request.dataset_name), runs)
        store.write_table(
            evaluation_id, QUERY_METRICS, with_record_id(metrics, ID_COLUMN, evaluation_id)
        )
    values = metrics.column("value")
    outside = int(pc.sum(pc.or_(pc.less(values, 0.0), pc.greater(values, 1.0 + 1e-9))).as_py() or 0)
    return MaterializeResult(
        metadata={**evaluation_labels(request), "rows": metrics.num_rows},
        check_results=[
            AssetCheckResult(
                check_name="metrics_within_unit_interval",
                passed=outside == 0,
                metadata={"outside": outside},
            )
        ],
    )


@partition_asset(
    deps=[evaluation_query_metrics],
    description="Means over evaluated queries (metrics_by_k and uncut overall_metrics) and the query"
    " counts; completes the evaluation's record.",
    check_specs=[AssetCheckSpec("query_counts_add_up", asset="evaluation_summary")],
)
def evaluation_summary(
    context: AssetExecutionContext, data_dir: DataDirResource
) -> MaterializeResult:
    with recorded_step(context, EVALUATION_RECORDS, data_dir) as (paths, evaluation_id, store):
        request = load_request(paths, evaluation_id)
        planned = store.read_table(evaluation_id, QUERIES)
        summary = pipeline.summarize(
            request,
            planned,
            store.read_table(evaluation_id, RUNS),
            store.read_table(evaluation_id, QUERY_METRICS),
        )
        data_dir.refresh_views()
        record = EVALUATION_RECORDS.completed(paths, evaluation_id, summary, context.run.run_id)
    adds_up = (
        summary["evaluated_queries"] + summary["skipped_queries"]
        == summary["total_queries"]
        == planned.num_rows
    )
    return MaterializeResult(
        metadata={
            **evaluation_labels(request),
            "metrics_table": table_metadata(EVALUATION_COLUMNS, evaluation_rows(record)),
            "metrics": MetadataValue.md(
                metrics_by_k_table(summary, pipeline.reported_metrics(request))
            ),
            "evaluated_queries": summary["evaluated_queries"],
            "skipped": MetadataValue.json(summary["skipped_reasons"]),
        },
        check_results=[
            AssetCheckResult(
                check_name="query_counts_add_up",
                passed=adds_up,
                metadata={
                    k: summary[k] for k in ("total_queries", "evaluated_queries", "skipped_queries")
                },
            )
        ],
    )


evaluation_assets = [
    evaluation_queries,
    evaluation_runs,
    evaluation_query_metrics,
    evaluation_summary,
]
