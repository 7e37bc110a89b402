"""HTTP retrievers: POST a JSON body to a search engine and read its ranking (stdlib only).

Transient failures (timeouts, connection errors, 5xx, 429) are retried with exponential backoff and
full jitter, waiting at least what a Retry-After header asks (capped by backoff_max_s, so every call
keeps a deadline); other 4xx and malformed answers are not, since repeating them cannot help. Once
several calls in a row could not even connect (the engine is down), later calls make one attempt
each instead of retrying, so a replay against a dead engine fails fast. Header values may come from
environment variables; they, and the URL's user:password (sent as HTTP Basic authentication) and
credential-like query values, are masked in every message and record in any spelling an engine
echoes them in (masking.py). attempts counts every request put on the wire.

Calls run as coroutines on one event-loop thread per retriever, over a pool of keep-alive HTTP/1.1
connections: a thread per call on http.client cost ~1.5x the CPU per call (GIL hand-offs, header
parsing), which kept replays well below concurrency / latency. timeout_s bounds each attempt as a
whole: connecting, sending and reading the full answer.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import http.client
import json
import math
import os
import random
import re
import socket
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from eval_pipelines.core.retrieval.config import (
    ENV_REFERENCE,
    HTTP,
    RetrieverConfig,
    redact_url,
    url_credentials,
    url_secrets,
)
from eval_pipelines.core.retrieval.execution import (
    ERROR_CONNECTION,
    ERROR_HTTP_4XX,
    ERROR_HTTP_5XX,
    ERROR_HTTP_STATUS,
    ERROR_INVALID_QUERY,
    ERROR_MALFORMED_RANKING,
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
    ranking_problem,
)
from eval_pipelines.core.retrieval.masking import SecretMask

HTTP_STAGE = "http"
_WHOLE_PLACEHOLDER = re.compile(r"^\$\{([A-Za-z_]+)\}$")
_ANY_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_]+)\}")
_BODY_SNIPPET = 200
_RECEIVE_BYTES = 64 * 1024
_SHUTDOWN_TIMEOUT_S = 10.0
_MAX_HEAD_BYTES = 64 * 1024
_MAX_RESPONSE_BYTES = 1024**3
_NO_BODY_STATUSES = (204, 304)
_TOO_MANY_REQUESTS = 429
_UNREACHABLE_AFTER_CALLS = 3
_LEGAL_HEADER_NAME = re.compile(r"[^:\s][^:\r\n]*")
_ILLEGAL_HEADER_VALUE = re.compile(r"[\r\n\x00]")
_OWN_HEADERS = frozenset({"host", "content-length", "accept-encoding", "transfer-encoding"})
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


class _ConnectFailed(Exception):
    """No connection could be opened: nothing was sent, the engine may be down."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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


