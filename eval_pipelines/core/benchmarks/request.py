"""A benchmark request: validated completely before anything is created, every violation listed."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from eval_pipelines.core.benchmarks.inference import (
    DEFAULT_MAX_FAILURE_EXCESS,
    DEFAULT_MIN_CLUSTERS,
    INFERENCE_UNITS,
    UNIT_QUERY,
    InferenceSettings,
)
from eval_pipelines.core.benchmarks.sampling import SessionFilter
from eval_pipelines.core.errors import InvalidInputError, InvalidRequestError
from eval_pipelines.core.json_input import JsonProblem, check_value
from eval_pipelines.core.metrics.alignment import (
    DEFAULT_DEPTH,
    counted_types,
    effective_weights,
)
from eval_pipelines.core.paths import DataPaths, shown, shown_field
from eval_pipelines.core.retrieval.registry import load_retriever_registry

DEFAULT_SESSION_COUNT = 1000
DEFAULT_SEED = 0
DEFAULT_EPSILON = 0.01
# Gains are summed over up to 1,000 ranks: far below float overflow, and only their ratios matter.
MAX_WEIGHT = 1e6
# Keys beyond the reference request; each one is recorded with the benchmark.
EXTENSION_KEYS = {
    "seed",
    "replay_depth",
    "epsilon",
    "inference_unit",
    "query_key",
    "min_clusters",
    "max_failure_excess",
}
QUERY_KEYS = ("text", "text_and_filters")
MAX_MIN_CLUSTERS = 10_000


class RequestValidationError(InvalidRequestError):
    title = "invalid benchmark request"


@cache
def request_schema() -> dict[str, Any]:
    text = resources.files("eval_pipelines.contracts").joinpath("create_benchmark.request.json")
    return json.loads(text.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class BenchmarkRequest:
    """The request as given (`raw`, stored and echoed in the record) plus its resolved settings."""

    raw: dict[str, Any]
    benchmark_name: str
    baseline_retriever_id: str
    candidate_retriever_ids: tuple[str, ...]
    session_count: int
    retriever_ids: tuple[str, ...] | None
    taxonomy_node_ids: tuple[str, ...] | None
    start: datetime | None
    end: datetime | None
    min_interactions: int
    interaction_types: tuple[str, ...] | None
    sample_strategy: str
    weights: dict[str, float] = field(default_factory=dict)
    seed: int = DEFAULT_SEED
    replay_depth: int = DEFAULT_DEPTH
    epsilon: float = DEFAULT_EPSILON
    inference_unit: str = UNIT_QUERY
    query_key: str = QUERY_KEYS[0]
    min_clusters: int = DEFAULT_MIN_CLUSTERS
    max_failure_excess: float = DEFAULT_MAX_FAILURE_EXCESS

    @property
    def sampling_filter(self) -> SessionFilter:
        """The filter the benchmark_sessions asset (and a plan's pilot) samples with."""
        return SessionFilter(
            retriever_ids=self.retriever_ids,
            taxonomy_node_ids=self.taxonomy_node_ids,
            start=self.start,
            end=self.end,
            min_interactions=self.min_interactions,
            counted_types=self.counted_types,
            strategy=self.sample_strategy,
        )

    @property
    def inference_settings(self) -> InferenceSettings:
        return InferenceSettings(
            unit=self.inference_unit,
            min_clusters=self.min_clusters,
            max_failure_excess=self.max_failure_excess,
            seed=self.seed,
        )

    @property
    def pipeline_ids(self) -> tuple[str, ...]:
        return (self.baseline_retriever_id, *self.candidate_retriever_ids)

    @property
    def counted_types(self) -> frozenset[str]:
        return counted_types(self.interaction_types, self.weights)

    def session_filter_record(self) -> dict[str, Any]:
        """SessionFilter as the record shows it: every field, defaults filled in."""
        session_filter = self.raw.get("session_filter") or {}
        return {
            "retriever_ids": list(self.retriever_ids) if self.retriever_ids is not None else None,
            "taxonomy_node_ids": (
                list(self.taxonomy_node_ids) if self.taxonomy_node_ids is not None else None
            ),
            "time_range": session_filter.get("time_range"),
            "min_interactions": self.min_interactions,
            "interaction_types": (
                list(self.interaction_types) if self.interaction_types is not None else None
            ),
            "sample_strategy": self.sample_strategy,
            "interaction_weights": {"weights": dict(self.weights)},
        }


def _leaf_errors(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """An anyOf(object, null) failure says little; the object branch's own errors name the field."""
    relevant = [
        e
        for e in error.context or []
        if not (e.validator == "type" and e.validator_value == "null")
    ]
    if not relevant:
        return [error]
    return [leaf for e in relevant for leaf in _leaf_errors(e)]


def _location(error: jsonschema.ValidationError) -> str:
    return ".".join(shown_field(part) for part in error.absolute_path) or "(request)"


def _schema_problem(error: jsonschema.ValidationError) -> str:
    """jsonschema quotes the whole offending value; a huge one is shortened."""
    message = error.message.replace(repr(error.instance), shown(error.instance))
    return f"{_location(error)}: {message}"


def _timestamp(value: Any, field_name: str, problems: list[str]) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"{field_name}: {shown(value)} is not an ISO 8601 date-time")
        return None
    try:
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except OverflowError:
        problems.append(
            f"{field_name}: {shown(value)} is outside years 1 to 9999 once converted to UTC"
        )
        return None


def _unknown_retrievers(paths: DataPaths, baseline: Any, candidates: Any) -> list[str]:
    """A problem for each requested retriever no usable file defines (naming the broken files
    that may define it); a broken file defining another retriever does not stop this request."""
    registry = load_retriever_registry(paths)
    problems: list[str] = []
    wanted = [baseline] + (candidates if isinstance(candidates, list) else [])
    for index, retriever_id in enumerate(wanted):
        if not isinstance(retriever_id, str):
            continue
        if not registry.configs and not registry.problems:
            problems.append(
                f"{'baseline_retriever_id' if index == 0 else 'candidate_retriever_ids'}: "
                f"no retrievers are configured in {paths.retrievers_dir}"
            )
            break
        problem = registry.problem_for(retriever_id)
        if problem is not None:
            where = (
                "baseline_retriever_id" if index == 0 else f"candidate_retriever_ids.{index - 1}"
            )
            problems.append(f"{where}: {problem}")
    return problems


def parse_request(
    data: Any, paths: DataPaths, *, check_references: bool = True
) -> BenchmarkRequest:
    """Validate a request (schema, then meaning) and resolve its settings; raise with every problem.

    check_references=False skips what depends on the data directory (do the retrievers exist?): a
    request accepted earlier was checked against it then, and its run reports what changed since.
    """
    if not isinstance(data, dict):
        raise RequestValidationError(
            [f"(request): expected a JSON object, got {type(data).__name__}"]
        )
    try:
        check_value(data)
    except JsonProblem as exc:
        raise RequestValidationError([str(exc)]) from None
    validator = jsonschema.Draft202012Validator(request_schema())
    problems = [
        _schema_problem(leaf)
        for error in sorted(
            validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))
        )
        for leaf in _leaf_errors(error)
    ]
    known = set(request_schema()["properties"]) | EXTENSION_KEYS
    problems += [
        f"{shown_field(key)}: unknown field (known: {', '.join(sorted(known))})"
        for key in sorted(set(data) - known)
    ]
    session_filter = data.get("session_filter") or {}
    if not isinstance(session_filter, dict):
        raise RequestValidationError(problems)

    session_count = data.get("session_count", DEFAULT_SESSION_COUNT)
    if isinstance(session_count, float):
        problems.append(f"session_count: expected an integer, got {shown(session_count)}")
    min_interactions = session_filter.get("min_interactions", 1)
    if isinstance(min_interactions, float):
        problems.append(
            f"session_filter.min_interactions: expected an integer, got {shown(min_interactions)}"
        )
    seed = data.get("seed", DEFAULT_SEED)
    if type(seed) is not int or seed < 0:
        problems.append(f"seed: expected a non-negative integer, got {shown(seed)}")
    depth = data.get("replay_depth", DEFAULT_DEPTH)
    if type(depth) is not int or not 1 <= depth <= 1000:
        problems.append(f"replay_depth: expected an integer from 1 to 1000, got {shown(depth)}")
    epsilon = data.get("epsilon", DEFAULT_EPSILON)
    if type(epsilon) not in (int, float) or not math.isfinite(epsilon) or epsilon < 0:
        problems.append(f"epsilon: expected a finite number >= 0, got {shown(epsilon)}")

    unit = data.get("inference_unit", UNIT_QUERY)
    if unit not in INFERENCE_UNITS:
        problems.append(
            f"inference_unit: expected one of {', '.join(INFERENCE_UNITS)}, got {shown(unit)}"
        )
    query_key = data.get("query_key", QUERY_KEYS[0])
    if query_key not in QUERY_KEYS:
        problems.append(
            f"query_key: expected one of {', '.join(QUERY_KEYS)}, got {shown(query_key)}"
        )
    min_clusters = data.get("min_clusters", DEFAULT_MIN_CLUSTERS)
    if type(min_clusters) is not int or not 2 <= min_clusters <= MAX_MIN_CLUSTERS:
        problems.append(
            f"min_clusters: expected an integer from 2 to {MAX_MIN_CLUSTERS:,}, got {shown(min_clusters)}"
        )
    max_failure_excess = data.get("max_failure_excess", DEFAULT_MAX_FAILURE_EXCESS)
    if type(max_failure_excess) not in (int, float) or not 0 <= max_failure_excess <= 1:
        problems.append(
            f"max_failure_excess: expected a number from 0 to 1 (a failure rate), got"
            f" {shown(max_failure_excess)}"
        )

    interaction_weights = session_filter.get("interaction_weights") or {}
    weights_given = (
        interaction_weights.get("weights") or {} if isinstance(interaction_weights, dict) else {}
    )
    weights: dict[str, float] = {}
    if isinstance(weights_given, dict):
        for name, weight in weights_given.items():
            where = f"session_filter.interaction_weights.weights.{shown_field(name)}"
            if type(weight) not in (int, float) or not 0 <= weight <= MAX_WEIGHT:
                problems.append(
                    f"{where}: expected a finite number >= 0 and <= {MAX_WEIGHT:,.0f}, got {shown(weight)}"
                )
            else:
                weights[str(name)] = float(weight)

    time_range = session_filter.get("time_range") or {}
    start = end = None
    if isinstance(time_range, dict):
        start = _timestamp(time_range.get("start"), "session_filter.time_range.start", problems)
        end = _timestamp(time_range.get("end"), "session_filter.time_range.end", problems)
        if start and end and start > end:
            problems.append(
                f"session_filter.time_range: start {time_range['start']} is after end {time_range['end']}"
            )

    for list_field in ("retriever_ids", "taxonomy_node_ids", "interaction_types"):
        values = session_filter.get(list_field)
        if isinstance(values, list) and not values:
            problems.append(
                f"session_filter.{list_field}: an empty list matches nothing (omit it or use null)"
            )

    candidates = data.get("candidate_retriever_ids")
    baseline = data.get("baseline_retriever_id")
    if isinstance(candidates, list):
        named = [c for c in candidates if isinstance(c, str)]
        repeated = sorted({c for c in named if named.count(c) > 1})
        if repeated:
            problems.append(
                f"candidate_retriever_ids: listed more than once: {', '.join(map(shown, repeated))}"
            )
        if baseline in candidates:
            problems.append(f"candidate_retriever_ids: {shown(baseline)} is the baseline too")
    if check_references:
        problems += _unknown_retrievers(paths, baseline, candidates)
    if not problems:
        try:
            counted_types(session_filter.get("interaction_types"), effective_weights(weights))
        except InvalidInputError as exc:
            message = str(exc)
            problems.append(
                message if message.startswith("session_filter.") else f"session_filter.{message}"
            )
    if problems:
        raise RequestValidationError(problems)

    def optional_tuple(name: str) -> tuple[str, ...] | None:
        values = session_filter.get(name)
        return tuple(values) if values is not None else None

    return BenchmarkRequest(
        raw=data,
        benchmark_name=data["benchmark_name"],
        baseline_retriever_id=baseline,
        candidate_retriever_ids=tuple(candidates),
        session_count=session_count,
        retriever_ids=optional_tuple("retriever_ids"),
        taxonomy_node_ids=optional_tuple("taxonomy_node_ids"),
        start=start,
        end=end,
        min_interactions=min_interactions,
        interaction_types=optional_tuple("interaction_types"),
        sample_strategy=session_filter.get("sample_strategy", "random"),
        weights=effective_weights(weights),
        seed=seed,
        replay_depth=depth,
        epsilon=float(epsilon),
        inference_unit=unit,
        query_key=query_key,
        min_clusters=min_clusters,
        max_failure_excess=float(max_failure_excess),
    )
