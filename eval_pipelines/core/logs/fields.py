"""Field rules both log tables share: required and optional strings, string lists, timestamps, storable JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from eval_pipelines.core.logs.quarantine import (
    BAD_TIMESTAMP,
    MISSING_FIELD,
    UNSUPPORTED_VALUE,
    WRONG_TYPE,
    RowRejected,
)
from eval_pipelines.core.paths import shown, shown_field

# default=str only matters for Parquet values JSON lacks (datetimes, decimals in a metadata struct).
_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
LISTS = (list, tuple)
_NUMBERS = (int, float)
_STR_ONLY = frozenset({str})


def canonical_json(value: Any) -> str:
    """One spelling per value, so equal content hashes and compares equal."""
    return _CANONICAL_ENCODER.encode(value)


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


def storable(text: str, label: str) -> str:
    """text, unless it holds a lone surrogate (then RowRejected naming label)."""
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
    elif isinstance(value, LISTS):
        for index, item in enumerate(value):
            found = _surrogate_path(item, f"{path}[{index}]")
            if found:
                return found
    return None


def storable_json(value: Any, label: str) -> str:
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
    if isinstance(value, LISTS):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def field_label(labels: Mapping[str, str], name: str) -> str:
    """How messages name a field: its source name where the reader renamed it (e.g. UBI)."""
    return labels.get(name, name)


def wrong_type(label: str, expected: str, value: Any) -> RowRejected:
    return RowRejected(WRONG_TYPE, f"{label}: expected {expected}, got {json_type(value)}")


def required_str(fields: Mapping[str, Any], name: str, labels: Mapping[str, str]) -> str:
    value = fields.get(name)
    if isinstance(value, str) and value:
        return value if value.isascii() else storable(value, field_label(labels, name))
    if value is None or value == "":
        state = "is empty" if value == "" else "is missing"
        raise RowRejected(MISSING_FIELD, f"{field_label(labels, name)}: required field {state}")
    raise wrong_type(field_label(labels, name), "a string", value)


def optional_str(fields: Mapping[str, Any], name: str, labels: Mapping[str, str]) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value if value.isascii() else storable(value, field_label(labels, name))
    raise wrong_type(field_label(labels, name), "a string", value)


def string_list(value: Any, label: str) -> list[str]:
    if not isinstance(value, LISTS):
        raise wrong_type(label, "a list of strings", value)
    if set(map(type, value)) <= _STR_ONLY and "" not in value and "".join(value).isascii():
        return list(value)
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise wrong_type(f"{label}[{index}]", "a non-empty string", item)
        storable(item, f"{label}[{index}]")
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
