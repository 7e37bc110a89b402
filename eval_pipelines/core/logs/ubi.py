"""OpenSearch User Behavior Insights (UBI) documents read under the contract's field names.

`ubi_queries` documents become executions and `ubi_events` documents interactions (a
`{"_source": {...}}` wrapper from an index export is unwrapped). The UBI schema's
`event_attributes.position.ordinal` is "the nth position of the document on the search results page"
(1, 3, 24...): position = ordinal - base, base 1 unless the writer counts from 0. An event without
`event_attributes.object` and without a position (`on_search` and other query-level events) names no
result: it is skipped and counted, neither ingested nor quarantined. A UBI query document has no
session; its events do, so `--ubi-sessions EVENTS_FILE` lends the events' session ids to the queries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.json_input import JsonProblem, decode_json
from eval_pipelines.core.logs.fields import json_type, wrong_type
from eval_pipelines.core.logs.quarantine import (
    BAD_TIMESTAMP,
    NEGATIVE_POSITION,
    WRONG_TYPE,
    RowRejected,
)
from eval_pipelines.core.paths import shown

if TYPE_CHECKING:
    from eval_pipelines.core.logs.readers import SourceRecord

ORDINAL_BASES = (0, 1)
DEFAULT_ORDINAL_BASE = 1
SESSION_FROM_QUERY_ID = (
    "session_id taken from the UBI query_id (one session per search: the query document and"
    " --ubi-sessions name none; pass --ubi-sessions EVENTS_FILE to take the events' session ids)"
)

UBI_QUERY_LABELS: Mapping[str, str] = {
    "execution_id": "execution_id (UBI query_id)",
    "retriever_id": "retriever_id (UBI application)",
    "session_id": "session_id (UBI session_id)",
    "user_id": "user_id (UBI client_id)",
    "query_input": "query_input (UBI user_query)",
    "documents": "documents (UBI query_response_hit_ids)",
    "created_at": "created_at (UBI timestamp)",
}
_UBI_EVENT_MAPPED = frozenset({"action_name", "query_id", "client_id", "session_id", "timestamp"})


def event_labels(base: int) -> Mapping[str, str]:
    """How messages name an event's fields; the position names the ordinal and its base."""
    return {
        "execution_id": "execution_id (UBI query_id)",
        "document_id": "document_id (UBI event_attributes.object.object_id)",
        "interaction_type": "interaction_type (UBI action_name)",
        "position": f"position (UBI event_attributes.position.ordinal, {base}-based)",
        "session_id": "session_id (UBI session_id)",
        "user_id": "user_id (UBI client_id)",
        "timestamp": "timestamp (UBI timestamp)",
    }


_EVENT_LABELS = {base: event_labels(base) for base in ORDINAL_BASES}
UBI_EVENT_LABELS = _EVENT_LABELS[DEFAULT_ORDINAL_BASE]


@dataclass(frozen=True)
class ReadOptions:
    """How a reader interprets a source where the format leaves a choice (today: UBI's).

    ubi_ordinal_base: the number UBI ordinals start from (the schema's 1, or 0 for writers that
    count from 0). ubi_sessions: query_id -> session id, from the events (read_ubi_sessions).
    """

    ubi_ordinal_base: int = DEFAULT_ORDINAL_BASE
    ubi_sessions: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if self.ubi_ordinal_base not in ORDINAL_BASES:
            raise InvalidInputError(
                f"ubi_ordinal_base: {self.ubi_ordinal_base!r} is not one of 0, 1"
            )


DEFAULT_OPTIONS = ReadOptions()


def _dig(record: Mapping[str, Any], *path: str) -> Any:
    """The value at a nested path; absent when a level is missing, WRONG_TYPE when it is no object."""
    value: Any = record
    for depth, key in enumerate(path):
        if value is None:
            return None
        if not isinstance(value, dict):
            parent = ".".join(path[:depth])
            raise RowRejected(WRONG_TYPE, f"{parent}: expected an object, got {json_type(value)}")
        value = value.get(key)
    return value


def _ubi_timestamp(value: Any, label: str) -> Any:
    """UBI stores dates as ISO text or epoch milliseconds; milliseconds become datetimes here."""
    if type(value) not in (int, float):
        return value
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        problem = "not a number" if value != value else "outside years 1-9999"
        raise RowRejected(
            BAD_TIMESTAMP, f"{label}: {value!r} epoch milliseconds is {problem}"
        ) from None


