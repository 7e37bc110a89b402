"""The rules a logged row must meet to enter the normalized log tables (tables.py).

A row that breaks a rule is never dropped: it is rejected with one of the stable reasons of
quarantine.py and lands in the quarantine table with a sentence naming the field and the problem.

Field rules (both tables):
- Required ids are non-empty strings (no numbers); an optional field that is absent, null or "" is absent.
- Timestamps are ISO 8601 strings (or datetime values from Parquet); a naive timestamp is taken as UTC,
  an aware one is converted to UTC and must then lie within years 1-9999.
- Every stored string must be valid Unicode: a lone surrogate (a JSON escape such as "\\ud800" without
  its pair) cannot be written as UTF-8, in an id, a text or inside query_input / metadata.
- Fields the contract does not name are ignored (interactions keep such data in `metadata` only).

executions: `execution_id`, `retriever_id` (falls back to the ingest's default retriever id; must be a
safe id, see paths.validate_id), `session_id`, `user_id` (optional), `query_input` (an object with a
string `text` and an optional object `filters`, or a plain string meaning `{"text": ...}`; a null
`filters` counts as absent; other keys are kept), `documents` (list of document id strings in served
order, may be empty), `taxonomy_node_ids` (optional list of strings), `created_at`, `metadata`
(optional object, e.g. `{"exploration": {"method": "shuffle_top_k", "k": 12}}` for randomized traffic).

interactions: `interaction_id` (optional), `execution_id` (must name an already ingested execution),
`document_id` (alias `feature_id`), `interaction_type` (a string or a list of strings: one output row
per distinct type, lower-cased and stripped), `position` (0-based int as served; when absent it is the
document's first index in the execution's served documents), `session_id` and `user_id` (optional:
filled from the execution), `timestamp`, `metadata` (optional object).
An interaction must agree with its execution: the document was served (`documents[position]` is
`document_id`, positions 0-based) and `timestamp` is not strictly before the execution's `created_at`
(equal is fine; no allowance is made for clock skew).
A missing `interaction_id` is derived from the row's content ("int_" + 16 hex chars of a sha256), so
re-ingesting yields the same ids; a given id on a row with several types becomes "<id>:<type>".
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.logs.fields import (
    LISTS,
    canonical_json,
    field_label,
    optional_str,
    parse_timestamp,
    required_str,
    storable,
    storable_json,
    string_list,
    wrong_type,
)
from eval_pipelines.core.logs.quarantine import (
    CONFLICTING_ALIAS,
    DOCUMENT_NOT_SERVED,
    EMPTY_INTERACTION_TYPE,
    INVALID_ID,
    MISSING_FIELD,
    NEGATIVE_POSITION,
    POSITION_MISMATCH,
    POSITION_NOT_DERIVABLE,
    POSITION_OUT_OF_RANGE,
    TIMESTAMP_BEFORE_EXECUTION,
    UNKNOWN_EXECUTION_ID,
    RowRejected,
)
from eval_pipelines.core.logs.tables import ExecutionRow, InteractionRow
from eval_pipelines.core.paths import shown, validate_id

_INT32_MAX = 2**31 - 1


class InteractionDraft(NamedTuple):
    """An interaction that passed the per-row rules but still needs its execution to be completed."""

    interaction_id: str | None
    execution_id: str
    document_id: str
    interaction_types: list[str]
    position: int | None
    session_id: str | None
    user_id: str | None
    timestamp: datetime
    metadata: str | None


class LoggedExecution(NamedTuple):
    """What an interaction borrows from its execution, and what it must agree with."""

    session_id: str
    user_id: str | None
    documents: Sequence[str]
    created_at: datetime


def _query_input(fields: Mapping[str, Any], labels: Mapping[str, str]) -> tuple[str, str]:
    label = field_label(labels, "query_input")
    value = fields.get("query_input")
    if value is None:
        raise RowRejected(MISSING_FIELD, f"{label}: required field is missing")
    if isinstance(value, str):
        return storable(value, label), canonical_json({"text": value})
    if not isinstance(value, dict):
        raise wrong_type(label, "an object with a string 'text' (or a string)", value)
    query = {key: item for key, item in value.items() if not (key == "filters" and item is None)}
    text = query.get("text")
    if text is None:
        raise RowRejected(MISSING_FIELD, f"{label}.text: required field is missing")
    if not isinstance(text, str):
        raise wrong_type(f"{label}.text", "a string", text)
    filters = query.get("filters")
    if filters is not None and not isinstance(filters, dict):
        raise wrong_type(f"{label}.filters", "an object", filters)
    return storable(text, f"{label}.text"), storable_json(query, label)


def normalize_execution(
    fields: Mapping[str, Any],
    labels: Mapping[str, str],
    default_retriever_id: str | None = None,
) -> ExecutionRow:
    """Check one logged execution against the contract; raise RowRejected with the first problem."""
    execution_id = required_str(fields, "execution_id", labels)
    retriever_id = optional_str(fields, "retriever_id", labels) or default_retriever_id
    if retriever_id is None:
        raise RowRejected(
            MISSING_FIELD,
            f"{field_label(labels, 'retriever_id')}: required field is missing"
            " (or pass a default retriever id)",
        )
    try:
        validate_id(retriever_id, field_label(labels, "retriever_id"))
    except InvalidInputError as exc:
        raise RowRejected(INVALID_ID, str(exc)) from None
    session_id = required_str(fields, "session_id", labels)
    user_id = optional_str(fields, "user_id", labels)
    query_text, query_input = _query_input(fields, labels)
    documents = fields.get("documents")
    if documents is None:
        raise RowRejected(
            MISSING_FIELD, f"{field_label(labels, 'documents')}: required field is missing"
        )
    documents = string_list(documents, field_label(labels, "documents"))
    taxonomy = fields.get("taxonomy_node_ids")
    taxonomy = (
        [] if taxonomy is None else string_list(taxonomy, field_label(labels, "taxonomy_node_ids"))
    )
    created_at = parse_timestamp(fields.get("created_at"), field_label(labels, "created_at"))
    return ExecutionRow(
        execution_id,
        retriever_id,
        session_id,
        user_id,
        query_text,
        query_input,
        documents,
        taxonomy,
        created_at,
        _metadata(fields, labels),
    )


def _metadata(fields: Mapping[str, Any], labels: Mapping[str, str]) -> str | None:
    """The optional `metadata` object as canonical JSON text; one rule for both tables."""
    label = field_label(labels, "metadata")
    metadata = fields.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise wrong_type(label, "an object", metadata)
    return storable_json(metadata, label) if metadata else None


def _document_id(fields: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    document_id = optional_str(fields, "document_id", labels)
    feature_id = optional_str(fields, "feature_id", labels)
    if document_id is not None and feature_id is not None and document_id != feature_id:
        raise RowRejected(
            CONFLICTING_ALIAS,
            f"document_id {document_id!r} and its alias feature_id {feature_id!r} differ",
        )
    chosen = document_id or feature_id
    if chosen is None:
        raise RowRejected(
            MISSING_FIELD,
            f"{field_label(labels, 'document_id')}: required field is missing (alias: feature_id)",
        )
    return chosen


def _interaction_types(value: Any, label: str) -> list[str]:
    if value is None:
        raise RowRejected(MISSING_FIELD, f"{label}: required field is missing")
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, LISTS):
        raise wrong_type(label, "a string or a list of strings", value)
    if not items:
        raise RowRejected(EMPTY_INTERACTION_TYPE, f"{label}: the list of types is empty")
    types: list[str] = []
    for index, item in enumerate(items):
        item_label = label if isinstance(value, str) else f"{label}[{index}]"
        if not isinstance(item, str):
            raise wrong_type(item_label, "a string", item)
        normalized = (item if item.isascii() else storable(item, item_label)).strip().lower()
        if not normalized:
            raise RowRejected(EMPTY_INTERACTION_TYPE, f"{item_label}: the type is empty or blank")
        if normalized not in types:
            types.append(normalized)
    return types


def _position(value: Any, label: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(label, "a 0-based integer", value)
    if value < 0:
        raise RowRejected(
            NEGATIVE_POSITION, f"{label}: {value} is negative (positions are 0-based)"
        )
    if value > _INT32_MAX:
        raise wrong_type(label, "a 32-bit integer", value)
    return value


def normalize_interaction(fields: Mapping[str, Any], labels: Mapping[str, str]) -> InteractionDraft:
    """Check one interaction's own fields; its execution is checked by complete_interaction."""
    interaction_id = optional_str(fields, "interaction_id", labels)
    execution_id = required_str(fields, "execution_id", labels)
    document_id = _document_id(fields, labels)
    types = _interaction_types(
        fields.get("interaction_type"), field_label(labels, "interaction_type")
    )
    position = _position(fields.get("position"), field_label(labels, "position"))
    session_id = optional_str(fields, "session_id", labels)
    user_id = optional_str(fields, "user_id", labels)
    timestamp = parse_timestamp(fields.get("timestamp"), field_label(labels, "timestamp"))
    return InteractionDraft(
        interaction_id,
        execution_id,
        document_id,
        types,
        position,
        session_id,
        user_id,
        timestamp,
        _metadata(fields, labels),
    )


