"""Pipeline stages: their parameters (validated, defaults filled in) and how they transform candidates.

Parameters are normalised once at config time so that equivalent spellings hash the same; at run
time a stage maps (candidate rows, scores) to new ones and reports metadata for StageStatistics.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.retrieval.bm25_index import (
    BM25_METHODS,
    STEMMERS,
    STOPWORDS,
    BM25Settings,
    get_index,
)
from eval_pipelines.core.retrieval.collections import BOOL, ID_COLUMN, NUMERIC, STRING, Collection

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


@dataclass
class Candidates:
    """Documents still in play, in ranked order: rows of the collection and their scores."""

    rows: np.ndarray
    scores: np.ndarray
    full: bool = False

    @classmethod
    def everything(cls, size: int) -> Candidates:
        return cls(np.arange(size, dtype=np.int64), np.zeros(size, dtype=np.float64), full=True)

    def __len__(self) -> int:
        return len(self.rows)

    def select(self, positions: np.ndarray) -> Candidates:
        return Candidates(self.rows[positions], self.scores[positions])


class Stage(ABC):
    """One configured stage bound to a collection."""

    def __init__(
        self, name: str, stage_id: str, parameters: dict[str, Any], collection: Collection
    ) -> None:
        self.name = name
        self.stage_id = stage_id
        self.parameters = parameters
        self.collection = collection

    @abstractmethod
    def run(
        self, candidates: Candidates, query_input: Mapping[str, Any]
    ) -> tuple[Candidates, dict[str, Any]]:
        """New candidates and metadata for this stage's statistics."""


class FeatureSearchStage(Stage):
    """BM25 over the chosen fields; replaces scores with BM25 scores of documents that match."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        p = self.parameters
        self.top_k: int = p["top_k"]
        self.settings = BM25Settings(
            fields=tuple(p["fields"]),
            k1=p["k1"],
            b=p["b"],
            method=p["method"],
            stemmer=p["stemmer"],
            stopwords=p["stopwords"],
        )
        self.index = get_index(self.collection, self.settings)

    def run(
        self, candidates: Candidates, query_input: Mapping[str, Any]
    ) -> tuple[Candidates, dict[str, Any]]:
        text = query_input.get("text") or ""
        allowed = None if candidates.full else candidates.rows
        rows, scores, query_tokens = self.index.search(text, self.top_k, allowed)
        return Candidates(rows, scores), {"index": self.index.source, "query_tokens": query_tokens}


def _values_mask(values: np.ndarray | pa.Array, kind: str, op: str, value: Any) -> np.ndarray:
    """Which values satisfy `op value`; a null never satisfies a comparison (only eq/ne null)."""
    if kind == STRING:
        assert isinstance(values, pa.Array)
        if value is None:
            result = pc.is_null(values) if op == "eq" else pc.is_valid(values)
        elif op == "in":
            result = pc.is_in(values, value_set=pa.array(value, pa.string()))
        else:
            compare = {
                "eq": pc.equal,
                "ne": pc.not_equal,
                "gt": pc.greater,
                "gte": pc.greater_equal,
                "lt": pc.less,
                "lte": pc.less_equal,
            }[op]
            result = compare(values, pa.scalar(value, pa.string()))
        return result.fill_null(False).to_numpy(zero_copy_only=False)
    assert isinstance(values, np.ndarray)
    present = ~np.isnan(values)
    if value is None:
        return ~present if op == "eq" else present
    if op == "in":
        return np.isin(values, np.asarray(value, dtype=np.float64)) & present
    number = float(value)
    with np.errstate(invalid="ignore"):
        if op == "eq":
            return values == number
        if op == "ne":
            return (values != number) & present
        if op == "gt":
            return values > number
        if op == "gte":
            return values >= number
        if op == "lt":
            return values < number
        return values <= number


class AttributeFilterStage(Stage):
    """Keep candidates matching the static `where` and the query's filters (allow-listed fields)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.where: dict[str, dict[str, Any]] = self.parameters["where"]
        allowed = self.parameters["fields"]
        self.allowed_fields: frozenset[str] | None = (
            frozenset(allowed) if allowed is not None else None
        )

    def _query_conditions(
        self, filters: Mapping[str, Any]
    ) -> tuple[list[tuple[str, dict[str, Any]]], list[str], list[str]]:
        conditions, ignored, warnings = [], [], []
        for field in sorted(filters, key=str):
            if self.allowed_fields is not None and field not in self.allowed_fields:
                ignored.append(field)
                warnings.append(
                    f"{self.name}: filter on {field!r} ignored (not in this stage's fields)"
                )
            elif field not in self.collection.kinds:
                ignored.append(field)
                warnings.append(
                    f"{self.name}: filter on {field!r} ignored (no such column in collection "
                    f"{self.collection.name!r})"
                )
            else:
                kind = self.collection.kinds[field]
                conditions.append(
                    (field, normalize_condition(field, filters[field], kind, f"filters.{field}"))
                )
        return conditions, ignored, warnings

    def run(
        self, candidates: Candidates, query_input: Mapping[str, Any]
    ) -> tuple[Candidates, dict[str, Any]]:
        filters = query_input.get("filters") or {}
        query_conditions, ignored, warnings = self._query_conditions(filters)
        conditions = list(self.where.items()) + query_conditions
        metadata: dict[str, Any] = {"applied_filters": sorted({f for f, _ in conditions})}
        if ignored:
            metadata["ignored_filters"] = ignored
            metadata["warnings"] = warnings
        if not conditions or not len(candidates):
            return candidates, metadata
        keep = np.ones(len(candidates), dtype=bool)
        for field, operations in conditions:
            kind = self.collection.require(field)
            if kind == STRING:
                values: np.ndarray | pa.Array = self.collection.arrow(field)
                if not candidates.full:
                    values = values.take(pa.array(candidates.rows))
            else:
                values = self.collection.numeric(field)
                if not candidates.full:
                    values = values[candidates.rows]
            for op, value in operations.items():
                keep &= _values_mask(values, kind, op, value)
        return candidates.select(np.flatnonzero(keep)), metadata


