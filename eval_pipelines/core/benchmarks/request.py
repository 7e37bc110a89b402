"""A benchmark request: the create-benchmark request as one typed model, parsed once at every door.

The model is the reference CreateBenchmarkRequest (its JSON Schema is generated from it and checked
against the reference) plus the extension keys recorded with each benchmark (seed, replay depth,
epsilon, inference settings). Every problem is listed at once, as `field: problem`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic import model_validator as after_fields

from eval_pipelines.core.benchmarks.estimators import (
    AUTO,
    DEFAULT_MIN_COVERAGE,
    DEFAULT_PROPENSITY_CLIP,
    EstimatorChoice,
    choose_estimator,
)
from eval_pipelines.core.benchmarks.inference import (
    DEFAULT_MAX_FAILURE_EXCESS,
    DEFAULT_MIN_CLUSTERS,
    UNIT_QUERY,
    InferenceSettings,
)
from eval_pipelines.core.benchmarks.sampling import SessionFilter as SamplingFilter
from eval_pipelines.core.errors import InvalidInputError, InvalidRequestError
from eval_pipelines.core.metrics.alignment import DEFAULT_DEPTH, counted_types, effective_weights
from eval_pipelines.core.paths import shown
from eval_pipelines.core.request_model import (
    PATHS,
    RequestModel,
    parse_model,
    problem,
    referenced_paths,
    rooted_problem,
)
from eval_pipelines.core.retrieval.registry import load_retriever_registry

DEFAULT_SESSION_COUNT = 1000
DEFAULT_SEED = 0
DEFAULT_EPSILON = 0.01
# Gains are summed over up to 1,000 ranks: far below float overflow, and only their ratios matter.
MAX_WEIGHT = 1e6
MAX_MIN_CLUSTERS = 10_000
MAX_REPLAY_DEPTH = 1000
MIN_SESSION_COUNT, MAX_SESSION_COUNT = 10, 10_000


class RequestValidationError(InvalidRequestError):
    title = "invalid benchmark request"


def _ranged_integer(low: int, high: int | None, wording: str) -> Any:
    """An integer field whose every bad value (wrong type or out of range) gets one message."""

    def check(value: Any) -> Any:
        if type(value) is not int or value < low or (high is not None and value > high):
            raise problem(f"expected {wording}, got {shown(value)}")
        return value

    return Annotated[int, Field(ge=low, le=high), BeforeValidator(check)]


def _ranged_number(low: float, high: float | None, wording: str) -> Any:
    def check(value: Any) -> Any:
        finite = type(value) in (int, float) and math.isfinite(value)
        if not finite or value < low or (high is not None and value > high):
            raise problem(f"expected {wording}, got {shown(value)}")
        return float(value)

    return Annotated[float, Field(ge=low, le=high), BeforeValidator(check)]


def _utc(text: str | None) -> datetime | None:
    """An ISO 8601 date-time in UTC (a naive one is taken as UTC)."""
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise problem(f"{shown(text)} is not an ISO 8601 date-time") from None
    try:
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except OverflowError:
        raise problem(f"{shown(text)} is outside years 1 to 9999 once converted to UTC") from None


def _non_empty_list(values: list[str] | None) -> list[str] | None:
    if values is not None and not values:
        raise problem("an empty list matches nothing (omit it or use null)")
    return values


def _configured(retriever_id: str, info: ValidationInfo) -> str:
    """At a door, a retriever must be defined by a usable file (the problem names broken files
    that may define it); a broken file defining another retriever does not stop this request."""
    paths = referenced_paths(info)
    if paths is None:
        return retriever_id
    registry = info.context.get("registry")
    if registry is None:
        registry = info.context["registry"] = load_retriever_registry(paths)
    if not registry.configs and not registry.problems:
        raise problem(f"no retrievers are configured in {paths.retrievers_dir}")
    if (found := registry.problem_for(retriever_id)) is not None:
        raise problem(found)
    return retriever_id


ConfiguredRetrieverId = Annotated[str, AfterValidator(_configured)]
DateTime = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
Weight = _ranged_number(0, MAX_WEIGHT, f"a finite number >= 0 and <= {MAX_WEIGHT:,.0f}")


class TimeRange(RequestModel):
    start: DateTime | None = None
    end: DateTime | None = None

    @field_validator("start", "end")
    @classmethod
    def _is_a_date_time(cls, value: str | None) -> str | None:
        _utc(value)
        return value

    @after_fields(mode="after")
    def _start_before_end(self) -> TimeRange:
        if self.start and self.end and _utc(self.start) > _utc(self.end):
            raise problem(f"start {self.start} is after end {self.end}")
        return self


class InteractionWeights(RequestModel):
    weights: dict[str, Weight] = Field(default_factory=dict)


class SessionFilter(RequestModel):
    retriever_ids: list[str] | None = None
    taxonomy_node_ids: list[str] | None = None
    time_range: TimeRange | None = None
    min_interactions: int = Field(default=1, ge=1)
    interaction_types: list[str] | None = None
    sample_strategy: Literal["random", "recent", "stratified"] = "random"
    interaction_weights: InteractionWeights = Field(default_factory=InteractionWeights)

    _lists_are_not_empty = field_validator(
        "retriever_ids", "taxonomy_node_ids", "interaction_types"
    )(_non_empty_list)

    @after_fields(mode="after")
    def _counted_types_weigh_something(self) -> SessionFilter:
        try:
            self.counted_types  # noqa: B018
        except InvalidInputError as exc:
            message = str(exc)
            raise rooted_problem(
                message if message.startswith("session_filter.") else f"session_filter.{message}"
            ) from None
        return self

    @property
    def weights(self) -> dict[str, float]:
        """The default weights, overridden and extended by the request's."""
        return effective_weights(self.interaction_weights.weights)

    @property
    def counted_types(self) -> frozenset[str]:
        return counted_types(self.interaction_types, self.weights)


