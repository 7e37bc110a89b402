"""HTTP retrievers: POST a JSON body to a search engine and read its ranking (stdlib only).

Transient failures (timeouts, connection errors, 5xx) are retried with exponential backoff and full
jitter; 4xx and malformed answers are not, since repeating them cannot help. Header values may come
from environment variables and are never copied into messages or records.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import random
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from eval_pipelines.core.retrieval.config import ENV_REFERENCE, HTTP, RetrieverConfig
from eval_pipelines.core.retrieval.execution import (
    ERROR_CONNECTION,
    ERROR_HTTP_4XX,
    ERROR_HTTP_5XX,
    ERROR_HTTP_STATUS,
    ERROR_INVALID_QUERY,
    ERROR_MALFORMED_RESPONSE,
    ERROR_MISSING_SECRET,
    ERROR_TIMEOUT,
    CallRecorder,
    Execution,
    ScoredDocument,
    StageStatistics,
    check_limit,
    efficiency,
    query_problem,
)

HTTP_STAGE = "http"
_WHOLE_PLACEHOLDER = re.compile(r"^\$\{([A-Za-z_]+)\}$")
_ANY_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_]+)\}")
_BODY_SNIPPET = 200
_STALE_CONNECTION_ERRORS = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
)


class MissingSecretError(Exception):
    """A header names an environment variable that is not set (the message names only the variable)."""


class MalformedResponseError(Exception):
    """The engine answered, but not in the configured shape."""


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


def resolve_headers(
    headers: dict[str, str], environ: dict[str, str] | os._Environ[str]
) -> dict[str, str]:
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


def lookup_path(document: Any, path: str) -> Any:
    """Follow a dotted path through nested objects ("" is the document itself); None when absent."""
    if not path:
        return document
    current = document
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_duration(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def parse_stage_statistics(raw: Any) -> dict[str, StageStatistics]:
    """Remote statistics as {stages: {name: StageStatistics}} or {name: StageStatistics}; raises ValueError."""
    stages = raw.get("stages") if isinstance(raw, dict) and "stages" in raw else raw
    if not isinstance(stages, dict) or not stages:
        raise ValueError("expected a non-empty object of stages")
    parsed = {}
    for name, stats in stages.items():
        if not isinstance(stats, dict):
            raise ValueError(f"stages.{name}: expected an object")
        for key, check in (
            ("input_count", _is_count),
            ("output_count", _is_count),
            ("duration_ms", _is_duration),
        ):
            if not check(stats.get(key)):
                raise ValueError(f"stages.{name}.{key}: missing or invalid ({stats.get(key)!r})")
        reported = stats.get("efficiency")
        cache_hit = stats.get("cache_hit")
        error = stats.get("error")
        metadata = stats.get("metadata") or {}
        if cache_hit is not None and not isinstance(cache_hit, bool):
            raise ValueError(f"stages.{name}.cache_hit: expected a boolean or null")
        if error is not None and not isinstance(error, str):
            raise ValueError(f"stages.{name}.error: expected a string or null")
        if not isinstance(metadata, dict):
            raise ValueError(f"stages.{name}.metadata: expected an object")
        parsed[str(name)] = StageStatistics(
            input_count=stats["input_count"],
            output_count=stats["output_count"],
            duration_ms=float(stats["duration_ms"]),
            efficiency=float(reported)
            if _is_duration(reported)
            else efficiency(stats["input_count"], stats["output_count"]),
            cache_hit=cache_hit,
            error=error,
            metadata=metadata,
        )
    return parsed


@dataclass
class _Failure:
    error_type: str
    message: str


class HttpRetriever:
    """A remote engine behind the Retriever interface, with keep-alive connections per thread."""

    def __init__(self, config: RetrieverConfig, *, jitter_seed: int | None = None) -> None:
        if config.kind != HTTP or config.http is None:
            raise ValueError(f"retriever {config.id!r} is not an http retriever")
        self.config = config
        self.http = config.http
        target = urlsplit(self.http.url)
        self._scheme = target.scheme
        self._host = target.hostname or ""
        self._port = target.port
        self._path = (target.path or "/") + (f"?{target.query}" if target.query else "")
        self._display_url = f"{target.scheme}://{target.netloc}{target.path or '/'}"
        self._slots = threading.BoundedSemaphore(self.http.concurrency)
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._connections_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._random = random.Random(jitter_seed)

    def _new_connection(self) -> http.client.HTTPConnection:
        factory = (
            http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        )
        connection = factory(self._host, self._port, timeout=self.http.timeout_s)
        with self._connections_lock:
            self._connections.append(connection)
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            with self._connections_lock:
                if connection in self._connections:
                    self._connections.remove(connection)
        self._local.connection = None
        self._local.used = False

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """One POST on this thread's connection; a reused connection the server closed is reopened once."""
        while True:
            if getattr(self._local, "connection", None) is None:
                self._local.connection = self._new_connection()
                self._local.used = False
            reused = self._local.used
            try:
                self._local.connection.request("POST", self._path, body=body, headers=headers)
                response = self._local.connection.getresponse()
                data = response.read()
            except _STALE_CONNECTION_ERRORS:
                self._drop_connection()
                if reused:
                    continue
                raise
            except BaseException:
                self._drop_connection()
                raise
            self._local.used = True
            if response.will_close:
                self._drop_connection()
            return response.status, data

    def _backoff_s(self, retry: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2^(retry-1))]."""
        ceiling = min(self.http.backoff_max_s, self.http.backoff_base_s * 2 ** (retry - 1))
        return self._random.uniform(0.0, ceiling)

    def _parse(self, data: bytes, limit: int) -> tuple[list[ScoredDocument], Any]:
        try:
            payload = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedResponseError(f"response is not valid JSON ({exc})") from None
        response = self.http.response
        documents = lookup_path(payload, response.documents_path)
        where = response.documents_path or "(root)"
        if not isinstance(documents, list):
            raise MalformedResponseError(
                f"{where}: expected a list of documents, got {type(documents).__name__}"
            )
        ranked = []
        for index, document in enumerate(documents[:limit]):
            document_id = lookup_path(document, response.id_field)
            if isinstance(document_id, int) and not isinstance(document_id, bool):
                document_id = str(document_id)
            if not isinstance(document_id, str) or not document_id:
                raise MalformedResponseError(
                    f"{where}[{index}].{response.id_field}: missing or not a string id"
                )
            if response.score_field is None:
                score = float(len(documents) - index)
            else:
                score = lookup_path(document, response.score_field)
                if isinstance(score, bool) or not isinstance(score, int | float):
                    raise MalformedResponseError(
                        f"{where}[{index}].{response.score_field}: missing or not a number"
                    )
            ranked.append(ScoredDocument(document_id, float(score)))
        statistics = (
            lookup_path(payload, response.stage_statistics_path)
            if response.stage_statistics_path
            else None
        )
        return ranked, statistics

    def _redact(self, message: str, secrets: Sequence[str]) -> str:
        for secret in secrets:
            if secret:
                message = message.replace(secret, "***")
        return message

    def search(
        self,
        query_input: dict[str, Any],
        limit: int | None = None,
        execution_id: str | None = None,
    ) -> Execution:
        limit = check_limit(limit)
        with self._slots:
            return self._search(query_input, limit, execution_id)

    def _search(
        self, query_input: dict[str, Any], limit: int | None, execution_id: str | None
    ) -> Execution:
        call = CallRecorder(
            retriever_id=self.config.id,
            pipeline_hash=self.config.pipeline_hash,
            query_input=query_input,
            execution_id=execution_id,
            total_stages=1,
        )
        effective_limit = self.http.limit if limit is None else limit

        problem = query_problem(query_input)
        if problem is not None:
            return call.failed(ERROR_INVALID_QUERY, problem, attempts=0)
        try:
            headers = resolve_headers(self.http.headers, os.environ)
        except MissingSecretError as exc:
            return call.failed(ERROR_MISSING_SECRET, f"{self.config.id}: {exc}", attempts=0)
        secrets = list(headers.values())
        body = render_template(
            self.http.request_body,
            {
                "query_input": query_input,
                "text": query_input.get("text") or "",
                "filters": query_input.get("filters") or {},
                "limit": effective_limit,
            },
        )
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        request_headers = {
            **headers,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        failure: _Failure | None = None
        attempts = 0
        status = 0
        data = b""
        for attempt in range(self.http.max_retries + 1):
            if attempt:
                time.sleep(self._backoff_s(attempt))
            attempts += 1
            try:
                status, data = self._post(payload, request_headers)
            except TimeoutError:
                failure = _Failure(ERROR_TIMEOUT, f"timed out after {self.http.timeout_s:g} s")
                continue
            except (OSError, http.client.HTTPException) as exc:
                failure = _Failure(ERROR_CONNECTION, f"{type(exc).__name__}: {exc}")
                continue
            if 500 <= status <= 599:
                snippet = data[:_BODY_SNIPPET].decode("utf-8", "replace")
                failure = _Failure(ERROR_HTTP_5XX, f"HTTP {status}: {snippet}")
                continue
            failure = None
            break
        call_ms = call.elapsed_ms()
        transport = {"attempts": attempts, "status": status or None}

        def failed_stage(message: str) -> dict[str, StageStatistics]:
            return {
                HTTP_STAGE: StageStatistics.measured(
                    0, 0, call_ms, error=message, metadata=transport
                )
            }

        if failure is not None:
            message = self._redact(
                f"POST {self._display_url}: {failure.message} ({attempts} attempt(s))", secrets
            )
            return call.failed(failure.error_type, message, failed_stage(message), attempts)
        if not 200 <= status <= 299:
            snippet = data[:_BODY_SNIPPET].decode("utf-8", "replace")
            error_type = ERROR_HTTP_4XX if 400 <= status <= 499 else ERROR_HTTP_STATUS
            message = self._redact(f"POST {self._display_url}: HTTP {status}: {snippet}", secrets)
            return call.failed(error_type, message, failed_stage(message), attempts)
        try:
            documents, raw_statistics = self._parse(data, effective_limit)
        except MalformedResponseError as exc:
            message = self._redact(f"POST {self._display_url}: malformed response: {exc}", secrets)
            return call.failed(ERROR_MALFORMED_RESPONSE, message, failed_stage(message), attempts)
        stages: dict[str, StageStatistics] | None = None
        warnings: list[str] = []
        if raw_statistics is not None:
            try:
                stages = parse_stage_statistics(raw_statistics)
            except ValueError as exc:
                warnings.append(self._redact(f"stage_statistics ignored: {exc}", secrets))
        if stages is None:
            metadata: dict[str, Any] = dict(transport)
            if warnings:
                metadata["warnings"] = warnings
            stages = {
                HTTP_STAGE: StageStatistics.measured(
                    len(documents), len(documents), call_ms, metadata=metadata
                )
            }
        call.total_stages = len(stages)
        return call.completed(documents, stages, attempts)

    def search_many(
        self, query_inputs: Sequence[dict[str, Any]], limit: int | None = None
    ) -> list[Execution]:
        """Executions in input order; at most `concurrency` calls in flight."""
        check_limit(limit)
        if not query_inputs:
            return []
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.http.concurrency, thread_name_prefix=f"http-{self.config.id}"
            )
        return list(self._executor.map(lambda q: self.search(q, limit), query_inputs))

    def close(self) -> None:
        """Stop worker threads and close every keep-alive connection."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._connections_lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for connection in connections:
            connection.close()

    def __enter__(self) -> HttpRetriever:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
