"""Jobs: the demo world, running a benchmark partition, and submitting a request from the launchpad."""

from typing import Any

from dagster import AssetSelection, Config, Failure, OpExecutionContext, define_asset_job, job, op
from pydantic import Field

from eval_pipelines.assets.benchmarks import GROUP as BENCHMARK_GROUP
from eval_pipelines.assets.demo import GROUP as DEMO_GROUP
from eval_pipelines.assets.evaluations import GROUP as EVALUATION_GROUP
from eval_pipelines.core.benchmarks.request import RequestValidationError, parse_request
from eval_pipelines.core.benchmarks.submit import accept_request, new_benchmark_id
from eval_pipelines.core.evaluations.request import (
    DEFAULT_K_VALUES,
    DEFAULT_METRICS,
    EvaluationRequestError,
    parse_evaluation_request,
)
from eval_pipelines.core.evaluations.submit import accept_request as accept_evaluation
from eval_pipelines.core.evaluations.submit import new_evaluation_id
from eval_pipelines.lifecycle import accept_with_partition
from eval_pipelines.partitions import benchmark_partitions, evaluation_partitions
from eval_pipelines.resources import DataDirResource

build_demo_world_job = define_asset_job(
    "build_demo_world",
    selection=AssetSelection.groups(DEMO_GROUP),
    description="Build the demo world.",
)

run_benchmark_job = define_asset_job(
    "run_benchmark",
    selection=AssetSelection.groups(BENCHMARK_GROUP),
    description="Sample, replay, score and compare one benchmark partition.",
)

run_evaluation_job = define_asset_job(
    "run_evaluation",
    selection=AssetSelection.groups(EVALUATION_GROUP),
    description="Run, score and summarize one evaluation partition.",
)


class TimeRangeConfig(Config):
    start: str | None = Field(default=None, description="ISO 8601, inclusive")
    end: str | None = Field(default=None, description="ISO 8601, inclusive")


class InteractionWeightsConfig(Config):
    weights: dict[str, float] = Field(default_factory=dict)


class SessionFilterConfig(Config):
    retriever_ids: list[str] | None = None
    taxonomy_node_ids: list[str] | None = None
    time_range: TimeRangeConfig | None = None
    min_interactions: int = 1
    interaction_types: list[str] | None = None
    sample_strategy: str = Field(default="random", description="random | recent | stratified")
    interaction_weights: InteractionWeightsConfig = Field(default_factory=InteractionWeightsConfig)


class BenchmarkRequestConfig(Config):
    """The create-benchmark request (eval_pipelines/contracts/create_benchmark.request.json) as launch config."""

    benchmark_name: str
    baseline_retriever_id: str
    candidate_retriever_ids: list[str]
    session_count: int = 1000
    session_filter: SessionFilterConfig | None = None
    seed: int = 0
    replay_depth: int = 100
    epsilon: float = 0.01


def request_from_config(config: BenchmarkRequestConfig) -> dict[str, Any]:
    return config.model_dump(exclude_none=True)


@op(description="Validate and store a benchmark request; the request sensor starts its run.")
def submit_benchmark_request(
    context: OpExecutionContext, config: BenchmarkRequestConfig, data_dir: DataDirResource
) -> str:
    try:
        request = parse_request(request_from_config(config), data_dir.paths)
    except RequestValidationError as exc:
        raise Failure(description=str(exc)) from exc
    benchmark_id = new_benchmark_id()
    record = accept_with_partition(
        context.instance,
        benchmark_partitions,
        benchmark_id,
        lambda: accept_request(data_dir.paths, request, benchmark_id),
    )
    context.log.info(f"accepted benchmark {record['benchmark_id']}: {record['benchmark_name']}")
    context.add_output_metadata({"benchmark_id": record["benchmark_id"]})
    return record["benchmark_id"]


@job(description="Submit a benchmark request from the launchpad (the same request the CLI takes).")
def submit_benchmark():
    submit_benchmark_request()


class EvaluationConfigConfig(Config):
    k_values: list[int] = Field(default_factory=lambda: list(DEFAULT_K_VALUES))
    metrics: list[str] = Field(
        default_factory=lambda: list(DEFAULT_METRICS),
        description="precision, recall, f1, f2, map, ndcg, mrr",
    )


class EvaluationRequestConfig(Config):
    """The run-evaluation request (retriever + StartEvaluationRequest) as launch config."""

    retriever_id: str
    dataset_name: str
    evaluation_config: EvaluationConfigConfig = Field(default_factory=EvaluationConfigConfig)


@op(description="Validate and store an evaluation request; the request sensor starts its run.")
def submit_evaluation_request(
    context: OpExecutionContext, config: EvaluationRequestConfig, data_dir: DataDirResource
) -> str:
    try:
        request = parse_evaluation_request(config.model_dump(), data_dir.paths)
    except EvaluationRequestError as exc:
        raise Failure(description=str(exc)) from exc
    evaluation_id = new_evaluation_id()
    record = accept_with_partition(
        context.instance,
        evaluation_partitions,
        evaluation_id,
        lambda: accept_evaluation(data_dir.paths, request, evaluation_id),
    )
    context.log.info(f"accepted evaluation {record['evaluation_id']}")
    return record["evaluation_id"]


@job(
    description="Submit an evaluation request from the launchpad (the same request the CLI takes)."
)
def submit_evaluation():
    submit_evaluation_request()