def derive_interaction_id(row: InteractionRow) -> str:
    """Content-addressed id: the same logged interaction always gets the same id.

    Fields are joined with the ASCII unit separator (cheaper than JSON on 10^5 rows).
    """
    content = "\x1f".join(
        (
            row.execution_id,
            row.document_id,
            row.interaction_type,
            str(row.position),
            row.session_id,
            row.user_id or "",
            row.timestamp.isoformat(),
            row.metadata or "",
        )
    )
    return "int_" + hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]


def _not_served_there(draft: InteractionDraft, served: Sequence[str], position: int) -> RowRejected:
    """Why documents[position] is not the interaction's document: the most basic contradiction first."""
    document = shown(draft.document_id)
    among = f"the {len(served)} documents served by execution {shown(draft.execution_id)}"
    if draft.document_id not in served:
        return RowRejected(DOCUMENT_NOT_SERVED, f"document_id: {document} is not among {among}")
    actual = served.index(draft.document_id)
    if position >= len(served):
        return RowRejected(
            POSITION_OUT_OF_RANGE,
            f"position: {position} is beyond {among} (0-based; {document} was served at {actual})",
        )
    return RowRejected(
        POSITION_MISMATCH,
        f"position: {position} holds {shown(served[position])} among {among}, not document_id"
        f" {document} (served at {actual})",
    )


