"""Pipeline stage parameters: validated once at config time, defaults filled in, so equivalent spellings hash the same.

Query filters at run time are checked by the same rules (normalize_condition).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from eval_pipelines.core.retrieval.bm25_index import BM25_METHODS, STEMMERS, STOPWORDS
from eval_pipelines.core.retrieval.collections import BOOL, ID_COLUMN, NUMERIC, STRING

FEATURE_SEARCH = "feature_search"
ATTRIBUTE_FILTER = "attribute_filter"
SORT_ATTRIBUTE = "sort_attribute"
RERANK = "rerank"
LIMIT = "limit"
DEDUPLICATE = "deduplicate"

FILTER_OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in")
SORT_ORDERS = ("asc", "desc")
NORMALIZATIONS = ("minmax", "none")

ColumnKinds = Mapping[str, str] | None
"""Column name -> kind of the target collection, or None when columns cannot be checked."""

_MISSING: Any = object()


class StageParameterError(ValueError):
    """A bad stage parameter; `field` is its path inside `parameters` (e.g. `where.price.gte`)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _check_keys(raw: Mapping[str, Any], allowed: Sequence[str], prefix: str = "") -> None:
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise StageParameterError(
            f"{prefix}{unknown[0]}",
            f"unknown key (valid keys: {', '.join(allowed)})",
        )


