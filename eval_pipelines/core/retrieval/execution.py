"""One retriever call and its outcome, in the shape of the seeds' ExecutionDetail."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from eval_pipelines.core.paths import shown

if TYPE_CHECKING:
    from eval_pipelines.core.retrieval.config import RetrieverConfig

COMPLETED = "completed"
FAILED = "failed"

# Stable, machine-readable failure kinds; callers branch on these, so they never change meaning.
ERROR_TIMEOUT = "timeout"
ERROR_CONNECTION = "connection_error"
ERROR_HTTP_5XX = "http_5xx"
ERROR_HTTP_4XX = "http_4xx"
ERROR_HTTP_STATUS = "http_status"
ERROR_MALFORMED_RESPONSE = "malformed_response"
# A ranking that cannot be stored as it is: a score that is not a finite number, or a document
# listed twice. The call fails rather than being cleaned up, so what is stored is always exactly
# what the retriever returned, and every export of it is a valid TREC run and valid JSON.
ERROR_MALFORMED_RANKING = "malformed_ranking"
ERROR_MISSING_SECRET = "missing_secret"
ERROR_STAGE = "stage_error"
ERROR_INVALID_QUERY = "invalid_query"


def new_execution_id() -> str:
    return "exec_" + uuid.uuid4().hex[:16]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a literal Z, as the seeds write timestamps."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def efficiency(input_count: int, output_count: int) -> float:
    return output_count / input_count if input_count else 0.0


@dataclass
class StageStatistics:
    input_count: int
    output_count: int
    duration_ms: float
    efficiency: float
    cache_hit: bool | None = None
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def measured(
        cls,
        input_count: int,
        output_count: int,
        duration_ms: float,
        *,
        cache_hit: bool | None = None,
        error: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> StageStatistics:
        """Statistics with efficiency derived from the counts, so it is never inconsistent."""
        return cls(
            input_count=input_count,
            output_count=output_count,
            duration_ms=max(0.0, duration_ms),
            efficiency=efficiency(input_count, output_count),
            cache_hit=cache_hit,
            error=error,
            metadata=metadata or {},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_count": self.input_count,
            "output_count": self.output_count,
            "duration_ms": self.duration_ms,
            "efficiency": self.efficiency,
            "cache_hit": self.cache_hit,
            "error": self.error,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageStatistics:
        return cls(
            input_count=int(data["input_count"]),
            output_count=int(data["output_count"]),
            duration_ms=float(data["duration_ms"]),
            efficiency=float(data["efficiency"]),
            cache_hit=data.get("cache_hit"),
            error=data.get("error"),
            metadata=dict(data.get("metadata") or {}),
        )


@dataclass
class ScoredDocument:
    document_id: str
    score: float


@dataclass
class Execution:
    execution_id: str
    retriever_id: str
    query_input: dict[str, Any]
    status: str
    documents: list[ScoredDocument]
    stages: dict[str, StageStatistics]
    total_time_ms: float
    created_at: datetime
    completed_at: datetime | None
    error: str | None
    error_type: str | None
    pipeline_hash: str
    total_stages: int | None = None
    attempts: int = 1

    @property
    def succeeded(self) -> bool:
        return self.status == COMPLETED

    @property
    def document_ids(self) -> list[str]:
        return [d.document_id for d in self.documents]

    @property
    def warnings(self) -> list[str]:
        """Non-fatal problems stages reported (for example a filter on an unknown field)."""
        return [w for s in self.stages.values() for w in s.metadata.get("warnings", ())]

    def to_detail(self) -> dict[str, Any]:
        """The ExecutionDetail record of the seeds (get_execution.openapi), plus query_input and hashes."""
        total = len(self.documents)
        stages_completed = sum(1 for s in self.stages.values() if s.error is None)
        return {
            "execution_id": self.execution_id,
            "retriever_id": self.retriever_id,
            "status": self.status,
            "query_input": self.query_input,
            "documents": [
                {"document_id": d.document_id, "score": d.score, "rank": rank}
                for rank, d in enumerate(self.documents, start=1)
            ],
            "pagination": {
                "total": total,
                "limit": total,
                "offset": 0,
                "has_next": False,
                "has_previous": False,
            },
            "stage_statistics": {
                "stages": {name: s.to_dict() for name, s in self.stages.items()},
                "total_time_ms": self.total_time_ms,
                "credits_used": 0,
            },
            "budget": {"credits_used": 0, "time_used_ms": self.total_time_ms},
            "created_at": iso_utc(self.created_at),
            "completed_at": iso_utc(self.completed_at),
            "error": self.error,
            "error_type": self.error_type,
            "warnings": self.warnings,
            "total_stages": self.total_stages
            if self.total_stages is not None
            else len(self.stages),
            "stages_completed": stages_completed,
            "current_stage": None,
            "pipeline_hash": self.pipeline_hash,
            "attempts": self.attempts,
        }


class Retriever(Protocol):
    """What every retriever offers: a config, one call, and many calls in order."""

    config: RetrieverConfig

    def search(
        self,
        query_input: dict[str, Any],
        limit: int | None = None,
        execution_id: str | None = None,
    ) -> Execution: ...

    def search_many(
        self, query_inputs: Sequence[dict[str, Any]], limit: int | None = None
    ) -> list[Execution]: ...

    def close(self) -> None: ...


def check_limit(limit: object) -> int | None:
    """A caller's limit must be a non-negative int (or None for the retriever's own)."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit: expected a non-negative integer or None, got {limit!r}")
    return limit


