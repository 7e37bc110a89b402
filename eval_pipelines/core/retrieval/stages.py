"""Pipeline stages at run time: each maps (candidate rows, scores) to new ones and reports metadata for StageStatistics.

Their parameters were checked and normalised at config time (stage_parameters.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.retrieval.bm25_index import BM25Settings, get_index
from eval_pipelines.core.retrieval.collections import STRING, Collection
from eval_pipelines.core.retrieval.stage_parameters import (
    ATTRIBUTE_FILTER,
    DEDUPLICATE,
    FEATURE_SEARCH,
    LIMIT,
    RERANK,
    SORT_ATTRIBUTE,
    normalize_condition,
)


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