def _int(raw: Mapping[str, Any], key: str, default: Any = _MISSING, minimum: int = 0) -> int:
    value = raw.get(key, default)
    if value is _MISSING:
        raise StageParameterError(key, "required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise StageParameterError(key, f"expected an integer, got {_type_name(value)}")
    if value < minimum:
        raise StageParameterError(key, f"must be >= {minimum}, got {value}")
    return value


def _number(value: object, field: str, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise StageParameterError(field, f"expected a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise StageParameterError(field, f"must be >= {minimum}, got {value}")
    return float(value)


def _choice(raw: Mapping[str, Any], key: str, choices: Sequence[str], default: str) -> str:
    value = raw.get(key, default)
    if value not in choices:
        raise StageParameterError(key, f"expected one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _column(
    name: object, columns: ColumnKinds, field: str, kinds: Sequence[str] | None = None
) -> str:
    if not isinstance(name, str) or not name:
        raise StageParameterError(field, f"expected a column name, got {_type_name(name)}")
    if columns is None:
        return name
    if name not in columns:
        raise StageParameterError(
            field, f"unknown column {name!r} (columns: {', '.join(sorted(columns))})"
        )
    if kinds is not None and columns[name] not in kinds:
        raise StageParameterError(
            field, f"column {name!r} is {columns[name]}, expected {' or '.join(kinds)}"
        )
    return name


def coerce_filter_value(kind: str | None, value: object, field: str) -> Any:
    """A filter value in the column's own type, so `12`, `12.0` and `"12"` mean one thing."""
    if value is None:
        return None
    if isinstance(value, list | dict):
        raise StageParameterError(field, f"expected a single value, got {_type_name(value)}")
    if kind == STRING:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise StageParameterError(field, f"expected a string, got {value!r}")
    if kind == NUMERIC:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise StageParameterError(field, f"expected a number, got {value!r}") from None
        return _number(value, field)
    if kind == BOOL:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise StageParameterError(field, f"expected true or false, got {value!r}")
    if not isinstance(value, str | int | float | bool):
        raise StageParameterError(field, f"expected a scalar, got {_type_name(value)}")
    return value


def normalize_condition(field: str, spec: object, kind: str | None, path: str) -> dict[str, Any]:
    """`v` -> {eq: v}; `[a, b]` -> {in: [a, b]}; `{op: v, ...}` checked; values coerced to the column."""
    if isinstance(spec, list):
        spec = {"in": spec}
    elif not isinstance(spec, dict):
        spec = {"eq": spec}
    if not spec:
        raise StageParameterError(
            path, f"no operator for {field!r} (valid: {', '.join(FILTER_OPERATORS)})"
        )
    normalized: dict[str, Any] = {}
    for op in sorted(spec, key=str):
        value = spec[op]
        where = f"{path}.{op}"
        if op not in FILTER_OPERATORS:
            raise StageParameterError(
                where, f"unknown operator (valid: {', '.join(FILTER_OPERATORS)})"
            )
        if op == "in":
            if not isinstance(value, list):
                raise StageParameterError(where, f"expected a list, got {_type_name(value)}")
            items = [coerce_filter_value(kind, v, f"{where}[{i}]") for i, v in enumerate(value)]
            if any(v is None for v in items):
                raise StageParameterError(where, "null is not allowed in a list (use eq: null)")
            normalized[op] = items
        else:
            coerced = coerce_filter_value(kind, value, where)
            if coerced is None and op not in ("eq", "ne"):
                raise StageParameterError(where, f"{op} needs a value, got null")
            normalized[op] = coerced
    return normalized


def normalize_conditions(
    where: object, columns: ColumnKinds, path: str
) -> dict[str, dict[str, Any]]:
    if not isinstance(where, dict):
        raise StageParameterError(path, f"expected an object, got {_type_name(where)}")
    return {
        field: normalize_condition(
            field,
            where[field],
            columns[_column(field, columns, f"{path}.{field}")] if columns is not None else None,
            f"{path}.{field}",
        )
        for field in sorted(where, key=str)
    }


def _feature_search_parameters(raw: Mapping[str, Any], columns: ColumnKinds) -> dict[str, Any]:
    _check_keys(raw, ("fields", "top_k", "k1", "b", "method", "stemmer", "stopwords"))
    fields = raw.get("fields", _MISSING)
    if fields is _MISSING:
        raise StageParameterError("fields", "required (the text columns to search)")
    if not isinstance(fields, list) or not fields:
        raise StageParameterError("fields", f"expected a non-empty list, got {_type_name(fields)}")
    checked = [_column(f, columns, f"fields[{i}]", (STRING,)) for i, f in enumerate(fields)]
    if len(set(checked)) != len(checked):
        raise StageParameterError("fields", "a field is listed twice")
    return {
        "fields": checked,
        "top_k": _int(raw, "top_k", 100, minimum=1),
        "k1": _number(raw.get("k1", 1.5), "k1", minimum=0.0),
        "b": _number(raw.get("b", 0.75), "b", minimum=0.0),
        "method": _choice(raw, "method", BM25_METHODS, "lucene"),
        "stemmer": _choice(raw, "stemmer", STEMMERS, "english"),
        "stopwords": _choice(raw, "stopwords", STOPWORDS, "en"),
    }


def _attribute_filter_parameters(raw: Mapping[str, Any], columns: ColumnKinds) -> dict[str, Any]:
    _check_keys(raw, ("fields", "where"))
    fields = raw.get("fields")
    if fields is not None:
        if not isinstance(fields, list):
            raise StageParameterError("fields", f"expected a list, got {_type_name(fields)}")
        fields = sorted({_column(f, columns, f"fields[{i}]") for i, f in enumerate(fields)})
    return {"fields": fields, "where": normalize_conditions(raw.get("where", {}), columns, "where")}


def _sort_attribute_parameters(raw: Mapping[str, Any], columns: ColumnKinds) -> dict[str, Any]:
    _check_keys(raw, ("attribute", "order"))
    if "attribute" not in raw:
        raise StageParameterError("attribute", "required (the column to sort by)")
    return {
        "attribute": _column(raw["attribute"], columns, "attribute"),
        "order": _choice(raw, "order", SORT_ORDERS, "desc"),
    }


def _rerank_parameters(raw: Mapping[str, Any], columns: ColumnKinds) -> dict[str, Any]:
    _check_keys(raw, ("score_weight", "weights", "normalize"))
    weights = raw.get("weights", {})
    if not isinstance(weights, dict):
        raise StageParameterError("weights", f"expected an object, got {_type_name(weights)}")
    return {
        "score_weight": _number(raw.get("score_weight", 1.0), "score_weight"),
        "weights": {
            _column(name, columns, f"weights.{name}", (NUMERIC, BOOL)): _number(
                weights[name], f"weights.{name}"
            )
            for name in sorted(weights, key=str)
        },
        "normalize": _choice(raw, "normalize", NORMALIZATIONS, "minmax"),
    }


def _limit_parameters(raw: Mapping[str, Any], columns: ColumnKinds) -> dict[str, Any]:
    _check_keys(raw, ("n",))
    return {"n": _int(raw, "n", minimum=0)}


def _deduplicate_parameters(raw: Mapping[str, Any], columns: ColumnKinds) -> dict[str, Any]:
    _check_keys(raw, ("field",))
    return {"field": _column(raw.get("field", ID_COLUMN), columns, "field")}


PARAMETER_NORMALIZERS: dict[str, Callable[[Mapping[str, Any], ColumnKinds], dict[str, Any]]] = {
    FEATURE_SEARCH: _feature_search_parameters,
    ATTRIBUTE_FILTER: _attribute_filter_parameters,
    SORT_ATTRIBUTE: _sort_attribute_parameters,
    RERANK: _rerank_parameters,
    LIMIT: _limit_parameters,
    DEDUPLICATE: _deduplicate_parameters,
}
STAGE_IDS = tuple(PARAMETER_NORMALIZERS)


def normalize_stage_parameters(
    stage_id: str, raw: Mapping[str, Any], columns: ColumnKinds
) -> dict[str, Any]:
    """Checked parameters with every default filled in (what pipeline_hash sees)."""
    if stage_id not in PARAMETER_NORMALIZERS:
        raise StageParameterError(
            "stage_id", f"unknown stage {stage_id!r} (valid: {', '.join(STAGE_IDS)})"
        )
    return PARAMETER_NORMALIZERS[stage_id](raw, columns)