def ranking_problem(
    documents: Sequence[ScoredDocument],
    where: str = "documents",
    id_field: str = "document_id",
    score_field: str = "score",
) -> str | None:
    """Why a ranking is malformed (the first non-finite score or repeated document), or None;
    fields are named as the retriever's answer names them."""
    scores = [d.score for d in documents]
    if not all(map(math.isfinite, scores)):
        index = next(i for i, score in enumerate(scores) if not math.isfinite(score))
        return (
            f"{where}[{index}].{score_field}: {scores[index]!r} is not a finite number"
            " (NaN and Infinity cannot be ranked, stored or written as JSON)"
        )
    ids = [d.document_id for d in documents]
    if len(set(ids)) != len(ids):
        first: dict[str, int] = {}
        for index, document_id in enumerate(ids):
            if document_id in first:
                return (
                    f"{where}[{index}].{id_field}: {shown(document_id)} is listed twice"
                    f" (first at {where}[{first[document_id]}])"
                )
            first[document_id] = index
    return None


def query_problem(query_input: object) -> str | None:
    """Why a query_input breaks the contract ({text: str, filters: object optional}), or None."""
    if not isinstance(query_input, dict):
        return f"query_input: expected an object, got {type(query_input).__name__}"
    text = query_input.get("text", "")
    if text is not None and not isinstance(text, str):
        return f"query_input.text: expected a string, got {type(text).__name__}"
    filters = query_input.get("filters")
    if filters is not None and not isinstance(filters, dict):
        return f"query_input.filters: expected an object, got {type(filters).__name__}"
    return None


@dataclass
class CallRecorder:
    """Times one retriever call from its start and turns its outcome into an Execution."""

    retriever_id: str
    pipeline_hash: str
    query_input: Any
    execution_id: str | None = None
    total_stages: int | None = None
    created_at: datetime = field(default_factory=utc_now)
    started: float = field(default_factory=time.perf_counter)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

    def failed(
        self,
        error_type: str,
        error: str,
        stages: dict[str, StageStatistics] | None = None,
        attempts: int = 1,
    ) -> Execution:
        query_input = self.query_input
        return self._execution(
            status=FAILED,
            query_input=query_input
            if isinstance(query_input, dict)
            else {"raw": repr(query_input)},
            documents=[],
            stages=stages or {},
            error=error,
            error_type=error_type,
            attempts=attempts,
        )

    def completed(
        self,
        documents: list[ScoredDocument],
        stages: dict[str, StageStatistics],
        attempts: int = 1,
    ) -> Execution:
        """The completed execution, or a failed one (malformed_ranking) when the ranking breaks
        the rule every retriever obeys: finite scores, each document once."""
        problem = ranking_problem(documents)
        if problem is not None:
            return self.failed(
                ERROR_MALFORMED_RANKING, f"malformed ranking: {problem}", stages, attempts
            )
        return self._execution(
            status=COMPLETED,
            query_input=self.query_input,
            documents=documents,
            stages=stages,
            error=None,
            error_type=None,
            attempts=attempts,
        )

    def _execution(self, **outcome: Any) -> Execution:
        return Execution(
            execution_id=self.execution_id or new_execution_id(),
            retriever_id=self.retriever_id,
            total_time_ms=self.elapsed_ms(),
            created_at=self.created_at,
            completed_at=utc_now(),
            pipeline_hash=self.pipeline_hash,
            total_stages=self.total_stages,
            **outcome,
        )
