"""The normalized log tables and the rules a row must meet to enter them.

A row that breaks a rule is never dropped: it is rejected with one of the stable reasons below and
lands in the quarantine table with a sentence naming the field and the problem.

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
order, may be empty), `taxonomy_node_ids` (optional list of strings), `created_at`.

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
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pyarrow as pa

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import shown, shown_field, validate_id

UTC_MICROS = pa.timestamp("us", tz="UTC")

EXECUTIONS_SCHEMA = pa.schema(
    [
        pa.field("execution_id", pa.string(), nullable=False),
        pa.field("retriever_id", pa.string(), nullable=False),
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string()),
        pa.field("query_text", pa.string(), nullable=False),
        pa.field("query_input", pa.string(), nullable=False),
        pa.field("documents", pa.list_(pa.string()), nullable=False),
        pa.field("taxonomy_node_ids", pa.list_(pa.string()), nullable=False),
        pa.field("created_at", UTC_MICROS, nullable=False),
    ]
)

INTERACTIONS_SCHEMA = pa.schema(
    [
        pa.field("interaction_id", pa.string(), nullable=False),
        pa.field("execution_id", pa.string(), nullable=False),
        pa.field("document_id", pa.string(), nullable=False),
        pa.field("interaction_type", pa.string(), nullable=False),
        pa.field("position", pa.int32(), nullable=False),
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string()),
        pa.field("timestamp", UTC_MICROS, nullable=False),
        pa.field("metadata", pa.string()),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("table", pa.string(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("line", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=False),
    ]
)

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
    NEGATIVE_POSITION: "position is below 0 (positions are 0-based)",
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
_INT32_MAX = 2**31 - 1


class RowRejected(Exception):
    """A row breaks the contract; reason is one of QUARANTINE_REASONS, detail names field and problem."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ExecutionRow(NamedTuple):
    """One normalized execution, fields in EXECUTIONS_SCHEMA order."""

    execution_id: str
    retriever_id: str
    session_id: str
    user_id: str | None
    query_text: str
    query_input: str
    documents: list[str]
    taxonomy_node_ids: list[str]
    created_at: datetime


class InteractionRow(NamedTuple):
    """One normalized interaction (one type), fields in INTERACTIONS_SCHEMA order."""

    interaction_id: str
    execution_id: str
    document_id: str
    interaction_type: str
    position: int
    session_id: str
    user_id: str | None
    timestamp: datetime
    metadata: str | None


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


# default=str only matters for Parquet values JSON lacks (datetimes, decimals in a metadata struct).
_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
_LISTS = (list, tuple)
_NUMBERS = (int, float)
_STR_ONLY = frozenset({str})


def canonical_json(value: Any) -> str:
    """One spelling per value, so equal content hashes and compares equal."""
    return _CANONICAL_ENCODER.encode(value)


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


def _lone_surrogate(text: str) -> int | None:
    """Index of the first lone surrogate in text (it has no UTF-8 form), None if there is none."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def _unstorable_text(label: str, text: str, index: int) -> RowRejected:
    return RowRejected(
        UNSUPPORTED_VALUE,
        f"{label}: {shown(text)} holds a lone surrogate {text[index]!r} at character {index}"
        " (not valid Unicode, so it cannot be stored as UTF-8)",
    )


def _storable(text: str, label: str) -> str:
    index = _lone_surrogate(text)
    if index is not None:
        raise _unstorable_text(label, text, index)
    return text


def _surrogate_path(value: Any, path: str) -> tuple[str, str, int] | None:
    """(path, string, index) of the first string in a JSON value holding a lone surrogate."""
    if isinstance(value, str):
        index = _lone_surrogate(value)
        return None if index is None else (path, value, index)
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{shown_field(key)}"
            found = _surrogate_path(key, f"{inner} (the key)") or _surrogate_path(item, inner)
            if found:
                return found
    elif isinstance(value, _LISTS):
        for index, item in enumerate(value):
            found = _surrogate_path(item, f"{path}[{index}]")
            if found:
                return found
    return None


def _storable_json(value: Any, label: str) -> str:
    """canonical_json(value), refusing a lone surrogate anywhere in it (the escaped text would hide it)."""
    text = canonical_json(value)
    if "\\ud" in text:  # the encoder escapes every non-ASCII UTF-16 unit, in lower case
        found = _surrogate_path(value, label)
        if found:
            raise _unstorable_text(*found)
    return text


def json_type(value: Any) -> str:
    """A value's kind in JSON words, for details a user reading their own file understands."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({value})".lower()
    if isinstance(value, _NUMBERS):
        return f"a number ({value})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, _LISTS):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _label(labels: Mapping[str, str], name: str) -> str:
    return labels.get(name, name)


