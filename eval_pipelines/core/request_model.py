"""What every request model shares: strict pydantic parsing that lists each problem as `field: problem`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from eval_pipelines.core.errors import InvalidRequestError
from eval_pipelines.core.json_input import JsonProblem, check_value
from eval_pipelines.core.paths import shown, shown_field

JSON_TYPES = {
    "int": "integer",
    "float": "number",
    "str": "string",
    "bool": "boolean",
    "dict": "object",
    "list": "array",
    "model": "object",
}
M = TypeVar("M", bound="RequestModel")
# The data directory, in the validation context, when references (retrievers, datasets) are checked.
PATHS = "paths"


def problem(message: str) -> PydanticCustomError:
    """A rule's own message, kept verbatim (it may quote user input holding braces)."""
    return PydanticCustomError("request", "{problem}", {"problem": message})


def rooted_problem(message: str) -> PydanticCustomError:
    """A message that names its own field from the request's root (a rule of another module)."""
    return PydanticCustomError("rooted", "{problem}", {"problem": message})


def _location(error: ErrorDetails) -> str:
    return ".".join(shown_field(part) for part in error["loc"]) or "(request)"


def _phrase(error: ErrorDetails, known: Callable[[tuple], list[str]]) -> str:
    """The problem in the JSON Schema wording the CLI has always used (`100 is less than the
    minimum of 10`), so messages and exit codes do not change with the parser."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "request":
        return str(ctx["problem"])
    if kind == "missing":
        return "a required property is missing"
    if kind == "extra_forbidden":
        return f"unknown field (known: {', '.join(known(error['loc'][:-1]))})"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        json_type = JSON_TYPES.get(kind.split("_")[0], kind.split("_")[0])
        return f"{shown(value)} is not of type {json_type!r}"
    if kind == "greater_than_equal":
        return f"{shown(value)} is less than the minimum of {ctx['ge']}"
    if kind == "less_than_equal":
        return f"{shown(value)} is greater than the maximum of {ctx['le']}"
    if kind in ("string_too_short", "too_short"):
        return f"{shown(value)} should be non-empty"
    if kind in ("string_too_long", "too_long"):
        return f"{shown(value)} is too long"
    if kind == "literal_error":
        return f"{shown(value)} is not one of [{ctx['expected'].replace(' or ', ', ')}]"
    return error["msg"]


class RequestModel(BaseModel):
    """A request, or a part of one: strict JSON types, unknown fields refused, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    @classmethod
    def known_fields(cls, loc: tuple) -> list[str]:
        """The field names the model (or its nested part at loc) accepts, for `unknown field`."""
        model: type[BaseModel] = cls
        for part in loc:
            if isinstance(part, int):
                continue
            annotation = model.model_fields[str(part)].annotation
            nested = [
                t
                for t in (annotation, *getattr(annotation, "__args__", ()))
                if isinstance(t, type) and issubclass(t, BaseModel)
            ]
            if not nested:
                return []
            model = nested[0]
        return sorted(model.model_fields)


def parse_model(
    model: type[M],
    data: Any,
    error: type[InvalidRequestError],
    context: dict[str, Any] | None = None,
) -> M:
    """Validate data as model, raising `error` with every problem as `field: problem`; context
    {PATHS: paths} also checks that the retrievers and datasets it names exist."""
    if not isinstance(data, dict):
        raise error([f"(request): expected a JSON object, got {type(data).__name__}"])
    try:
        check_value(data)
    except JsonProblem as exc:
        raise error([str(exc)]) from None
    try:
        return model.model_validate(data, context=context or {})
    except ValidationError as exc:
        raise error(
            [
                str(detail["ctx"]["problem"])
                if detail["type"] == "rooted"
                else f"{_location(detail)}: {_phrase(detail, model.known_fields)}"
                for detail in exc.errors(include_url=False)
            ]
        ) from None


def referenced_paths(info: Any) -> Any:
    """The data directory to check references against, or None (a stored request: its run reports
    a retriever or dataset that vanished since the door accepted it)."""
    return (info.context or {}).get(PATHS)