def ubi_document(raw: Mapping[str, Any] | str) -> Mapping[str, Any] | None:
    """The UBI document of a raw record (unwrapping `_source`), None for a line that is no object."""
    if not isinstance(raw, Mapping):
        return None
    source = raw.get("_source")
    return source if isinstance(source, Mapping) else raw


def map_ubi_query(record: SourceRecord, options: ReadOptions = DEFAULT_OPTIONS) -> SourceRecord:
    """ubi_queries -> executions.

    query_id -> execution_id; application -> retriever_id (else the ingest's default); user_query ->
    query_input.text; query_response_hit_ids -> documents; client_id -> user_id; timestamp ->
    created_at (ISO 8601 or epoch milliseconds). session_id: the document's `session_id`, else the
    events' session for this query_id (options.ubi_sessions), else `query_attributes.session_id`,
    else the query_id (one session per search, noted in the record's remark).
    """
    doc = ubi_document(record.raw) or {}
    query_id = doc.get("query_id")
    fields: dict[str, Any] = {
        "execution_id": query_id,
        "retriever_id": doc.get("application"),
        "user_id": doc.get("client_id"),
        "query_input": doc.get("user_query"),
        "documents": doc.get("query_response_hit_ids"),
    }
    problem = None
    try:
        fields["created_at"] = _ubi_timestamp(doc.get("timestamp"), UBI_QUERY_LABELS["created_at"])
        attribute_session = _dig(doc, "query_attributes", "session_id")
    except RowRejected as rejected:
        problem, attribute_session = rejected, None
    from_events = (options.ubi_sessions or {}).get(query_id) if isinstance(query_id, str) else None
    session = doc.get("session_id") or from_events or attribute_session
    remark = None
    if not session:
        session, remark = query_id, SESSION_FROM_QUERY_ID
    fields["session_id"] = session
    return dataclasses.replace(
        record,
        raw=doc,
        fields=fields,
        labels=UBI_QUERY_LABELS,
        problem=problem,
        remark=remark,
    )


def _position(ordinal: Any, base: int, label: str) -> Any:
    """position = ordinal - base (None when absent); an ordinal that is no integer or is below the
    base is refused naming it as written."""
    if ordinal is None:
        return None
    if isinstance(ordinal, float) and ordinal.is_integer():
        ordinal = int(ordinal)
    if isinstance(ordinal, bool) or not isinstance(ordinal, int):
        raise wrong_type(label, f"an integer ordinal (the first result is {base})", ordinal)
    if ordinal < base:
        other = (
            "pass --ubi-ordinal-base 0 if this writer counts from 0"
            if base == 1
            else "ordinals are never negative"
        )
        raise RowRejected(
            NEGATIVE_POSITION,
            f"{label}: ordinal {ordinal} is below the first ordinal {base} ({other})",
        )
    return ordinal - base


def _session(doc: Mapping[str, Any]) -> Any:
    return doc.get("session_id") or _dig(doc, "event_attributes", "session_id")


def query_level_event(doc: Mapping[str, Any]) -> str | None:
    """The skip name of an event about the search or page rather than one of its results (e.g.
    on_search): a named action with no event_attributes.object and no position; else None."""
    action = doc.get("action_name")
    attributes = doc.get("event_attributes")
    if not isinstance(action, str) or not action.strip():
        return None
    if attributes is not None and not isinstance(attributes, Mapping):
        return None
    if attributes and (attributes.get("object") is not None or attributes.get("position")):
        return None
    return f"UBI {shown(action.strip())} events (no event_attributes.object: no result to ingest)"


