"""An evaluation request (the seeds' StartEvaluationRequest plus the retriever and the extension key
judged_only) as one typed model, parsed once at every door; every problem is listed at once, as
`field: problem`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from eval_pipelines.core.datasets import list_datasets
from eval_pipelines.core.errors import InvalidRequestError
from eval_pipelines.core.paths import shown
from eval_pipelines.core.request_model import (
    PATHS,
    RequestModel,
    parse_model,
    problem,
    referenced_paths,
)
from eval_pipelines.core.retrieval.registry import load_retriever_registry

AVAILABLE_METRICS = ("precision", "recall", "f1", "f2", "map", "ndcg", "mrr")
DEFAULT_METRICS = ("precision", "recall", "f1", "map", "ndcg", "mrr")
DEFAULT_K_VALUES = (1, 5, 10, 20)
MAX_K = 1000


class EvaluationRequestError(InvalidRequestError):
    title = "invalid evaluation request"


def _k(value: Any) -> Any:
    if type(value) is not int or not 1 <= value <= MAX_K:
        raise problem(f"expected an integer from 1 to {MAX_K}, got {shown(value)}")
    return value


def _metric(value: Any) -> Any:
    if value not in AVAILABLE_METRICS:
        raise problem(f"unknown metric {shown(value)} (available: {', '.join(AVAILABLE_METRICS)})")
    return value


def _non_empty_list(what: str) -> Any:
    def check(values: Any) -> Any:
        if values is not None and (not isinstance(values, list) or not values):
            raise problem(f"expected a non-empty list of {what}")
        return values

    return check


def _listed_once(what: str, default: tuple[Any, ...]) -> Any:
    """None (the reference's `null`) means the default."""

    def check(values: list[Any] | None) -> list[Any]:
        if values is None:
            return list(default)
        if len(set(values)) != len(values):
            raise problem(f"{what} is listed twice")
        return values

    return check


K = Annotated[int, Field(ge=1, le=MAX_K), BeforeValidator(_k)]
Metric = Annotated[
    str,
    BeforeValidator(_metric),
    WithJsonSchema({"type": "string", "enum": list(AVAILABLE_METRICS)}),
]


class EvaluationConfig(RequestModel):
    """Which cut-offs and measures; stored sorted (k) and in the canonical order (metrics)."""

    k_values: Annotated[
        list[K] | None,
        BeforeValidator(_non_empty_list("integers")),
        AfterValidator(_listed_once("a value", DEFAULT_K_VALUES)),
        AfterValidator(sorted),
    ] = Field(default=list(DEFAULT_K_VALUES))
    metrics: Annotated[
        list[Metric] | None,
        BeforeValidator(_non_empty_list("metric names")),
        AfterValidator(_listed_once("a metric", DEFAULT_METRICS)),
        AfterValidator(lambda given: [m for m in AVAILABLE_METRICS if m in given]),
    ] = Field(
        default=list(DEFAULT_METRICS),
    )


def _required(what: str) -> Any:
    def check(value: Any) -> Any:
        if not isinstance(value, str) or not value:
            raise problem(f"required ({what})")
        return value

    return check


class EvaluationRequest(RequestModel):
    """The retriever to evaluate, the dataset and StartEvaluationRequest's evaluation_config."""

    retriever_id: Annotated[str, BeforeValidator(_required("a retriever id"))]
    dataset_name: Annotated[
        str, Field(min_length=1), BeforeValidator(_required("a dataset name, 1 character or more"))
    ]
    evaluation_config: Annotated[
        EvaluationConfig | None, AfterValidator(lambda given: given or EvaluationConfig())
    ] = Field(default_factory=EvaluationConfig)
    judged_only: bool = Field(
        default=False,
        description="Condensed lists (trec_eval -J): drop the documents the dataset does not"
        " judge from each ranking before any measure, so unjudged documents are not counted as"
        " non-relevant. judged@k is still measured on the ranking as retrieved.",
    )

    @field_validator("retriever_id")
    @classmethod
    def _retriever_exists(cls, retriever_id: str, info: ValidationInfo) -> str:
        paths = referenced_paths(info)
        if paths is not None:
            found = load_retriever_registry(paths).problem_for(retriever_id)
            if found is not None:
                raise problem(found)
        return retriever_id

    @field_validator("dataset_name")
    @classmethod
    def _dataset_exists(cls, dataset_name: str, info: ValidationInfo) -> str:
        paths = referenced_paths(info)
        if paths is not None:
            datasets = {d.name for d in list_datasets(paths)}
            if dataset_name not in datasets:
                known = (
                    ", ".join(sorted(datasets))
                    or "none imported; use `eval-pipelines dataset import`"
                )
                raise problem(f"unknown dataset {shown(dataset_name)} (known: {known})")
        return dataset_name

    @property
    def k_values(self) -> tuple[int, ...]:
        return tuple(self._config.k_values)

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self._config.metrics)

    @property
    def settings(self) -> dict[str, Any]:
        """The extension settings, as the record shows them."""
        return {"judged_only": self.judged_only}

    @property
    def config(self) -> dict[str, Any]:
        return self._config.model_dump()

    @property
    def _config(self) -> EvaluationConfig:
        return self.evaluation_config or EvaluationConfig()

    def stored(self) -> dict[str, Any]:
        """The normalized request as it is stored: what was given, defaults filled in."""
        return self.model_dump(mode="json")


def parse_evaluation_request(data: Any, paths: Any = None) -> EvaluationRequest:
    """Validate a request at a door; with paths, also check that its retriever and dataset exist."""
    context = {PATHS: paths} if paths is not None else None
    return parse_model(EvaluationRequest, data, EvaluationRequestError, context)