def _wrong_type(label: str, expected: str, value: Any) -> RowRejected:
    return RowRejected(WRONG_TYPE, f"{label}: expected {expected}, got {json_type(value)}")


def _required_str(fields: Mapping[str, Any], name: str, labels: Mapping[str, str]) -> str:
    value = fields.get(name)
    if isinstance(value, str) and value:
        return value if value.isascii() else _storable(value, _label(labels, name))
    if value is None or value == "":
        state = "is empty" if value == "" else "is missing"
        raise RowRejected(MISSING_FIELD, f"{_label(labels, name)}: required field {state}")
    raise _wrong_type(_label(labels, name), "a string", value)


def _optional_str(fields: Mapping[str, Any], name: str, labels: Mapping[str, str]) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value if value.isascii() else _storable(value, _label(labels, name))
    raise _wrong_type(_label(labels, name), "a string", value)


def _string_list(value: Any, label: str) -> list[str]:
    if not isinstance(value, _LISTS):
        raise _wrong_type(label, "a list of strings", value)
    if set(map(type, value)) <= _STR_ONLY and "" not in value and "".join(value).isascii():
        return list(value)
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise _wrong_type(f"{label}[{index}]", "a non-empty string", item)
        _storable(item, f"{label}[{index}]")
    return list(value)


