"""The HTML report of each benchmark and evaluation as an asset after the step that completes its
record. It only reads the record and the partition's tables: a report that fails leaves the record
as the comparison (or summary) wrote it."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from eval_pipelines.assets.benchmarks import GROUP as BENCHMARK_GROUP
from eval_pipelines.assets.benchmarks import benchmark_comparison
from eval_pipelines.assets.evaluations import GROUP as EVALUATION_GROUP
from eval_pipelines.assets.evaluations import evaluation_summary
from eval_pipelines.core.reports.html.build import build_report, write_report
from eval_pipelines.core.reports.html.preview import benchmark_preview, evaluation_preview
from eval_pipelines.core.table_names import BENCHMARKS, EVALUATIONS
from eval_pipelines.partitions import benchmark_partitions, evaluation_partitions
from eval_pipelines.resources import DataDirResource


def _materialize(
    kind: str, context: AssetExecutionContext, data_dir: DataDirResource
) -> MaterializeResult:
    paths = data_dir.paths
    report = build_report(paths, context.partition_key, kind)
    path = write_report(report)
    record = report.record
    preview = benchmark_preview(record) if kind == BENCHMARKS else evaluation_preview(record)
    label_keys = ("benchmark_name",) if kind == BENCHMARKS else ("retriever_id", "dataset_name")
    labels = {key: record[key] for key in label_keys if record.get(key)}
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(path)),
            "size_bytes": len(report.html.encode("utf-8")),
            "plots": len(report.plots),
            "plots_left_out": MetadataValue.json(report.omitted),
            "preview": MetadataValue.md(preview),
            **labels,
        }
    )


@asset(
    partitions_def=benchmark_partitions,
    group_name=BENCHMARK_GROUP,
    deps=[benchmark_comparison],
    description="The benchmark's self-contained HTML report (report.html in its partition folder).",
)
def benchmark_report(
    context: AssetExecutionContext, data_dir: DataDirResource
) -> MaterializeResult:
    return _materialize(BENCHMARKS, context, data_dir)


@asset(
    partitions_def=evaluation_partitions,
    group_name=EVALUATION_GROUP,
    deps=[evaluation_summary],
    description="The evaluation's self-contained HTML report (report.html in its partition folder).",
)
def evaluation_report(
    context: AssetExecutionContext, data_dir: DataDirResource
) -> MaterializeResult:
    return _materialize(EVALUATIONS, context, data_dir)