class BenchmarkRequest(RequestModel):
    """CreateBenchmarkRequest plus the extension keys; stored as given, defaults filled in."""

    benchmark_name: str = Field(min_length=1, max_length=255)
    baseline_retriever_id: ConfiguredRetrieverId
    candidate_retriever_ids: list[ConfiguredRetrieverId] = Field(min_length=1)
    session_filter: SessionFilter | None = None
    session_count: int = Field(
        default=DEFAULT_SESSION_COUNT, ge=MIN_SESSION_COUNT, le=MAX_SESSION_COUNT
    )
    seed: _ranged_integer(0, None, "a non-negative integer") = DEFAULT_SEED
    replay_depth: _ranged_integer(
        1, MAX_REPLAY_DEPTH, f"an integer from 1 to {MAX_REPLAY_DEPTH}"
    ) = DEFAULT_DEPTH
    epsilon: _ranged_number(0, None, "a finite number >= 0") = DEFAULT_EPSILON
    inference_unit: Literal["query", "session"] = UNIT_QUERY
    query_key: Literal["text", "text_and_filters"] = "text"
    min_clusters: _ranged_integer(
        2, MAX_MIN_CLUSTERS, f"an integer from 2 to {MAX_MIN_CLUSTERS:,}"
    ) = DEFAULT_MIN_CLUSTERS
    max_failure_excess: _ranged_number(0, 1, "a number from 0 to 1 (a failure rate)") = (
        DEFAULT_MAX_FAILURE_EXCESS
    )
    estimator: Literal["auto", "counterfactual", "logged_order"] = AUTO
    min_coverage: _ranged_number(0, 1, "a number from 0 to 1 (a share of the top 10)") = (
        DEFAULT_MIN_COVERAGE
    )
    propensity_clip: _ranged_number(
        1e-6, 1, "a number from 0.000001 to 1 (the smallest propensity divided by)"
    ) = DEFAULT_PROPENSITY_CLIP

    @field_validator("candidate_retriever_ids")
    @classmethod
    def _candidates_are_distinct(cls, candidates: list[str], info: ValidationInfo) -> list[str]:
        repeated = sorted({c for c in candidates if candidates.count(c) > 1})
        if repeated:
            raise problem(f"listed more than once: {', '.join(map(shown, repeated))}")
        baseline = info.data.get("baseline_retriever_id")
        if baseline in candidates:
            raise problem(f"{shown(baseline)} is the baseline too")
        return candidates

    @property
    def filter(self) -> SessionFilter:
        return self.session_filter or SessionFilter()

    @property
    def sampling_filter(self) -> SamplingFilter:
        """The filter the benchmark_sessions asset (and a plan's pilot) samples with."""
        given = self.filter
        time_range = given.time_range or TimeRange()
        return SamplingFilter(
            retriever_ids=_optional_tuple(given.retriever_ids),
            taxonomy_node_ids=_optional_tuple(given.taxonomy_node_ids),
            start=_utc(time_range.start),
            end=_utc(time_range.end),
            min_interactions=given.min_interactions,
            counted_types=given.counted_types,
            strategy=given.sample_strategy,
        )

    @property
    def inference_settings(self) -> InferenceSettings:
        return InferenceSettings(
            unit=self.inference_unit,
            min_clusters=self.min_clusters,
            max_failure_excess=self.max_failure_excess,
            seed=self.seed,
        )

    def estimator_choice(self, click_model: dict[str, Any] | None) -> EstimatorChoice:
        """The estimator this request is scored by, given the logs' click model."""
        return choose_estimator(
            self.estimator, click_model, self.propensity_clip, self.min_coverage
        )

    @property
    def retriever_ids(self) -> tuple[str, ...]:
        """The retrievers compared: the baseline first, then each candidate."""
        return (self.baseline_retriever_id, *self.candidate_retriever_ids)

    @property
    def sample_strategy(self) -> str:
        return self.filter.sample_strategy

    @property
    def min_interactions(self) -> int:
        return self.filter.min_interactions

    @property
    def weights(self) -> dict[str, float]:
        return self.filter.weights

    @property
    def counted_types(self) -> frozenset[str]:
        return self.filter.counted_types

    def session_filter_record(self) -> dict[str, Any]:
        """SessionFilter as the record shows it: every field, defaults filled in."""
        given = self.filter
        return {
            "retriever_ids": given.retriever_ids,
            "taxonomy_node_ids": given.taxonomy_node_ids,
            "time_range": given.time_range.model_dump() if given.time_range else None,
            "min_interactions": given.min_interactions,
            "interaction_types": given.interaction_types,
            "sample_strategy": given.sample_strategy,
            "interaction_weights": {"weights": self.weights},
        }

    def stored(self) -> dict[str, Any]:
        """The normalized request as it is stored: what was given, defaults filled in."""
        return self.model_dump(mode="json")


def _optional_tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return tuple(values) if values is not None else None


def parse_request(data: Any, paths: Any = None) -> BenchmarkRequest:
    """Validate a request at a door; with paths, also check that its retrievers exist."""
    context = {PATHS: paths} if paths is not None else None
    return parse_model(BenchmarkRequest, data, RequestValidationError, context)