def parse_timestamp(value: Any, label: str) -> datetime:
    """ISO 8601 text or a datetime, as an aware UTC datetime (naive means UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        if not value.strip():
            raise RowRejected(MISSING_FIELD, f"{label}: required field is empty")
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise RowRejected(
                BAD_TIMESTAMP, f"{label}: {value[:80]!r} is not an ISO 8601 timestamp"
            ) from None
    elif value is None:
        raise RowRejected(MISSING_FIELD, f"{label}: required field is missing")
    else:
        raise RowRejected(
            BAD_TIMESTAMP, f"{label}: expected an ISO 8601 timestamp string, got {json_type(value)}"
        )
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise RowRejected(
            BAD_TIMESTAMP,
            f"{label}: {shown(str(value))} is outside years 1-9999 once converted to UTC",
        ) from None


def _query_input(fields: Mapping[str, Any], labels: Mapping[str, str]) -> tuple[str, str]:
    label = _label(labels, "query_input")
    value = fields.get("query_input")
    if value is None:
        raise RowRejected(MISSING_FIELD, f"{label}: required field is missing")
    if isinstance(value, str):
        return _storable(value, label), canonical_json({"text": value})
    if not isinstance(value, dict):
        raise _wrong_type(label, "an object with a string 'text' (or a string)", value)
    query = {key: item for key, item in value.items() if not (key == "filters" and item is None)}
    text = query.get("text")
    if text is None:
        raise RowRejected(MISSING_FIELD, f"{label}.text: required field is missing")
    if not isinstance(text, str):
        raise _wrong_type(f"{label}.text", "a string", text)
    filters = query.get("filters")
    if filters is not None and not isinstance(filters, dict):
        raise _wrong_type(f"{label}.filters", "an object", filters)
    return _storable(text, f"{label}.text"), _storable_json(query, label)


def normalize_execution(
    fields: Mapping[str, Any],
    labels: Mapping[str, str],
    default_retriever_id: str | None = None,
) -> ExecutionRow:
    """Check one logged execution against the contract; raise RowRejected with the first problem."""
    execution_id = _required_str(fields, "execution_id", labels)
    retriever_id = _optional_str(fields, "retriever_id", labels) or default_retriever_id
    if retriever_id is None:
        raise RowRejected(
            MISSING_FIELD,
            f"{_label(labels, 'retriever_id')}: required field is missing"
            " (or pass a default retriever id)",
        )
    try:
        validate_id(retriever_id, _label(labels, "retriever_id"))
    except InvalidInputError as exc:
        raise RowRejected(INVALID_ID, str(exc)) from None
    session_id = _required_str(fields, "session_id", labels)
    user_id = _optional_str(fields, "user_id", labels)
    query_text, query_input = _query_input(fields, labels)
    documents = fields.get("documents")
    if documents is None:
        raise RowRejected(
            MISSING_FIELD, f"{_label(labels, 'documents')}: required field is missing"
        )
    documents = _string_list(documents, _label(labels, "documents"))
    taxonomy = fields.get("taxonomy_node_ids")
    taxonomy = (
        [] if taxonomy is None else _string_list(taxonomy, _label(labels, "taxonomy_node_ids"))
    )
    created_at = parse_timestamp(fields.get("created_at"), _label(labels, "created_at"))
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
    )


def _document_id(fields: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    document_id = _optional_str(fields, "document_id", labels)
    feature_id = _optional_str(fields, "feature_id", labels)
    if document_id is not None and feature_id is not None and document_id != feature_id:
        raise RowRejected(
            CONFLICTING_ALIAS,
            f"document_id {document_id!r} and its alias feature_id {feature_id!r} differ",
        )
    chosen = document_id or feature_id
    if chosen is None:
        raise RowRejected(
            MISSING_FIELD,
            f"{_label(labels, 'document_id')}: required field is missing (alias: feature_id)",
        )
    return chosen


def _interaction_types(value: Any, label: str) -> list[str]:
    if value is None:
        raise RowRejected(MISSING_FIELD, f"{label}: required field is missing")
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, _LISTS):
        raise _wrong_type(label, "a string or a list of strings", value)
    if not items:
        raise RowRejected(EMPTY_INTERACTION_TYPE, f"{label}: the list of types is empty")
    types: list[str] = []
    for index, item in enumerate(items):
        item_label = label if isinstance(value, str) else f"{label}[{index}]"
        if not isinstance(item, str):
            raise _wrong_type(item_label, "a string", item)
        normalized = (item if item.isascii() else _storable(item, item_label)).strip().lower()
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
        raise _wrong_type(label, "a 0-based integer", value)
    if value < 0:
        raise RowRejected(
            NEGATIVE_POSITION, f"{label}: {value} is negative (positions are 0-based)"
        )
    if value > _INT32_MAX:
        raise _wrong_type(label, "a 32-bit integer", value)
    return value


def normalize_interaction(fields: Mapping[str, Any], labels: Mapping[str, str]) -> InteractionDraft:
    """Check one interaction's own fields; its execution is checked by complete_interaction."""
    interaction_id = _optional_str(fields, "interaction_id", labels)
    execution_id = _required_str(fields, "execution_id", labels)
    document_id = _document_id(fields, labels)
    types = _interaction_types(fields.get("interaction_type"), _label(labels, "interaction_type"))
    position = _position(fields.get("position"), _label(labels, "position"))
    session_id = _optional_str(fields, "session_id", labels)
    user_id = _optional_str(fields, "user_id", labels)
    timestamp = parse_timestamp(fields.get("timestamp"), _label(labels, "timestamp"))
    metadata = fields.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _wrong_type(_label(labels, "metadata"), "an object", metadata)
    return InteractionDraft(
        interaction_id,
        execution_id,
        document_id,
        types,
        position,
        session_id,
        user_id,
        timestamp,
        _storable_json(metadata, _label(labels, "metadata")) if metadata else None,
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
