"""How a request reaches the engine: the transport interface, and the default pool of keep-alive HTTP/1.1 connections.

The stdlib has no asyncio HTTP client, and http.client (blocking, two writes per request, e-mail
header parser) needs a thread per call, which cost ~1.5x the CPU per call; KeepAliveTransport reads
only what a JSON engine sends. A transport raises ConnectFailed when nothing could be sent,
TimeoutError, OSError or http.client.HTTPException otherwise; the caller bounds each post in time.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

_RECEIVE_BYTES = 64 * 1024
MAX_HEAD_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 1024**3
_NO_BODY_STATUSES = (204, 304)
STALE_CONNECTION_ERRORS = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
)


class ConnectFailed(Exception):
    """No connection could be opened: nothing was sent, the engine may be down."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Answer:
    status: int
    body: bytes
    keep_alive: bool
    retry_after: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """Where a retriever's requests go, parsed once from its URL (user:password left out)."""

    scheme: str
    host: str
    port: int
    target: str
    host_header: str

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        return cls(
            scheme=parts.scheme,
            host=parts.hostname or "",
            port=parts.port or (443 if parts.scheme == "https" else 80),
            target=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
            host_header=parts.netloc.rpartition("@")[2],
        )

    @property
    def url(self) -> str:
        """The URL without credentials (they travel as an Authorization header)."""
        return f"{self.scheme}://{self.host_header}{self.target}"

    def connect_problem(self, exc: OSError) -> str:
        where = f"{self.host}:{self.port}"
        if isinstance(exc, ConnectionRefusedError):
            return f"cannot connect to {where}: connection refused (is the engine running?)"
        if isinstance(exc, socket.gaierror):
            return f"cannot resolve host {self.host!r}: {exc.strerror or exc}"
        return f"cannot connect to {where}: {type(exc).__name__}: {exc}"


class Transport(Protocol):
    """Posts one request body with its headers (already checked) and returns the answer.

    on_resend is called each time the request is put on the wire again because a kept-alive
    connection turned out closed, so that every request the engine may have seen is counted.
    """

    async def post(
        self, body: bytes, headers: Mapping[str, str], on_resend: Callable[[], None]
    ) -> Answer: ...

    async def aclose(self) -> None: ...


TransportFactory = Callable[[Endpoint], Transport]


def tls_context() -> ssl.SSLContext:
    """Certificate-checking TLS, as http.client uses by default, announcing HTTP/1.1."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


class _Connection:
    """One keep-alive HTTP/1.1 connection: answers framed by Content-Length, chunks or close."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def reusable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()

    async def exchange(self, request: bytes) -> Answer:
        self.writer.write(request)
        await self.writer.drain()
        status, version, headers = await self._read_head(first=True)
        while 100 <= status < 200 and status != 101:
            status, version, headers = await self._read_head(first=False)
        body, delimited = await self._read_body(status, headers)
        tokens = headers.get("connection", "").lower()
        persistent = "close" not in tokens if version == "HTTP/1.1" else "keep-alive" in tokens
        return Answer(status, body, delimited and persistent, headers.get("retry-after"))

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
            raise http.client.LineTooLong(f"response line over {MAX_HEAD_BYTES} bytes") from None

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
            if not length.isdigit() or int(length) > MAX_RESPONSE_BYTES:
                raise http.client.HTTPException(f"invalid Content-Length {length[:40]!r}")
            return await self._exactly(int(length)), True
        parts, size = [], 0
        while chunk := await self.reader.read(_RECEIVE_BYTES):
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise http.client.HTTPException(f"response over {MAX_RESPONSE_BYTES} bytes")
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
            if size > MAX_RESPONSE_BYTES:
                raise http.client.HTTPException(f"response over {MAX_RESPONSE_BYTES} bytes")
            chunk = await self._exactly(chunk_size + 2)
            if not chunk.endswith(b"\r\n"):
                raise http.client.HTTPException("chunk not followed by CRLF")
            parts.append(chunk[:-2])
        while await self._until(b"\r\n"):
            pass
        return b"".join(parts)


class KeepAliveTransport:
    """The default transport: idle connections are reused, one request at a time on each."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._tls = tls_context() if endpoint.scheme == "https" else None
        self._idle: list[_Connection] = []

    async def post(
        self, body: bytes, headers: Mapping[str, str], on_resend: Callable[[], None]
    ) -> Answer:
        """One POST on an idle connection or a new one. A reused connection that the server closed
        is replaced by one new connection, never by another idle one (each could be stale too):
        the engine sees such a request at most twice, and on_resend counts the second."""
        request = self._encode(body, headers)
        idle = self._idle_connection()
        if idle is not None:
            try:
                return await self._exchange(idle, request)
            except STALE_CONNECTION_ERRORS:
                on_resend()
        return await self._exchange(await self._connect(), request)

    async def aclose(self) -> None:
        closing = [connection.writer for connection in self._idle]
        self._idle = []
        for writer in closing:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in closing), return_exceptions=True)

    def _encode(self, body: bytes, headers: Mapping[str, str]) -> bytes:
        lines = [
            f"POST {self.endpoint.target} HTTP/1.1",
            f"Host: {self.endpoint.host_header}",
            "Accept-Encoding: identity",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def _connect(self) -> _Connection:
        host = self.endpoint.host
        try:
            reader, writer = await asyncio.open_connection(
                host,
                self.endpoint.port,
                ssl=self._tls,
                server_hostname=host if self._tls is not None else None,
                limit=MAX_HEAD_BYTES,
            )
        except OSError as exc:
            raise ConnectFailed(self.endpoint.connect_problem(exc)) from None
        return _Connection(reader, writer)

    def _idle_connection(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable():
                return connection
            connection.close()
        return None

    async def _exchange(self, connection: _Connection, request: bytes) -> Answer:
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
