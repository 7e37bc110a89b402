"""Each request kind declared once: its request model, its records, its partitions, its assets and
its job. The sensors, the launchpad, the schedule and the CLI's in-process runner all work from
these declarations, so none of them knows a kind by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetsDefinition,
    AssetSelection,
    DagsterInstance,
    DynamicPartitionsDefinition,
    ExecutorDefinition,
    define_asset_job,
    in_process_executor,
    multiprocess_executor,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)

from eval_pipelines.assets.benchmarks import GROUP as BENCHMARK_GROUP
from eval_pipelines.assets.benchmarks import benchmark_assets, benchmark_labels
from eval_pipelines.assets.evaluations import GROUP as EVALUATION_GROUP
from eval_pipelines.assets.evaluations import evaluation_assets, evaluation_labels
from eval_pipelines.assets.reports import benchmark_report, evaluation_report
from eval_pipelines.core.benchmarks import submit as benchmark_submit
from eval_pipelines.core.benchmarks.request import BenchmarkRequest, parse_request
from eval_pipelines.core.deployment import executor_from_env
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.evaluations import submit as evaluation_submit
from eval_pipelines.core.evaluations.request import EvaluationRequest, parse_evaluation_request
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.records import RecordStore
from eval_pipelines.core.request_model import RequestModel
from eval_pipelines.core.run_records import RunRecords
from eval_pipelines.partitions import benchmark_partitions, evaluation_partitions

TAG_NAMESPACE = "eval_pipelines"
KIND_TAG = f"{TAG_NAMESPACE}/kind"
PARTITION_TAG = "dagster/partition"


@dataclass(frozen=True)
class RequestKind:
    """Benchmarks and evaluations differ only in what is declared here."""

    records: RunRecords
    model: type[RequestModel]
    # The door: validate a request (with the data directory: check its references too).
    parse: Callable[[Any, DataPaths | None], Any]
    accept: Callable[[DataPaths, Any, str], dict[str, Any]]
    partitions: DynamicPartitionsDefinition
    assets: Sequence[AssetsDefinition]
    job: UnresolvedAssetJobDefinition
    # What a person knows a request by (the UI lists partitions by id): run tags and step metadata.
    labels: Callable[[Any], dict[str, str]]

    @property
    def name(self) -> str:
        """ "benchmarks" or "evaluations": the records' folder and the run tag."""
        return self.records.kind

    @property
    def singular(self) -> str:
        return self.name.removesuffix("s")

    def store(self, paths: DataPaths) -> RecordStore:
        return self.records.store(paths)

    def new_id(self) -> str:
        return self.records.new_id()

    def run_tags(self, request: Any) -> dict[str, str]:
        """A run's tags: its kind and the request's labels, so the runs list and its tag filter
        name the request the partition id stands for."""
        labels = {f"{TAG_NAMESPACE}/{key}": value for key, value in self.labels(request).items()}
        return {KIND_TAG: self.name, **labels}

    def accept_with_partition(
        self, instance: DagsterInstance, paths: DataPaths, request: Any, record_id: str
    ) -> dict[str, Any]:
        """The partition first, then the stored request and its pending record: an accepted
        request can always be materialized (UI, `dagster asset materialize`), daemon or not."""
        instance.add_dynamic_partitions(self.partitions.name, [record_id])
        return self.accept(paths, request, record_id)


def run_executor() -> ExecutorDefinition | None:
    """The run jobs' executor, named by EVAL_PIPELINES_EXECUTOR on every machine of a deployment;
    None (unset) keeps Dagster's default. Celery reads its broker and backend URLs from the
    environment when a run starts, so no URL is part of the job."""
    choice = executor_from_env()
    if choice.name is None:
        return None
    if choice.name == "in_process":
        return in_process_executor
    if choice.name == "multiprocess":
        return multiprocess_executor
    try:
        if choice.name == "k8s":
            from dagster_k8s import k8s_job_executor

            return k8s_job_executor
        from dagster_celery import celery_executor
    except ImportError as exc:
        raise InvalidInputError(
            f"EVAL_PIPELINES_EXECUTOR: {choice.name} needs {exc.name} (README: Deploying beyond"
            " one machine)"
        ) from exc
    return celery_executor.configured(
        {"broker": {"env": choice.broker_env}, "backend": {"env": choice.broker_env}},
        name="celery",
    )


def run_job(name: str, group: str, description: str) -> UnresolvedAssetJobDefinition:
    """The job that materializes a kind's assets (group) for one partition, on run_executor()."""
    return define_asset_job(
        name,
        selection=AssetSelection.groups(group),
        description=description,
        executor_def=run_executor(),
    )


BENCHMARKS = RequestKind(
    records=benchmark_submit.BENCHMARK_RECORDS,
    model=BenchmarkRequest,
    parse=parse_request,
    accept=benchmark_submit.accept_request,
    partitions=benchmark_partitions,
    assets=[*benchmark_assets, benchmark_report],
    job=run_job(
        "run_benchmark", BENCHMARK_GROUP, "Sample, replay, score and compare one partition."
    ),
    labels=benchmark_labels,
)

EVALUATIONS = RequestKind(
    records=evaluation_submit.EVALUATION_RECORDS,
    model=EvaluationRequest,
    parse=parse_evaluation_request,
    accept=evaluation_submit.accept_request,
    partitions=evaluation_partitions,
    assets=[*evaluation_assets, evaluation_report],
    job=run_job("run_evaluation", EVALUATION_GROUP, "Run, score and summarize one partition."),
    labels=evaluation_labels,
)

KINDS: dict[str, RequestKind] = {kind.name: kind for kind in (BENCHMARKS, EVALUATIONS)}
