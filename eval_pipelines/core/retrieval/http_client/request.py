"""What an HTTP retriever sends: the JSON body rendered from its template, and headers checked before sending."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_WHOLE_PLACEHOLDER = re.compile(r"^\$\{([A-Za-z_]+)\}$")
_ANY_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_]+)\}")
_LEGAL_HEADER_NAME = re.compile(r"[^:\s][^:\r\n]*")
_ILLEGAL_HEADER_VALUE = re.compile(r"[\r\n\x00]")
# The transport writes these itself, from the request it actually sends.
_OWN_HEADERS = frozenset({"host", "content-length", "accept-encoding", "transfer-encoding"})
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def render_template(template: Any, values: dict[str, Any]) -> Any:
    """Fill ${name} placeholders: a whole-string placeholder keeps the value's JSON type."""
    if isinstance(template, str):
        whole = _WHOLE_PLACEHOLDER.match(template)
        if whole:
            return values[whole.group(1)]
        return _ANY_PLACEHOLDER.sub(
            lambda m: v if isinstance(v := values[m.group(1)], str) else json.dumps(v), template
        )
    if isinstance(template, dict):
        return {key: render_template(item, values) for key, item in template.items()}
    if isinstance(template, list):
        return [render_template(item, values) for item in template]
    return template


def request_body(template: Any, query_input: dict[str, Any], limit: int) -> bytes:
    """The compact JSON body for one query."""
    body = render_template(
        template,
        {
            "query_input": query_input,
            "text": query_input.get("text") or "",
            "filters": query_input.get("filters") or {},
            "limit": limit,
        },
    )
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def checked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers to send, without those the transport writes; a name or value that would break
    the request head raises ValueError naming the header, never echoing its value (a secret)."""
    checked = {}
    for name, value in headers.items():
        if not _LEGAL_HEADER_NAME.fullmatch(name):
            raise ValueError(f"header name {name!r} is not a valid HTTP header name")
        if _ILLEGAL_HEADER_VALUE.search(value):
            raise ValueError(f"header {name!r}: value contains CR, LF or NUL")
        if name.lower() not in _OWN_HEADERS:
            checked[name] = value
    return checked
