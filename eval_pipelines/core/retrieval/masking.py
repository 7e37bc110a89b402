"""Masking secrets in text an engine sent back, however it spelled them.

An engine that echoes a credential rarely echoes it verbatim: JSON escapes it (`\\/`, `\\u0041`,
any mix of escaped and plain characters), upper-cases it, percent-encodes it (`%2F` or `%2f`,
`+` for a space), writes HTML entities, hex, or base64 (standard or URL-safe, with or without
padding, alone or inside `Basic base64(user:password)`).

Escapes are not enumerated: the text is decoded (JSON, Python and JavaScript backslash escapes,
percent-encoding, HTML entities; again on the result, so an encoding of an encoding decodes too)
while remembering which characters of the original each decoded character came from, and the
secrets are searched for in every decoded layer, ignoring case. What matched is masked in the
original text, so the rest of a message stays as it was written. Base64 and hex cannot be
decoded in place (nothing marks where they start), so their spellings of each secret are searched
for instead: base64 at each of its three byte alignments, so a secret inside a longer encoded
value (user:password) is found too.
"""

from __future__ import annotations

import base64
import html.entities
import re
from collections.abc import Iterable
from typing import Any

MASK = "***"
MAX_LAYERS = 4
# The longest spelling of one byte among the decoded escapes (an HTML entity, or a
# percent-encoded JSON escape): what an excerpt window must add per byte of secret.
MAX_ENCODED_CHARS_PER_BYTE = 16
# Needles derived from a secret (hex, base64 pieces) shorter than this would mask ordinary text.
_MIN_DERIVED = 8

_ESCAPES = re.compile(
    r"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"
    r"|\\u([0-9a-fA-F]{4})"
    r"|\\U([0-9a-fA-F]{8})"
    r"|((?:\\x[0-9a-fA-F]{2})+)"
    r"|((?:%[0-9a-fA-F]{2})+)"
    r"|\\([\"'\\/bfnrt])"
    r"|&#[xX]([0-9a-fA-F]{1,6});"
    r"|&#([0-9]{1,7});"
    r"|&([A-Za-z][A-Za-z0-9]{1,31};)"
)
_HINT = re.compile(r"[\\%&]")
_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}

Spans = list[tuple[int, int]]


def _code_point(value: int) -> str | None:
    return chr(value) if 0 <= value <= 0x10FFFF else None


def _byte_run(text: str, start: int, width: int) -> list[tuple[str, int, int]]:
    """A run of %XX or \\xXX escapes as characters (UTF-8 where the bytes are, else each byte as
    its code point), each with the offsets of the escapes it came from."""
    data = bytes(int(text[i + width - 2 : i + width], 16) for i in range(0, len(text), width))
    decoded, index = [], 0
    while index < len(data):
        lead = data[index]
        size = 1 if lead < 0x80 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        try:
            char = data[index : index + size].decode("utf-8")
        except UnicodeDecodeError:
            char, size = chr(lead), 1
        decoded.append((char, start + index * width, start + (index + size) * width))
        index += size
    return decoded


def _single_char(
    unit: str | None,
    wide: str | None,
    simple: str | None,
    hex_entity: str | None,
    entity: str | None,
    named: str | None,
) -> str | None:
    """The character a one-character escape stands for; None when it names no character."""
    if unit is not None:
        return chr(int(unit, 16))
    if wide is not None:
        return _code_point(int(wide, 16))
    if simple is not None:
        return _SIMPLE.get(simple, simple)
    if hex_entity is not None:
        return _code_point(int(hex_entity, 16))
    if entity is not None:
        return _code_point(int(entity))
    return html.entities.html5.get(named or "")


def _escape_chars(match: re.Match[str]) -> list[tuple[str, int, int]] | None:
    """What one escape decodes to, each character with the [start, end) it came from; None
    when the escape names no character (it is then kept as written)."""
    start, end = match.span()
    high, low, unit, wide, hex_bytes, percent, simple, hex_entity, entity, named = match.groups()
    if high is not None:
        high_value, low_value = int(high, 16), int(low, 16)
        return [(chr(0x10000 + ((high_value - 0xD800) << 10) + (low_value - 0xDC00)), start, end)]
    if hex_bytes is not None or percent is not None:
        return _byte_run(match.group(), start, 4 if hex_bytes is not None else 3)
    char = _single_char(unit, wide, simple, hex_entity, entity, named)
    return None if char is None else [(char, start, end)]