def header_secrets(
    headers: dict[str, str], environ: dict[str, str] | os._Environ[str]
) -> list[str]:
    """What no message may repeat: each referenced variable's value and each header value built
    from one (SecretMask finds them in any spelling an engine echoes them in)."""
    found = set()
    for name, template in headers.items():
        variables = ENV_REFERENCE.findall(template)
        if variables:
            found.update(environ[v] for v in variables if v in environ)
            found.add(resolve_headers({name: template}, environ)[name])
    return sorted((value for value in found if value), key=len, reverse=True)


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


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks to wait (delta-seconds or an HTTP date); None if unusable.

    Fractional seconds are accepted, as some engines send them; a date in the past means 0.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _tls_context() -> ssl.SSLContext:
    """Certificate-checking TLS, as http.client uses by default, announcing HTTP/1.1."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def _is_flat_key(path: str) -> bool:
    return bool(path) and "." not in path


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
        try:
            json.dumps(metadata, allow_nan=False)
        except ValueError:
            raise ValueError(f"stages.{name}.metadata: holds NaN or Infinity") from None
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


@dataclass
class _Answer:
    status: int
    body: bytes
    keep_alive: bool
    retry_after: str | None = None


@dataclass
class _Attempts:
    """What the attempts of one call saw: the last answer, the failure, and the waits between.

    count: every request put on the wire (and every connection tried), so a request sent again
    on a new connection after a kept-alive one turned out closed counts twice; tries: rounds of
    the retry loop, which max_retries bounds. reached: some attempt got further than failing to
    connect; a timeout counts, since the engine may have been slow rather than unreachable.
    """

    count: int = 0
    tries: int = 0
    resent: int = 0
    answer: _Answer | None = None
    failure: _Failure | None = None
    waits_s: list[float] = field(default_factory=list)
    reached: bool = False

    @property
    def status(self) -> int:
        return self.answer.status if self.answer is not None else 0

    @property
    def body(self) -> bytes:
        return self.answer.body if self.answer is not None else b""


@dataclass
class _Prepared:
    """A call ready to send, with what its outcome needs; or the reason it cannot be sent."""

    call: CallRecorder
    limit: int
    mask: SecretMask
    request: bytes = b""
    refusal: Execution | None = None


class _Connection:
    """One keep-alive HTTP/1.1 connection: answers framed by Content-Length, chunks or close.

    The stdlib has no asyncio HTTP client, and http.client (blocking, two writes per request,
    e-mail header parser) needs a thread per call; this reads only what a JSON engine sends.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def reusable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()

    async def exchange(self, request: bytes) -> _Answer:
        self.writer.write(request)
        await self.writer.drain()
        status, version, headers = await self._read_head(first=True)
        while 100 <= status < 200 and status != 101:
            status, version, headers = await self._read_head(first=False)
        body, delimited = await self._read_body(status, headers)
        tokens = headers.get("connection", "").lower()
        persistent = "close" not in tokens if version == "HTTP/1.1" else "keep-alive" in tokens
        return _Answer(status, body, delimited and persistent, headers.get("retry-after"))

    async def _until(self, marker: bytes, first: bool = False) -> bytes:
        try:
            return (await self.reader.readuntil(marker))[: -len(marker)]
        except asyncio.IncompleteReadError as exc:
            if first and not exc.partial:
                raise http.client.RemoteDisconnected(
                    "remote end closed connection without response"
                ) from None
            raise http.client.IncompleteRead(exc.partial) from None
        except asyncio.LimitOverrunError:
            raise http.client.LineTooLong(f"response line over {_MAX_HEAD_BYTES} bytes") from None

    async def _exactly(self, size: int) -> bytes:
        try:
            return await self.reader.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            raise http.client.IncompleteRead(exc.partial, size - len(exc.partial)) from None

    async def _read_head(self, first: bool) -> tuple[int, str, dict[str, str]]:
        status_line, *lines = (
            (await self._until(b"\r\n\r\n", first)).decode("latin-1").split("\r\n")
        )
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise http.client.BadStatusLine(status_line)
        headers = {}
        for line in lines:
            name, separator, value = line.partition(":")
            if separator:
                headers[name.strip().lower()] = value.strip()
        return int(code), version, headers

    async def _read_body(self, status: int, headers: dict[str, str]) -> tuple[bytes, bool]:
        """(body, whether its end was delimited, so the connection can carry another request)."""
        if status in _NO_BODY_STATUSES or 100 <= status < 200:
            return b"", True
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return await self._read_chunked(), True
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit() or int(length) > _MAX_RESPONSE_BYTES:
                raise http.client.HTTPException(f"invalid Content-Length {length[:40]!r}")
            return await self._exactly(int(length)), True
        parts, size = [], 0
        while chunk := await self.reader.read(_RECEIVE_BYTES):
            size += len(chunk)
            if size > _MAX_RESPONSE_BYTES:
                raise http.client.HTTPException(f"response over {_MAX_RESPONSE_BYTES} bytes")
            parts.append(chunk)
        return b"".join(parts), False

    async def _read_chunked(self) -> bytes:
        parts, size = [], 0
        while True:
            size_text = (await self._until(b"\r\n")).split(b";", 1)[0].strip()
            try:
                chunk_size = int(size_text, 16)
            except ValueError:
                raise http.client.HTTPException(f"invalid chunk size {size_text[:40]!r}") from None
            if chunk_size == 0:
                break
            size += chunk_size
            if size > _MAX_RESPONSE_BYTES:
                raise http.client.HTTPException(f"response over {_MAX_RESPONSE_BYTES} bytes")
            chunk = await self._exactly(chunk_size + 2)
            if not chunk.endswith(b"\r\n"):
                raise http.client.HTTPException("chunk not followed by CRLF")
            parts.append(chunk[:-2])
        while await self._until(b"\r\n"):
            pass
        return b"".join(parts)


