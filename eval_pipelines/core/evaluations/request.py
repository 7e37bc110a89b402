"""An evaluation request (the seeds' StartEvaluationRequest plus the retriever), validated in full."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eval_pipelines.core.datasets import list_datasets
from eval_pipelines.core.errors import InvalidRequestError
from eval_pipelines.core.json_input import JsonProblem, check_value
from eval_pipelines.core.paths import shown, shown_field
from eval_pipelines.core.retrieval.registry import load_retriever_registry

AVAILABLE_METRICS = ("precision", "recall", "f1", "f2", "map", "ndcg", "mrr")
DEFAULT_METRICS = ("precision", "recall", "f1", "map", "ndcg", "mrr")
DEFAULT_K_VALUES = (1, 5, 10, 20)
MAX_K = 1000
KNOWN_KEYS = {"retriever_id", "dataset_name", "evaluation_config"}


class EvaluationRequestError(InvalidRequestError):
    title = "invalid evaluation request"


@dataclass(frozen=True)
class EvaluationRequest:
    raw: dict[str, Any]
    retriever_id: str
    dataset_name: str
    k_values: tuple[int, ...]
    metrics: tuple[str, ...]

    @property
    def config(self) -> dict[str, Any]:
        return {"k_values": list(self.k_values), "metrics": list(self.metrics)}


def _k_values(value: Any, problems: list[str]) -> tuple[int, ...]:
    if value is None:
        return DEFAULT_K_VALUES
    if not isinstance(value, list) or not value:
        problems.append("evaluation_config.k_values: expected a non-empty list of integers")
        return ()
    for index, k in enumerate(value):
        if type(k) is not int or not 1 <= k <= MAX_K:
            problems.append(
                f"evaluation_config.k_values.{index}: expected an integer from 1 to {MAX_K}, got {shown(k)}"
            )
    if len(set(map(repr, value))) != len(value):
        problems.append("evaluation_config.k_values: a value is listed twice")
    return tuple(sorted(k for k in value if type(k) is int))


def _metrics(value: Any, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_METRICS
    if not isinstance(value, list) or not value:
        problems.append("evaluation_config.metrics: expected a non-empty list of metric names")
        return ()
    for index, name in enumerate(value):
        if name not in AVAILABLE_METRICS:
            problems.append(
                f"evaluation_config.metrics.{index}: unknown metric {shown(name)} (available: {', '.join(AVAILABLE_METRICS)})"
            )
    if len(set(map(repr, value))) != len(value):
        problems.append("evaluation_config.metrics: a metric is listed twice")
    return tuple(m for m in AVAILABLE_METRICS if m in value)


def _unknown_references(paths: Any, retriever_id: Any, dataset_name: Any) -> list[str]:
    """A problem for a retriever or a dataset the data directory does not hold."""
    problems: list[str] = []
    if isinstance(retriever_id, str) and retriever_id:
        problem = load_retriever_registry(paths).problem_for(retriever_id)
        if problem is not None:
            problems.append(f"retriever_id: {problem}")
    datasets = {d.name for d in list_datasets(paths)}
    if isinstance(dataset_name, str) and dataset_name and dataset_name not in datasets:
        known = ", ".join(sorted(datasets)) or "none imported; use `eval-pipelines dataset import`"
        problems.append(f"dataset_name: unknown dataset {shown(dataset_name)} (known: {known})")
    return problems


def parse_evaluation_request(
    data: Any, paths: Any, *, check_references: bool = True
) -> EvaluationRequest:
    """Validate a request completely; check_references=False skips whether the retriever and the
    dataset exist (a request accepted earlier was checked then; its run reports what changed)."""
    if not isinstance(data, dict):
        raise EvaluationRequestError([f"(request): expected an object, got {type(data).__name__}"])
    try:
        check_value(data)
    except JsonProblem as exc:
        raise EvaluationRequestError([str(exc)]) from None
    problems = [
        f"{shown_field(key)}: unknown field (known: {', '.join(sorted(KNOWN_KEYS))})"
        for key in sorted(set(data) - KNOWN_KEYS)
    ]
    retriever_id, dataset_name = data.get("retriever_id"), data.get("dataset_name")
    config = data.get("evaluation_config") or {}
    if not isinstance(config, dict):
        problems.append("evaluation_config: expected an object")
        config = {}
    problems += [
        f"evaluation_config.{shown_field(key)}: unknown field"
        for key in sorted(set(config) - {"k_values", "metrics"})
    ]
    k_values = _k_values(config.get("k_values"), problems)
    metrics = _metrics(config.get("metrics"), problems)
    if not isinstance(retriever_id, str) or not retriever_id:
        problems.append("retriever_id: required (a retriever id)")
    if not isinstance(dataset_name, str) or not dataset_name:
        problems.append("dataset_name: required (a dataset name, 1 character or more)")
    if check_references:
        problems += _unknown_references(paths, retriever_id, dataset_name)
    if problems:
        raise EvaluationRequestError(problems)
    return EvaluationRequest(data, retriever_id, dataset_name, k_values, metrics)