def map_ubi_event(record: SourceRecord, options: ReadOptions = DEFAULT_OPTIONS) -> SourceRecord:
    """ubi_events -> interactions.

    action_name -> interaction_type; query_id -> execution_id; event_attributes.object.object_id ->
    document_id; event_attributes.position.ordinal - base -> position; client_id -> user_id (else
    user_id); session_id (else event_attributes.session_id) -> session_id; timestamp (ISO 8601 or
    epoch milliseconds). Every other field, event_attributes included, is kept in metadata. A
    query-level event is marked skipped. `impression` events are interactions of type impression.
    """
    doc = ubi_document(record.raw) or {}
    base = options.ubi_ordinal_base
    labels = _EVENT_LABELS[base]
    skipped = query_level_event(doc)
    if skipped is not None:
        return dataclasses.replace(record, raw=doc, labels=labels, skipped=skipped)
    fields: dict[str, Any] = {
        "execution_id": doc.get("query_id"),
        "interaction_type": doc.get("action_name"),
        "user_id": doc.get("client_id") or doc.get("user_id"),
        "metadata": {key: value for key, value in doc.items() if key not in _UBI_EVENT_MAPPED}
        or None,
    }
    problem = None
    note = None
    try:
        fields["timestamp"] = _ubi_timestamp(doc.get("timestamp"), labels["timestamp"])
        fields["document_id"] = _dig(doc, "event_attributes", "object", "object_id")
        ordinal = _dig(doc, "event_attributes", "position", "ordinal")
        fields["position"] = _position(ordinal, base, labels["position"])
        if fields["position"] is not None:
            note = (
                f"as written: UBI event_attributes.position.ordinal {ordinal}, counted from"
                f" {base} (ordinal = position + {base})"
            )
        fields["session_id"] = _session(doc)
    except RowRejected as rejected:
        problem = rejected
    return dataclasses.replace(
        record, raw=doc, fields=fields, labels=labels, problem=problem, note=note
    )


@dataclass
class UbiSessions:
    """query_id -> session id as the events of one file give them, and what did not fit."""

    file: str
    sessions: dict[str, str] = dataclasses.field(default_factory=dict)
    events: int = 0
    conflicted: set[str] = dataclasses.field(default_factory=set)
    conflict_example: str | None = None
    unreadable: int = 0

    def summary(self) -> str:
        """One sentence for the ingest report."""
        text = (
            f"--ubi-sessions {self.file}: {len(self.sessions)} query_ids with a session"
            f" from {self.events} events"
        )
        if self.conflicted:
            text += (
                f"; query_ids whose events name more than one session: {len(self.conflicted)}"
                f" (the first one is taken, e.g. {self.conflict_example})"
            )
        if self.unreadable:
            text += (
                f"; lines of JSON no table can take: {self.unreadable} (their session is not"
                " read; ingesting them as interactions quarantines them)"
            )
        return text


def _lines(file: Path) -> Iterator[tuple[int, bytes]]:
    try:
        with file.open("rb") as handle:
            yield from enumerate(handle, start=1)
    except OSError as exc:
        raise InvalidInputError(
            f"{file}: cannot read the file ({exc.strerror or exc}) (nothing was written)"
        ) from exc


def _text(file: Path, number: int, line: bytes) -> str:
    try:
        return (line.removeprefix(b"\xef\xbb\xbf") if number == 1 else line).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{file}:{number}: not UTF-8 text (byte 0x{line[exc.start]:02x} cannot be decoded)"
            " (--ubi-sessions; nothing was written)"
        ) from None


def read_ubi_sessions(file: Path) -> UbiSessions:
    """The first non-empty session id of each query_id among a ubi_events file's events.

    A line that is not JSON fails the whole call (InvalidInputError, nothing written), as the
    interactions ingest of the same file would; the file is read a line at a time.
    """
    found = UbiSessions(str(file))
    for number, line in _lines(file):
        if not line.strip():
            continue
        try:
            value = decode_json(_text(file, number, line))
        except JsonProblem as problem:
            if problem.line is None:  # valid JSON Python cannot hold (depth, a huge integer)
                found.unreadable += 1
                continue
            raise InvalidInputError(
                f"{file}:{number}: {problem.problem} (--ubi-sessions; nothing was written)"
            ) from None
        doc = ubi_document(value)
        if doc is None:
            raise InvalidInputError(
                f"{file}:{number}: expected a JSON object per line, got {json_type(value)}"
                " (--ubi-sessions; nothing was written)"
            )
        found.events += 1
        _take_session(found, doc)
    return found


def _take_session(found: UbiSessions, doc: Mapping[str, Any]) -> None:
    query_id = doc.get("query_id")
    try:
        session = _session(doc)
    except RowRejected:
        return
    if not (isinstance(query_id, str) and query_id and isinstance(session, str) and session):
        return
    first = found.sessions.setdefault(query_id, session)
    if first != session:
        found.conflicted.add(query_id)
        if found.conflict_example is None:
            found.conflict_example = (
                f"query_id {shown(query_id)}: {shown(first)}, then {shown(session)}"
            )