class HttpRetriever:
    """A remote engine behind the Retriever interface; calls run on this retriever's event loop."""

    def __init__(self, config: RetrieverConfig, *, jitter_seed: int | None = None) -> None:
        if config.kind != HTTP or config.http is None:
            raise ValueError(f"retriever {config.id!r} is not an http retriever")
        self.config = config
        self.http = config.http
        target = urlsplit(self.http.url)
        self._host = target.hostname or ""
        self._port = target.port or (443 if target.scheme == "https" else 80)
        self._path = (target.path or "/") + (f"?{target.query}" if target.query else "")
        self._host_header = target.netloc.rpartition("@")[2]
        self._display_url = redact_url(f"{target.scheme}://{self._host_header}{target.path or '/'}")
        credentials = url_credentials(self.http.url)
        self._basic_auth: str | None = None
        self._url_secrets = url_secrets(self.http.url)
        if credentials is not None:
            token = base64.b64encode(":".join(credentials).encode("utf-8")).decode("ascii")
            self._basic_auth = f"Basic {token}"
            self._url_secrets += [token, self._basic_auth]
        self._masks: dict[tuple[str, ...], SecretMask] = {}
        self._tls = _tls_context() if target.scheme == "https" else None
        self._random = random.Random(jitter_seed)
        response = self.http.response
        self._flat_keys = _is_flat_key(response.id_field) and (
            response.score_field is None or _is_flat_key(response.score_field)
        )
        self._loop_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[_Connection] = []
        self._unreachable_calls = 0

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The loop every call of this retriever runs on, started on first use."""
        with self._loop_lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._slots = asyncio.Semaphore(self.http.concurrency)
                self._idle = []
                self._unreachable_calls = 0
                self._loop_thread = threading.Thread(
                    target=self._loop.run_forever, name=f"http-{self.config.id}", daemon=True
                )
                self._loop_thread.start()
            return self._loop

    def _request(self, body: bytes, headers: dict[str, str]) -> bytes:
        """The whole request as bytes; header names and values are checked, never echoed."""
        lines = [
            f"POST {self._path} HTTP/1.1",
            f"Host: {self._host_header}",
            "Accept-Encoding: identity",
            f"Content-Length: {len(body)}",
        ]
        for name, value in headers.items():
            if not _LEGAL_HEADER_NAME.fullmatch(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP header name")
            if _ILLEGAL_HEADER_VALUE.search(value):
                raise ValueError(f"header {name!r}: value contains CR, LF or NUL")
            if name.lower() not in _OWN_HEADERS:
                lines.append(f"{name}: {value}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await asyncio.open_connection(
                self._host,
                self._port,
                ssl=self._tls,
                server_hostname=self._host if self._tls is not None else None,
                limit=_MAX_HEAD_BYTES,
            )
        except OSError as exc:
            raise _ConnectFailed(self._connect_problem(exc)) from None
        return _Connection(reader, writer)

    def _connect_problem(self, exc: OSError) -> str:
        where = f"{self._host}:{self._port}"
        if isinstance(exc, ConnectionRefusedError):
            return f"cannot connect to {where}: connection refused (is the engine running?)"
        if isinstance(exc, socket.gaierror):
            return f"cannot resolve host {self._host!r}: {exc.strerror or exc}"
        return f"cannot connect to {where}: {type(exc).__name__}: {exc}"

    def _idle_connection(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable():
                return connection
            connection.close()
        return None

    async def _post(self, request: bytes, seen: _Attempts) -> _Answer:
        """One POST within timeout_s on an idle connection or a new one. A reused connection that
        the server closed is replaced by one new connection, never by another idle one (each could
        be stale too): the engine sees such a request at most twice, and seen counts both."""
        async with asyncio.timeout(self.http.timeout_s):
            idle = self._idle_connection()
            if idle is not None:
                try:
                    return await self._exchange(idle, request)
                except _STALE_CONNECTION_ERRORS:
                    seen.count += 1
                    seen.resent += 1
            return await self._exchange(await self._connect(), request)

    async def _exchange(self, connection: _Connection, request: bytes) -> _Answer:
        """The answer on this connection, which goes back to the pool only if it can carry more."""
        try:
            answer = await connection.exchange(request)
        except BaseException:
            connection.close()
            raise
        if answer.keep_alive:
            self._idle.append(connection)
        else:
            connection.close()
        return answer

    def _backoff_s(self, retry: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2^(retry-1))]."""
        ceiling = min(self.http.backoff_max_s, self.http.backoff_base_s * 2 ** (retry - 1))
        return self._random.uniform(0.0, ceiling)

    def _wait_before_retry_s(self, retry: int, previous: _Answer | None) -> float:
        """The jittered backoff, added to what the engine's Retry-After asked for, at most
        backoff_max_s: waiting longer would let one answer header stall a whole replay."""
        backoff = self._backoff_s(retry)
        asked = parse_retry_after(previous.retry_after if previous is not None else None)
        if asked is None:
            return backoff
        return min(self.http.backoff_max_s, asked + backoff)

    def _parse(self, data: bytes, limit: int) -> tuple[list[ScoredDocument], Any]:
        try:
            payload = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedResponseError(f"response is not valid JSON ({exc})") from None
        response = self.http.response
        documents = lookup_path(payload, response.documents_path)
        if not isinstance(documents, list):
            where = response.documents_path or "(root)"
            raise MalformedResponseError(
                f"{where}: expected a list of documents, got {type(documents).__name__}"
            )
        ranked = self._flat_ranking(documents, limit)
        if ranked is None:
            ranked = self._checked_ranking(documents, limit)
        statistics = (
            lookup_path(payload, response.stage_statistics_path)
            if response.stage_statistics_path
            else None
        )
        return ranked, statistics

    def _flat_ranking(self, documents: list[Any], limit: int) -> list[ScoredDocument] | None:
        """The usual answer (top-level id and score keys, string ids, numeric scores) in a few
        list passes; None when anything differs, so the checked path explains the problem."""
        if not self._flat_keys:
            return None
        response = self.http.response
        window = documents[:limit]
        try:
            ids = [document[response.id_field] for document in window]
            scores = (
                range(len(documents), len(documents) - len(window), -1)
                if response.score_field is None
                else [document[response.score_field] for document in window]
            )
        except (KeyError, TypeError, IndexError):
            return None
        if not all(type(i) is str and i for i in ids):
            return None
        if not all(type(s) is float or type(s) is int for s in scores):
            return None
        return [ScoredDocument(i, float(s)) for i, s in zip(ids, scores, strict=True)]

    def _checked_ranking(self, documents: list[Any], limit: int) -> list[ScoredDocument]:
        """Any configured paths, every value validated; raises MalformedResponseError."""
        response = self.http.response
        where = response.documents_path or "(root)"
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
        return ranked

    def _excerpt(self, text: str, mask: SecretMask, limit: int = _BODY_SNIPPET) -> str:
        """At most limit characters, secrets masked first: cutting first could keep part of one."""
        return mask(text)[:limit]

    def _body_excerpt(self, body: bytes, mask: SecretMask) -> str:
        """The start of an answer's body, masked over a window long enough to hold any spelling
        of a secret that starts within the part kept."""
        window = _BODY_SNIPPET * 4 + mask.window_chars
        return self._excerpt(body[:window].decode("utf-8", "replace"), mask)

    def _mask(self, secrets: list[str]) -> SecretMask:
        """One SecretMask per set of secrets (they change only if the environment does)."""
        key = tuple(secrets)
        mask = self._masks.get(key)
        if mask is None:
            self._masks = {key: (mask := SecretMask(secrets))}
        return mask

    def search(
        self,
        query_input: dict[str, Any],
        limit: int | None = None,
        execution_id: str | None = None,
    ) -> Execution:
        limit = check_limit(limit)
        return asyncio.run_coroutine_threadsafe(
            self._search(query_input, limit, execution_id), self._running_loop()
        ).result()

    def search_many(
        self, query_inputs: Sequence[dict[str, Any]], limit: int | None = None
    ) -> list[Execution]:
        """Executions in input order; at most `concurrency` calls in flight."""
        check_limit(limit)
        if not query_inputs:
            return []
        return asyncio.run_coroutine_threadsafe(
            self._search_all(query_inputs, limit), self._running_loop()
        ).result()

    async def _search_all(
        self, query_inputs: Sequence[dict[str, Any]], limit: int | None
    ) -> list[Execution]:
        executions: dict[int, Execution] = {}
        queue = iter(enumerate(query_inputs))

        async def work() -> None:
            for index, query_input in queue:
                executions[index] = await self._search(query_input, limit, None)

        workers = [
            asyncio.ensure_future(work())
            for _ in range(min(self.http.concurrency, len(query_inputs)))
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
        return [executions[index] for index in range(len(query_inputs))]

    async def _search(
        self, query_input: dict[str, Any], limit: int | None, execution_id: str | None
    ) -> Execution:
        assert self._slots is not None
        async with self._slots:
            prepared = self._prepare(query_input, limit, execution_id)
            if prepared.refusal is not None:
                return prepared.refusal
            engine_down = self._unreachable_calls >= _UNREACHABLE_AFTER_CALLS
            seen = await self._attempt(prepared.request, prepared.mask, engine_down)
            if seen.reached:
                self._unreachable_calls = 0
            else:
                self._unreachable_calls += 1
                if seen.failure is not None and seen.tries <= self.http.max_retries:
                    seen.failure.message += (
                        f"; not retried: the previous {_UNREACHABLE_AFTER_CALLS}+ calls"
                        " could not connect either"
                    )
            return self._outcome(prepared, seen)

    async def _attempt(self, request: bytes, mask: SecretMask, engine_down: bool) -> _Attempts:
        """Send until an answer that is final or the retries run out; when the engine looks down,
        a call that cannot connect gives up at once."""
        seen = _Attempts()
        for attempt in range(self.http.max_retries + 1):
            if attempt:
                wait_s = self._wait_before_retry_s(attempt, seen.answer)
                seen.waits_s.append(wait_s)
                await asyncio.sleep(wait_s)
            seen.tries += 1
            seen.count += 1
            seen.answer = None
            try:
                seen.answer = answer = await self._post(request, seen)
            except _ConnectFailed as exc:
                seen.failure = _Failure(ERROR_CONNECTION, exc.reason)
                if engine_down:
                    break
                continue
            except TimeoutError:
                seen.reached = True
                seen.failure = _Failure(ERROR_TIMEOUT, f"timed out after {self.http.timeout_s:g} s")
                continue
            except (OSError, http.client.HTTPException) as exc:
                seen.reached = True
                seen.failure = _Failure(
                    ERROR_CONNECTION, self._excerpt(f"{type(exc).__name__}: {exc}", mask)
                )
                continue
            seen.reached = True
            if 500 <= answer.status <= 599 or answer.status == _TOO_MANY_REQUESTS:
                snippet = self._body_excerpt(answer.body, mask)
                asked = (
                    f" (Retry-After: {self._excerpt(answer.retry_after, mask, 40)})"
                    if answer.retry_after is not None
                    else ""
                )
                seen.failure = _Failure(
                    ERROR_HTTP_5XX if answer.status >= 500 else ERROR_HTTP_4XX,
                    f"HTTP {answer.status}: {snippet}{asked}",
                )
                continue
            seen.failure = None
            break
        return seen

    def _prepare(
        self, query_input: dict[str, Any], limit: int | None, execution_id: str | None
    ) -> _Prepared:
        call = CallRecorder(
            retriever_id=self.config.id,
            pipeline_hash=self.config.pipeline_hash,
            query_input=query_input,
            execution_id=execution_id,
            total_stages=1,
        )
        effective_limit = self.http.limit if limit is None else limit
        problem = query_problem(query_input)
        mask = self._mask(self._url_secrets)
        if problem is not None:
            refusal = call.failed(ERROR_INVALID_QUERY, mask(problem), attempts=0)
            return _Prepared(call, effective_limit, mask, refusal=refusal)
        try:
            headers = resolve_headers(self.http.headers, os.environ)
        except MissingSecretError as exc:
            refusal = call.failed(ERROR_MISSING_SECRET, f"{self.config.id}: {exc}", attempts=0)
            return _Prepared(call, effective_limit, mask, refusal=refusal)
        if self._basic_auth is not None:
            headers = {"Authorization": self._basic_auth, **headers}
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
        request = self._request(
            payload, {**headers, "Content-Type": "application/json", "Accept": "application/json"}
        )
        secrets = header_secrets(self.http.headers, os.environ) + self._url_secrets
        return _Prepared(call, effective_limit, self._mask(secrets), request)

    def _outcome(self, prepared: _Prepared, seen: _Attempts) -> Execution:
        call, mask = prepared.call, prepared.mask
        call_ms = call.elapsed_ms()
        failure, attempts, status, data = seen.failure, seen.count, seen.status, seen.body
        transport: dict[str, Any] = {"attempts": attempts, "status": status or None}
        if seen.resent:
            transport["resent_after_closed_connection"] = seen.resent
        if seen.waits_s:
            transport["retry_waits_ms"] = [wait_s * 1000.0 for wait_s in seen.waits_s]

        def failed(error_type: str, message: str) -> Execution:
            message = mask(f"POST {self._display_url}: {message}")
            stage = StageStatistics.measured(0, 0, call_ms, error=message, metadata=transport)
            return call.failed(error_type, message, {HTTP_STAGE: stage}, attempts)

        if failure is not None:
            return failed(failure.error_type, f"{failure.message} ({attempts} attempt(s))")
        if not 200 <= status <= 299:
            error_type = ERROR_HTTP_4XX if 400 <= status <= 499 else ERROR_HTTP_STATUS
            return failed(error_type, f"HTTP {status}: {self._body_excerpt(data, mask)}")
        try:
            documents, raw_statistics = self._parse(data, prepared.limit)
        except MalformedResponseError as exc:
            return failed(ERROR_MALFORMED_RESPONSE, f"malformed response: {exc}")
        response = self.http.response
        problem = ranking_problem(
            documents,
            response.documents_path or "(root)",
            response.id_field,
            response.score_field or "score",
        )
        if problem is not None:
            return failed(ERROR_MALFORMED_RANKING, f"malformed ranking: {problem}")
        stages: dict[str, StageStatistics] | None = None
        warnings: list[str] = []
        if raw_statistics is not None:
            try:
                stages = parse_stage_statistics(
                    mask.json(raw_statistics) if mask else raw_statistics
                )
            except ValueError as exc:
                warnings.append(mask(f"stage_statistics ignored: {exc}"))
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

    def close(self) -> None:
        """Cancel calls still running, close every keep-alive connection and stop the loop thread."""
        with self._loop_lock:
            loop, thread = self._loop, self._loop_thread
            self._loop = self._loop_thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(_SHUTDOWN_TIMEOUT_S)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_SHUTDOWN_TIMEOUT_S)
            if not thread.is_alive():
                loop.close()

    async def _shutdown(self) -> None:
        running = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        closing = [connection.writer for connection in self._idle]
        self._idle = []
        for writer in closing:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in closing), return_exceptions=True)

    def __enter__(self) -> HttpRetriever:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
