"""Evaluation assets, partitioned by evaluation id: queries -> runs -> per-query metrics -> summary."""

import pyarrow.compute as pc
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from eval_pipelines.core.datasets import load_dataset
from eval_pipelines.core.evaluations import pipeline
from eval_pipelines.core.evaluations.submit import SUMMARY, load_request
from eval_pipelines.core.evaluations.submit import evaluation_store as store
from eval_pipelines.core.records import with_record_id
from eval_pipelines.partitions import evaluation_partitions
from eval_pipelines.resources import DataDirResource

GROUP = "evaluation"
ID_COLUMN = "evaluation_id"


@asset(
    partitions_def=evaluation_partitions,
    group_name=GROUP,
    description="The dataset's queries, each with its relevant-document count and skip reason, if any.",
)
def evaluation_queries(
    context: AssetExecutionContext, data_dir: DataDirResource
) -> MaterializeResult:
    paths, evaluation_id = data_dir.paths, context.partition_key
    request = load_request(paths, evaluation_id)
    planned = pipeline.plan_queries(load_dataset(paths, request.dataset_name))
    store(paths).write_table(
        evaluation_id, "queries", with_record_id(planned, ID_COLUMN, evaluation_id)
    )
    skipped = planned.column("skip_reason").drop_null().to_pylist()
    return MaterializeResult(
        metadata={
            "queries": planned.num_rows,
            "to_run": planned.num_rows - len(skipped),
            "skipped": MetadataValue.json({r: skipped.count(r) for r in sorted(set(skipped))}),
        }
    )


@asset(
    partitions_def=evaluation_partitions,
    group_name=GROUP,
    deps=[evaluation_queries],
    description="Each runnable query through the retriever; every call kept as an execution.",
)
def evaluation_runs(context: AssetExecutionContext, data_dir: DataDirResource) -> MaterializeResult:
    paths, evaluation_id = data_dir.paths, context.partition_key
    request = load_request(paths, evaluation_id)
    planned = store(paths).read_table(evaluation_id, "queries")
    runs = pipeline.run_queries(
        paths, evaluation_id, request.retriever_id, planned, context.log.info
    )
    store(paths).write_table(evaluation_id, "runs", with_record_id(runs, ID_COLUMN, evaluation_id))
    failed = (
        int(pc.sum(pc.not_equal(runs.column("status"), "completed")).as_py() or 0)
        if runs.num_rows
        else 0
    )
    return MaterializeResult(metadata={"runs": runs.num_rows, "failed_executions": failed})


@asset(
    partitions_def=evaluation_partitions,
    group_name=GROUP,
    deps=[evaluation_runs],
    description="Per query, per metric, per k (null k = uncut): trec_eval's numbers, computed in one pass.",
    check_specs=[AssetCheckSpec("metrics_within_unit_interval", asset="evaluation_query_metrics")],
)
def evaluation_query_metrics(
    context: AssetExecutionContext, data_dir: DataDirResource
) -> MaterializeResult:
    paths, evaluation_id = data_dir.paths, context.partition_key
    request = load_request(paths, evaluation_id)
    runs = store(paths).read_table(evaluation_id, "runs")
    metrics = pipeline.score_queries(request, load_dataset(paths, request.dataset_name), runs)
    store(paths).write_table(
        evaluation_id, "query_metrics", with_record_id(metrics, ID_COLUMN, evaluation_id)
    )
    values = metrics.column("value")
    outside = int(pc.sum(pc.or_(pc.less(values, 0.0), pc.greater(values, 1.0 + 1e-9))).as_py() or 0)
    return MaterializeResult(
        metadata={"rows": metrics.num_rows},
        check_results=[
            AssetCheckResult(
                check_name="metrics_within_unit_interval",
                passed=outside == 0,
                metadata={"outside": outside},
            )
        ],
    )


@asset(
    partitions_def=evaluation_partitions,
    group_name=GROUP,
    deps=[evaluation_query_metrics],
    description="Means over evaluated queries (metrics_by_k and uncut overall_metrics) and the query counts.",
    check_specs=[AssetCheckSpec("query_counts_add_up", asset="evaluation_summary")],
)
def evaluation_summary(
    context: AssetExecutionContext, data_dir: DataDirResource
) -> MaterializeResult:
    paths, evaluation_id = data_dir.paths, context.partition_key
    request = load_request(paths, evaluation_id)
    planned = store(paths).read_table(evaluation_id, "queries")
    summary = pipeline.summarize(
        request,
        planned,
        store(paths).read_table(evaluation_id, "runs"),
        store(paths).read_table(evaluation_id, "query_metrics"),
    )
    store(paths).write_json(evaluation_id, SUMMARY, summary)
    data_dir.refresh_views()
    lines = [
        "| k | " + " | ".join(request.metrics) + " |",
        "|---" * (len(request.metrics) + 1) + "|",
    ]
    for k, values in [*summary["metrics_by_k"].items(), ("all", summary["overall_metrics"])]:
        lines.append(f"| {k} | " + " | ".join(f"{values[m]:.4f}" for m in request.metrics) + " |")
    adds_up = (
        summary["evaluated_queries"] + summary["skipped_queries"]
        == summary["total_queries"]
        == planned.num_rows
    )
    return MaterializeResult(
        metadata={
            "metrics": MetadataValue.md("\n".join(lines)),
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
