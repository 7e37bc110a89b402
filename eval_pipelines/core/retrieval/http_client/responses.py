"""Reading an engine's answer: the ranking at the configured paths, and the stage statistics it reports."""

from __future__ import annotations

import json
import math
from typing import Any

from eval_pipelines.core.json_input import JsonProblem, decode_json
from eval_pipelines.core.retrieval.config import ResponseConfig
from eval_pipelines.core.retrieval.execution import ScoredDocument, StageStatistics, efficiency


class MalformedResponseError(Exception):
    """The engine answered, but not in the configured shape."""


def lookup_path(document: Any, path: str) -> Any:
    """Follow a dotted path through nested objects ("" is the document itself); None when absent."""
    if not path:
        return document
    current = document
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def _is_flat_key(path: str) -> bool:
    return bool(path) and "." not in path


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_duration(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def parse_stage_statistics(raw: Any) -> dict[str, StageStatistics]:
    """Remote statistics as {stages: {name: StageStatistics}} or {name: StageStatistics}; raises ValueError."""
    stages = raw.get("stages") if isinstance(raw, dict) and "stages" in raw else raw
    if not isinstance(stages, dict) or not stages:
        raise ValueError("expected a non-empty object of stages")
    return {str(name): _stage_statistics(name, stats) for name, stats in stages.items()}


def _stage_statistics(name: Any, stats: Any) -> StageStatistics:
    """One stage's reported statistics, each field checked; raises ValueError naming the field."""
    if not isinstance(stats, dict):
        raise ValueError(f"stages.{name}: expected an object")
    for key, check in (
        ("input_count", _is_count),
        ("output_count", _is_count),
        ("duration_ms", _is_duration),
    ):
        if not check(stats.get(key)):
            raise ValueError(f"stages.{name}.{key}: missing or invalid ({stats.get(key)!r})")
    reported = stats.get("efficiency")
    cache_hit = stats.get("cache_hit")
    error = stats.get("error")
    metadata = stats.get("metadata") or {}
    if cache_hit is not None and not isinstance(cache_hit, bool):
        raise ValueError(f"stages.{name}.cache_hit: expected a boolean or null")
    if error is not None and not isinstance(error, str):
        raise ValueError(f"stages.{name}.error: expected a string or null")
    if not isinstance(metadata, dict):
        raise ValueError(f"stages.{name}.metadata: expected an object")
    try:
        json.dumps(metadata, allow_nan=False)
    except ValueError:
        raise ValueError(f"stages.{name}.metadata: holds NaN or Infinity") from None
    return StageStatistics(
        input_count=stats["input_count"],
        output_count=stats["output_count"],
        duration_ms=float(stats["duration_ms"]),
        efficiency=float(reported)
        if _is_duration(reported)
        else efficiency(stats["input_count"], stats["output_count"]),
        cache_hit=cache_hit,
        error=error,
        metadata=metadata,
    )


class ResponseReader:
    """Reads answers in one retriever's configured shape."""

    def __init__(self, response: ResponseConfig) -> None:
        self.response = response
        self._flat_keys = _is_flat_key(response.id_field) and (
            response.score_field is None or _is_flat_key(response.score_field)
        )

    @property
    def documents_where(self) -> str:
        return self.response.documents_path or "(root)"

    def parse(self, data: bytes, limit: int) -> tuple[list[ScoredDocument], Any]:
        """(the ranking, the raw stage statistics or None); raises MalformedResponseError."""
        try:
            payload = decode_json(data)
        except JsonProblem as exc:
            raise MalformedResponseError(f"response is not valid JSON ({exc})") from None
        response = self.response
        documents = lookup_path(payload, response.documents_path)
        if not isinstance(documents, list):
            raise MalformedResponseError(
                f"{self.documents_where}: expected a list of documents,"
                f" got {type(documents).__name__}"
            )
        ranked = self._flat_ranking(documents, limit)
        if ranked is None:
            ranked = self._checked_ranking(documents, limit)
        statistics = (
            lookup_path(payload, response.stage_statistics_path)
            if response.stage_statistics_path
            else None
        )
        return ranked, statistics

    def _flat_ranking(self, documents: list[Any], limit: int) -> list[ScoredDocument] | None:
        """The usual answer (top-level id and score keys, string ids, numeric scores) in a few
        list passes; None when anything differs, so the checked path explains the problem."""
        if not self._flat_keys:
            return None
        response = self.response
        window = documents[:limit]
        try:
            ids = [document[response.id_field] for document in window]
            scores = (
                range(len(documents), len(documents) - len(window), -1)
                if response.score_field is None
                else [document[response.score_field] for document in window]
            )
        except (KeyError, TypeError, IndexError):
            return None
        if not all(type(i) is str and i for i in ids):
            return None
        if not all(type(s) is float or type(s) is int for s in scores):
            return None
        return [ScoredDocument(i, float(s)) for i, s in zip(ids, scores, strict=True)]

    def _checked_ranking(self, documents: list[Any], limit: int) -> list[ScoredDocument]:
        """Any configured paths, every value validated; raises MalformedResponseError."""
        response = self.response
        where = self.documents_where
        ranked = []
        for index, document in enumerate(documents[:limit]):
            document_id = lookup_path(document, response.id_field)
            if isinstance(document_id, int) and not isinstance(document_id, bool):
                document_id = str(document_id)
            if not isinstance(document_id, str) or not document_id:
                raise MalformedResponseError(
                    f"{where}[{index}].{response.id_field}: missing or not a string id"
                )
            if response.score_field is None:
                score = float(len(documents) - index)
            else:
                score = lookup_path(document, response.score_field)
                if isinstance(score, bool) or not isinstance(score, int | float):
                    raise MalformedResponseError(
                        f"{where}[{index}].{response.score_field}: missing or not a number"
                    )
            ranked.append(ScoredDocument(document_id, float(score)))
        return ranked
