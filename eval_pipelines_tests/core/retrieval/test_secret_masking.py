"""SecretMask finds a secret in every reversible spelling an engine may echo it in (issue 10,
point 15), and what is not a secret stays as it was written."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import pytest

from eval_pipelines.core.retrieval.masking import SecretMask

SECRET = 'tok/9f8e7d6c5b4a+Ab C="q\\z'


def mixed_json(value: str, escaped_every: int, parity: int) -> str:
    return "".join(
        f"\\u{ord(c):04X}" if i % escaped_every == parity else json.dumps(c)[1:-1]
        for i, c in enumerate(value)
    )


SPELLINGS: dict[str, Callable[[str], str]] = {
    "verbatim": lambda s: s,
    "json": lambda s: json.dumps(s)[1:-1],
    "json-escaped-slash": lambda s: json.dumps(s)[1:-1].replace("/", "\\/"),
    "json-every-char-u-lower": lambda s: "".join(f"\\u{ord(c):04x}" for c in s),
    "json-every-char-u-upper": lambda s: "".join(f"\\u{ord(c):04X}" for c in s),
    "json-mixed-even": lambda s: mixed_json(s, 2, 0),
    "json-mixed-odd": lambda s: mixed_json(s, 3, 1),
    "upper": str.upper,
    "lower": str.lower,
    "swapcase": str.swapcase,
    "percent-upper": lambda s: quote(s, safe=""),
    "percent-lower": lambda s: quote(s, safe="").lower(),
    "percent-plus": quote_plus,
    "percent-every-byte": lambda s: "".join(f"%{b:02x}" for b in s.encode()),
    "base64": lambda s: base64.b64encode(s.encode()).decode(),
    "base64-unpadded": lambda s: base64.b64encode(s.encode()).decode().rstrip("="),
    "base64-urlsafe": lambda s: base64.urlsafe_b64encode(s.encode()).decode(),
    "base64-urlsafe-unpadded": lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("="),
    "html": html.escape,
    "html-decimal": lambda s: "".join(f"&#{ord(c)};" for c in s),
    "html-hex": lambda s: "".join(f"&#x{ord(c):X};" for c in s),
    "hex": lambda s: s.encode().hex(),
    "hex-upper": lambda s: s.encode().hex().upper(),
    "backslash-x": lambda s: "".join(f"\\x{b:02x}" for b in s.encode()),
    "python-repr": repr,
    "json-of-percent": lambda s: json.dumps(quote(s, safe=""))[1:-1],
    "percent-of-json": lambda s: quote(json.dumps(s), safe=""),
    "html-of-json": lambda s: html.escape(json.dumps(s)),
}


@pytest.mark.parametrize("spell", SPELLINGS.values(), ids=list(SPELLINGS))
def test_every_spelling_is_masked_and_the_rest_kept(spell: Callable[[str], str]) -> None:
    mask = SecretMask([SECRET])
    text = f"HTTP 500: you sent [{spell(SECRET)}] to us"
    masked = mask(text)
    assert masked.startswith("HTTP 500: you sent [") and masked.endswith("] to us"), masked
    assert spell(SECRET) not in masked
    assert "***" in masked


@pytest.mark.parametrize(
    "prefix", [b"u:", b"us:", b"usr:"], ids=["offset-2", "offset-0", "offset-1"]
)
def test_a_secret_inside_a_base64_value_is_masked_at_every_alignment(prefix: bytes) -> None:
    """Basic authentication: base64(user:password) holds the password at any of 3 alignments."""
    basic = base64.b64encode(prefix + SECRET.encode()).decode()
    masked = SecretMask([SECRET])(f"Authorization: Basic {basic}")
    kept = masked.removeprefix("Authorization: Basic ").replace("***", "")
    assert len(kept) <= 7, masked  # the user's part and at most 2 bytes at each edge
    assert "***" in masked


def test_masking_keeps_a_message_readable() -> None:
    mask = SecretMask(["s3cr3t-token-value"])
    message = (
        'POST http://h/search: HTTP 401: {"error": "bad token S3CR3T-TOKEN-VALUE", '
        '"hint": "see https://x/y?a=1&b=%20"}'
    )
    assert mask(message) == (
        'POST http://h/search: HTTP 401: {"error": "bad token ***", '
        '"hint": "see https://x/y?a=1&b=%20"}'
    )


def test_text_without_the_secret_is_unchanged() -> None:
    mask = SecretMask([SECRET])
    for text in ("", "plain", "a \\u0041 %41 &amp; &#65; \\x41 \\n", "tok/9f8e7d6c5b4a+Ab C"):
        assert mask(text) == text
    assert SecretMask([])("anything tok") == "anything tok"


def test_masking_strings_inside_reported_data() -> None:
    mask = SecretMask([SECRET])
    data = {"stages": {quote(SECRET): {"metadata": {"echo": [json.dumps(SECRET), 3, None]}}}}
    assert mask.json(data) == {"stages": {"***": {"metadata": {"echo": ['"***"', 3, None]}}}}