class SortAttributeStage(Stage):
    """Order by one column (nulls last); a stable sort, so ties keep the previous order."""

    def run(
        self, candidates: Candidates, query_input: Mapping[str, Any]
    ) -> tuple[Candidates, dict[str, Any]]:
        values = self.collection.arrow(self.parameters["attribute"])
        if not candidates.full:
            values = values.take(pa.array(candidates.rows))
        order = pc.array_sort_indices(
            values,
            order="ascending" if self.parameters["order"] == "asc" else "descending",
            null_placement="at_end",
        )
        return candidates.select(order.to_numpy()), {}


def _normalized(values: np.ndarray, method: str) -> np.ndarray:
    """Min-max to [0, 1] over the candidates (all equal -> 0); missing values count as 0."""
    present = ~np.isnan(values)
    if method == "minmax" and present.any():
        low, high = values[present].min(), values[present].max()
        values = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return np.where(present, values, 0.0)


class RerankStage(Stage):
    """New score = score_weight * norm(score) + sum(weight * norm(column)); re-sorted, ties stable."""

    def run(
        self, candidates: Candidates, query_input: Mapping[str, Any]
    ) -> tuple[Candidates, dict[str, Any]]:
        if not len(candidates):
            return candidates, {}
        method = self.parameters["normalize"]
        blended = self.parameters["score_weight"] * _normalized(candidates.scores, method)
        for column, weight in self.parameters["weights"].items():
            values = self.collection.numeric(column)[candidates.rows]
            blended = blended + weight * _normalized(values, method)
        order = np.argsort(-blended, kind="stable")
        return Candidates(candidates.rows[order], blended[order]), {}


class LimitStage(Stage):
    def run(
        self, candidates: Candidates, query_input: Mapping[str, Any]
    ) -> tuple[Candidates, dict[str, Any]]:
        n = self.parameters["n"]
        if len(candidates) <= n:
            return candidates, {}
        return Candidates(candidates.rows[:n], candidates.scores[:n]), {}


class DeduplicateStage(Stage):
    """Keep the first candidate per value of `field`; candidates with a null value are all kept."""

    def run(
        self, candidates: Candidates, query_input: Mapping[str, Any]
    ) -> tuple[Candidates, dict[str, Any]]:
        if not len(candidates):
            return candidates, {}
        values = self.collection.arrow(self.parameters["field"])
        if not candidates.full:
            values = values.take(pa.array(candidates.rows))
        codes = pc.dictionary_encode(values).indices.fill_null(-1).to_numpy(zero_copy_only=False)
        _, first = np.unique(codes, return_index=True)
        keep = np.zeros(len(codes), dtype=bool)
        keep[first] = True
        keep[codes == -1] = True
        return candidates.select(np.flatnonzero(keep)), {}


STAGE_CLASSES: dict[str, type[Stage]] = {
    FEATURE_SEARCH: FeatureSearchStage,
    ATTRIBUTE_FILTER: AttributeFilterStage,
    SORT_ATTRIBUTE: SortAttributeStage,
    RERANK: RerankStage,
    LIMIT: LimitStage,
    DEDUPLICATE: DeduplicateStage,
}


def build_stage(
    name: str, stage_id: str, parameters: dict[str, Any], collection: Collection
) -> Stage:
    return STAGE_CLASSES[stage_id](name, stage_id, parameters, collection)
