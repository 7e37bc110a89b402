"""A report built from its partition and written atomically beside it (or where asked)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eval_pipelines.core.paths import DataPath, DataPaths
from eval_pipelines.core.reports.html.benchmark import benchmark_page
from eval_pipelines.core.reports.html.evaluation import evaluation_page
from eval_pipelines.core.reports.html.sources import resolve
from eval_pipelines.core.storage import write_text_atomic
from eval_pipelines.core.table_names import BENCHMARKS


@dataclass(frozen=True)
class Report:
    kind: str
    record_id: str
    record: dict[str, Any]
    html: str
    plots: list[str]
    omitted: dict[str, str]  # plot name -> why it is left out
    default_path: DataPath  # report.html in the partition, on the data root (local or S3)


def build_report(
    paths: DataPaths, record_id: str, kind: str | None = None, against: str | None = None
) -> Report:
    """The report of a completed record (its kind found when not given); `against` names a
    completed baseline evaluation (evaluations only). Bad ids raise InvalidInputError."""
    partition, baseline = resolve(paths, record_id, kind, against)
    if partition.kind == BENCHMARKS:
        page = benchmark_page(paths, partition)
    else:
        page = evaluation_page(paths, partition, baseline)
    return Report(
        partition.kind,
        record_id,
        partition.record,
        page.html(),
        page.plots,
        page.omitted,
        partition.report_path,
    )


def write_report(report: Report, path: DataPath | None = None) -> DataPath:
    """Written atomically (on S3 as one whole object): a reader sees the old report or the new
    one, never half of one."""
    target = path or report.default_path
    write_text_atomic(report.html, target)
    return target