def _decode(text: str) -> tuple[str, list[tuple[int, int]]] | None:
    """text with one layer of escapes decoded, and for each decoded character the [start, end)
    of what it came from in text; None when text holds no escape."""
    pieces: list[str] = []
    spans: Spans = []
    position, changed = 0, False
    for match in _ESCAPES.finditer(text):
        decoded = _escape_chars(match)
        if decoded is None:
            continue
        start, end = match.span()
        pieces.append(text[position:start])
        spans.extend((i, i + 1) for i in range(position, start))
        for char, first, last in decoded:
            pieces.append(char)
            spans.extend((first, last) for _ in char)
        position, changed = end, True
    if not changed:
        return None
    pieces.append(text[position:])
    spans.extend((i, i + 1) for i in range(position, len(text)))
    return "".join(pieces), spans


def _folded(text: str) -> str:
    """text lower-cased character by character, so that offsets stay those of text."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _base64_spellings(data: bytes) -> set[str]:
    """How base64 writes data: whole (padded or not, standard or URL-safe), and the part that is
    the same wherever data sits in a longer value (for each of the three byte alignments)."""
    found = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(data).decode("ascii")
        found.update((whole, whole.rstrip("=")))
        for offset in (1, 2):
            shifted = encode(b"\0" * offset + data).decode("ascii").rstrip("=")
            skip = (offset * 8 + 5) // 6
            keep = ((offset + len(data)) * 8) // 6
            found.add(shifted[skip:keep])
        found.add(whole.rstrip("=")[: (len(data) * 8) // 6])
    return {s for s in found if len(s) >= _MIN_DERIVED}


class SecretMask:
    """Replaces every occurrence of the secrets in a text with ***, in any spelling above."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = sorted({s for s in secrets if s}, key=len, reverse=True)
        folded: set[str] = set()
        exact: set[str] = set()
        for secret in values:
            data = secret.encode("utf-8")
            folded.add(_folded(secret))
            if " " in secret:
                folded.add(_folded(secret.replace(" ", "+")))
            if len(data) * 2 >= _MIN_DERIVED:
                folded.add(data.hex())
            exact.update(_base64_spellings(data))
        self.secrets = tuple(values)
        self._folded = tuple(sorted(folded, key=len, reverse=True))
        self._exact = tuple(sorted(exact - folded, key=len, reverse=True))
        longest = max((len(s.encode("utf-8")) for s in values), default=0)
        self.window_chars = longest * MAX_ENCODED_CHARS_PER_BYTE

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def __call__(self, text: str) -> str:
        if not self.secrets or not text:
            return text
        if not _HINT.search(text) and not self._found(text, _folded(text)):
            return text
        spans: Spans = []
        layer, origin = text, None
        for _ in range(MAX_LAYERS + 1):
            spans.extend(self._matches(layer, origin))
            step = _decode(layer)
            if step is None:
                break
            layer, inner = step
            origin = (
                inner if origin is None else [(origin[a][0], origin[b - 1][1]) for a, b in inner]
            )
        if not spans:
            return text
        pieces, position = [], 0
        for start, end in _merged(spans):
            pieces.append(text[position:start] + MASK)
            position = end
        return "".join(pieces) + text[position:]

    def json(self, value: Any) -> Any:
        """value with every string in it (keys too) masked: for what an engine reports as data."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {
                self.json(k) if isinstance(k, str) else k: self.json(v) for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.json(item) for item in value]
        return value

    def _found(self, text: str, folded: str) -> bool:
        return any(n in folded for n in self._folded) or any(n in text for n in self._exact)

    def _matches(self, layer: str, origin: Spans | None) -> Spans:
        """Where each spelling occurs in layer, as [start, end) in the original text."""
        found: Spans = []
        for needles, haystack in ((self._folded, _folded(layer)), (self._exact, layer)):
            for needle in needles:
                start = haystack.find(needle)
                while start != -1:
                    end = start + len(needle)
                    found.append(
                        (start, end) if origin is None else (origin[start][0], origin[end - 1][1])
                    )
                    start = haystack.find(needle, start + 1)
        return found


def _merged(spans: Spans) -> Spans:
    merged: Spans = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
