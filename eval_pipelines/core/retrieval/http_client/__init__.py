"""HTTP retrievers: POST a JSON body to a search engine and read its ranking (stdlib only).

Transient failures (timeouts, connection errors, 5xx, 429) are retried with exponential backoff and
full jitter, waiting at least what a Retry-After header asks (capped by backoff_max_s, so every call
keeps a deadline); other 4xx and malformed answers are not, since repeating them cannot help. Once
several calls in a row could not even connect (the engine is down), later calls make one attempt
each instead of retrying, so a replay against a dead engine fails fast. Header values may come from
environment variables; they, and the URL's user:password (sent as HTTP Basic authentication) and
credential-like query values, are masked in every message and record in any spelling an engine
echoes them in (masking.py). attempts counts every request put on the wire.

One idea per module: client (HttpRetriever, its event-loop thread and concurrency), request (the
body and headers sent), transport (the wire: keep-alive HTTP/1.1 connections), retry (when to send
again), secrets (environment headers, URL credentials, masked excerpts), responses (ranking and
stage statistics from an answer), outcome (the Execution a call becomes).
"""

from eval_pipelines.core.retrieval.http_client.client import HttpRetriever
from eval_pipelines.core.retrieval.http_client.outcome import HTTP_STAGE
from eval_pipelines.core.retrieval.http_client.request import render_template
from eval_pipelines.core.retrieval.http_client.responses import (
    MalformedResponseError,
    lookup_path,
    parse_stage_statistics,
)
from eval_pipelines.core.retrieval.http_client.retry import parse_retry_after
from eval_pipelines.core.retrieval.http_client.secrets import (
    MissingSecretError,
    header_secrets,
    resolve_headers,
)

__all__ = [
    "HTTP_STAGE",
    "HttpRetriever",
    "MalformedResponseError",
    "MissingSecretError",
    "header_secrets",
    "lookup_path",
    "parse_retry_after",
    "parse_stage_statistics",
    "render_template",
    "resolve_headers",
]
