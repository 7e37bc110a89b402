"""Secrets of an HTTP retriever: header values from the environment, URL credentials, and masking them in every excerpt kept."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping

from eval_pipelines.core.retrieval.config import ENV_REFERENCE
from eval_pipelines.core.retrieval.masking import SecretMask
from eval_pipelines.core.retrieval.urls import url_credentials, url_secrets

BODY_SNIPPET = 200

Environ = Mapping[str, str] | os._Environ[str]


class MissingSecretError(Exception):
    """A header names an environment variable that is not set (the message names only the variable)."""


def resolve_headers(headers: dict[str, str], environ: Environ) -> dict[str, str]:
    resolved = {}
    for name, template in headers.items():

        def lookup(match: re.Match[str], header: str = name) -> str:
            variable = match.group(1)
            if variable not in environ:
                raise MissingSecretError(
                    f"header {header!r} needs environment variable {variable}, which is not set"
                )
            return environ[variable]

        resolved[name] = ENV_REFERENCE.sub(lookup, template)
    return resolved


def header_secrets(headers: dict[str, str], environ: Environ) -> list[str]:
    """What no message may repeat: each referenced variable's value and each header value built
    from one (SecretMask finds them in any spelling an engine echoes them in)."""
    found = set()
    for name, template in headers.items():
        variables = ENV_REFERENCE.findall(template)
        if variables:
            found.update(environ[v] for v in variables if v in environ)
            found.add(resolve_headers({name: template}, environ)[name])
    return sorted((value for value in found if value), key=len, reverse=True)


def basic_authorization(url: str) -> tuple[str | None, list[str]]:
    """The Authorization header for the URL's user:password (None without), and the URL's
    secrets, the encoded token and header included."""
    secrets = url_secrets(url)
    credentials = url_credentials(url)
    if credentials is None:
        return None, secrets
    token = base64.b64encode(":".join(credentials).encode("utf-8")).decode("ascii")
    header = f"Basic {token}"
    return header, [*secrets, token, header]


class MaskCache:
    """One SecretMask per set of secrets (they change only if the environment does)."""

    def __init__(self) -> None:
        self._masks: dict[tuple[str, ...], SecretMask] = {}

    def __call__(self, secrets: list[str]) -> SecretMask:
        key = tuple(secrets)
        mask = self._masks.get(key)
        if mask is None:
            self._masks = {key: (mask := SecretMask(secrets))}
        return mask


def excerpt(text: str, mask: SecretMask, limit: int = BODY_SNIPPET) -> str:
    """At most limit characters, secrets masked first: cutting first could keep part of one."""
    return mask(text)[:limit]


def body_excerpt(body: bytes, mask: SecretMask) -> str:
    """The start of an answer's body, masked over a window long enough to hold any spelling
    of a secret that starts within the part kept."""
    window = BODY_SNIPPET * 4 + mask.window_chars
    return excerpt(body[:window].decode("utf-8", "replace"), mask)