def complete_interaction(
    draft: InteractionDraft, execution: LoggedExecution | None
) -> list[InteractionRow]:
    """Join a draft with its execution: fill position, session and user; one row per type."""
    if execution is None:
        raise RowRejected(
            UNKNOWN_EXECUTION_ID,
            f"execution_id {draft.execution_id!r} is not among the ingested executions"
            " (ingest executions first)",
        )
    served = execution.documents
    position = draft.position
    if position is None:
        try:
            position = served.index(draft.document_id)
        except ValueError:
            raise RowRejected(
                POSITION_NOT_DERIVABLE,
                f"position: missing, and document_id {draft.document_id!r} is not among the"
                f" {len(served)} documents served by execution {draft.execution_id!r}",
            ) from None
    elif position >= len(served) or served[position] != draft.document_id:
        raise _not_served_there(draft, served, position)
    if draft.timestamp < execution.created_at:
        gap = f"{(execution.created_at - draft.timestamp).total_seconds():,.6f}".rstrip("0")
        raise RowRejected(
            TIMESTAMP_BEFORE_EXECUTION,
            f"timestamp: {draft.timestamp.isoformat()} is {gap.rstrip('.')} s before the created_at"
            f" {execution.created_at.isoformat()} of execution {shown(draft.execution_id)}"
            " (an interaction cannot precede its search)",
        )
    session_id = draft.session_id or execution.session_id
    user_id = draft.user_id if draft.user_id is not None else execution.user_id
    several = len(draft.interaction_types) > 1
    rows = []
    for interaction_type in draft.interaction_types:
        row = InteractionRow(
            "",
            draft.execution_id,
            draft.document_id,
            interaction_type,
            position,
            session_id,
            user_id,
            draft.timestamp,
            draft.metadata,
        )
        if draft.interaction_id is None:
            interaction_id = derive_interaction_id(row)
        elif several:
            interaction_id = f"{draft.interaction_id}:{interaction_type}"
        else:
            interaction_id = draft.interaction_id
        rows.append(InteractionRow(interaction_id, *row[1:]))
    return rows
