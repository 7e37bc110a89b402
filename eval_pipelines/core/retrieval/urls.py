"""Retriever URLs: which parts are credentials (user:password, secret query values), and the redacted form every output shows."""

from __future__ import annotations

import re
from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit

# Query parameters whose values are credentials: never shown, never hashed. Names are compared
# lower-cased without "-", "_" and "."; a name like sort_key or monkey is not one of them.
_SECRET_PARAMETERS = frozenset(
    {"key", "apikey", "token", "secret", "password", "passwd", "pwd", "pass", "sig", "signature"}
)
_SECRET_SUFFIXES = ("apikey", "token", "secret", "password", "signature", "credential")
REDACTED = "***"


def is_secret_parameter(name: str) -> bool:
    """Whether a query parameter's value is a credential: key, api_key, token, access_token,
    secret, password, sig, signature, auth..., x-amz-credential and the like (any case)."""
    normalized = re.sub(r"[-_.\s]", "", unquote_plus(name).lower())
    return (
        normalized in _SECRET_PARAMETERS
        or normalized.startswith("auth")
        or normalized.endswith(_SECRET_SUFFIXES)
    )


def redact_url(url: str) -> str:
    """The URL as every output shows it: user:password and secret query values become ***.

    Everything else keeps its spelling, so a reader still sees which engine and which parameters.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = "&".join(
        f"{name}={REDACTED}" if separator and is_secret_parameter(name) else piece
        for piece in parts.query.split("&")
        for name, separator, _ in [piece.partition("=")]
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # as written: pipeline_hash of a URL without credentials never changes
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def url_credentials(url: str) -> tuple[str, str] | None:
    """(user, password) given in the URL, percent-decoded; None when it has none."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return None
    return unquote(parts.username or ""), unquote(parts.password or "")


def url_secrets(url: str) -> list[str]:
    """What of the URL no output may repeat: its password (or its user, when that is the only
    credential, as with an API key given as the user name), and secret query values."""
    parts = urlsplit(url)
    found: set[str] = set()
    credentials = url_credentials(url)
    if credentials is not None:
        user, password = credentials
        if password:
            found.update((password, f"{user}:{password}", parts.netloc.rpartition("@")[0]))
        else:
            found.update((user, parts.netloc.rpartition("@")[0]))
    for piece in parts.query.split("&"):
        name, separator, value = piece.partition("=")
        if separator and value and is_secret_parameter(name):
            found.update((value, unquote_plus(value)))
    return sorted(v for v in found if v)


def url_without_port(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.hostname or ""))
