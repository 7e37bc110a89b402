"""What one call's attempts become: an Execution with the ranking and stage statistics, or with its failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eval_pipelines.core.retrieval.execution import (
    ERROR_HTTP_4XX,
    ERROR_HTTP_STATUS,
    ERROR_MALFORMED_RANKING,
    ERROR_MALFORMED_RESPONSE,
    CallRecorder,
    Execution,
    ScoredDocument,
    StageStatistics,
    ranking_problem,
)
from eval_pipelines.core.retrieval.http_client.responses import (
    MalformedResponseError,
    ResponseReader,
    parse_stage_statistics,
)
from eval_pipelines.core.retrieval.http_client.retry import Attempts
from eval_pipelines.core.retrieval.http_client.secrets import body_excerpt
from eval_pipelines.core.retrieval.masking import SecretMask

HTTP_STAGE = "http"


@dataclass
class Prepared:
    """A call ready to send, with what its outcome needs; or the reason it cannot be sent."""

    call: CallRecorder
    limit: int
    mask: SecretMask
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    refusal: Execution | None = None


class _Failed(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def transport_metadata(seen: Attempts) -> dict[str, Any]:
    """How the call went on the wire, kept in the http stage's metadata."""
    transport: dict[str, Any] = {"attempts": seen.count, "status": seen.status or None}
    if seen.resent:
        transport["resent_after_closed_connection"] = seen.resent
    if seen.waits_s:
        transport["retry_waits_ms"] = [wait_s * 1000.0 for wait_s in seen.waits_s]
    return transport


def call_outcome(
    prepared: Prepared, seen: Attempts, reader: ResponseReader, display_url: str
) -> Execution:
    """The Execution of a sent call; every message is masked and names the (redacted) URL."""
    call, mask = prepared.call, prepared.mask
    call_ms = call.elapsed_ms()
    transport = transport_metadata(seen)
    try:
        documents, raw_statistics = _answered_ranking(prepared, seen, reader)
    except _Failed as failed:
        message = mask(f"POST {display_url}: {failed.message}")
        stage = StageStatistics.measured(0, 0, call_ms, error=message, metadata=transport)
        return call.failed(failed.error_type, message, {HTTP_STAGE: stage}, seen.count)
    stages, warnings = _reported_stages(raw_statistics, mask)
    if stages is None:
        metadata: dict[str, Any] = dict(transport)
        if warnings:
            metadata["warnings"] = warnings
        stages = {
            HTTP_STAGE: StageStatistics.measured(
                len(documents), len(documents), call_ms, metadata=metadata
            )
        }
    call.total_stages = len(stages)
    return call.completed(documents, stages, seen.count)


def _answered_ranking(
    prepared: Prepared, seen: Attempts, reader: ResponseReader
) -> tuple[list[ScoredDocument], Any]:
    """The ranking and raw statistics of a final 2xx answer; raises _Failed saying why not."""
    if seen.failure is not None:
        raise _Failed(seen.failure.error_type, f"{seen.failure.message} ({seen.count} attempt(s))")
    status = seen.status
    if not 200 <= status <= 299:
        error_type = ERROR_HTTP_4XX if 400 <= status <= 499 else ERROR_HTTP_STATUS
        raise _Failed(error_type, f"HTTP {status}: {body_excerpt(seen.body, prepared.mask)}")
    try:
        documents, raw_statistics = reader.parse(seen.body, prepared.limit)
    except MalformedResponseError as exc:
        raise _Failed(ERROR_MALFORMED_RESPONSE, f"malformed response: {exc}") from None
    response = reader.response
    problem = ranking_problem(
        documents, reader.documents_where, response.id_field, response.score_field or "score"
    )
    if problem is not None:
        raise _Failed(ERROR_MALFORMED_RANKING, f"malformed ranking: {problem}")
    return documents, raw_statistics


def _reported_stages(
    raw: Any, mask: SecretMask
) -> tuple[dict[str, StageStatistics] | None, list[str]]:
    """The engine's own stage statistics, masked, or None with the warning saying why not."""
    if raw is None:
        return None, []
    try:
        return parse_stage_statistics(mask.json(raw) if mask else raw), []
    except ValueError as exc:
        return None, [mask(f"stage_statistics ignored: {exc}")]
