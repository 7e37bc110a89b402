"""Why a row is quarantined: the stable reasons, RowRejected carrying one, and the raw row kept with it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
INVALID_ID = "invalid_id"
BAD_TIMESTAMP = "bad_timestamp"
CONFLICTING_ALIAS = "conflicting_alias"
EMPTY_INTERACTION_TYPE = "empty_interaction_type"
NEGATIVE_POSITION = "negative_position"
UNKNOWN_EXECUTION_ID = "unknown_execution_id"
POSITION_NOT_DERIVABLE = "position_not_derivable"
DUPLICATE_EXECUTION_ID = "duplicate_execution_id"
DUPLICATE_INTERACTION_ID = "duplicate_interaction_id"
CONFLICTING_DUPLICATE_ID = "conflicting_duplicate_id"
DOCUMENT_NOT_SERVED = "document_not_served"
POSITION_OUT_OF_RANGE = "position_out_of_range"
POSITION_MISMATCH = "position_mismatch"
TIMESTAMP_BEFORE_EXECUTION = "timestamp_before_execution"
UNSUPPORTED_VALUE = "unsupported_value"

MAX_JSON_DEPTH = 64

QUARANTINE_REASONS: dict[str, str] = {
    MISSING_FIELD: "a required field is absent, null or an empty string",
    WRONG_TYPE: "a field has the wrong type (e.g. a number where a string id is expected)",
    INVALID_ID: "retriever_id is not a safe id (letters, digits, '_', '-', '.'; up to 128)",
    BAD_TIMESTAMP: "created_at / timestamp is not an ISO 8601 timestamp",
    CONFLICTING_ALIAS: "document_id and its alias feature_id are both given and differ",
    EMPTY_INTERACTION_TYPE: "interaction_type is empty, blank or an empty list",
    NEGATIVE_POSITION: "position is below 0 (positions are 0-based), or a UBI ordinal is below its base",
    UNKNOWN_EXECUTION_ID: "the interaction's execution_id is not among the ingested executions",
    POSITION_NOT_DERIVABLE: "position is absent and the document is not in the served documents",
    DUPLICATE_EXECUTION_ID: "an execution_id seen earlier in the same input with different content",
    DUPLICATE_INTERACTION_ID: "an interaction_id seen earlier in the same input with different content",
    CONFLICTING_DUPLICATE_ID: "the id is already stored (by an earlier ingest) with different content;"
    " the stored row is kept (same content after normalization is `already present`)",
    DOCUMENT_NOT_SERVED: "the interaction's document_id is not among its execution's served documents",
    POSITION_OUT_OF_RANGE: "position is beyond the execution's served documents (0-based: at most"
    " their count - 1)",
    POSITION_MISMATCH: "the served document at position is another document (document_id was served"
    " at another position)",
    TIMESTAMP_BEFORE_EXECUTION: "timestamp is strictly before the execution's created_at",
    UNSUPPORTED_VALUE: "a value no table can hold: a string with a lone surrogate (invalid Unicode),"
    f" an integer of more than 4300 digits, or JSON nested more than {MAX_JSON_DEPTH} levels deep",
}

RAW_MAX_CHARS = 10_000


class RowRejected(Exception):
    """A row breaks the contract; reason is one of QUARANTINE_REASONS, detail names field and problem."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def utf8_safe(text: str) -> str:
    """text as Parquet can store it: a lone surrogate becomes its escape (e.g. the six characters \\ud800)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def raw_json(raw: Mapping[str, Any] | str) -> str:
    """The source row for the quarantine, readable and bounded in size (text: the source line as is)."""
    if isinstance(raw, str):
        text = raw
    else:
        text = json.dumps(
            raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        )
    return utf8_safe(text[:RAW_MAX_CHARS])
