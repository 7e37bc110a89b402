"""A fixed-latency search engine for the HTTP replay benchmark, run in its own process (stdlib only).

It speaks the default http-retriever protocol (POST {"inputs": query_input, "limit": N}, answer
{"documents": [{document_id, score}], "stage_statistics": {...}}) over HTTP/1.1 keep-alive on
127.0.0.1, answering every request `latency_ms` after it arrived. The ranking is a pure function of
the path and the query text (see `ranking`), so a benchmark can recompute what it must have received.
The process stops when its stdin closes (its parent ended), on SIGTERM, or after `max_seconds`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import select
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path

LOOPBACK = "127.0.0.1"
CORPUS_SIZE = 100_003  # prime, so every stride visits distinct documents
STAGE = "search"
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
STARTUP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
DEFAULT_MAX_SECONDS = 3600.0
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


def ranking(path: str, text: str, limit: int) -> list[str]:
    """The `limit` document ids the engine returns for `text` at `path`, best first."""
    digest = hashlib.blake2b(f"{path}\n{text}".encode(), digest_size=8).digest()
    seed = int.from_bytes(digest, "big")
    start, stride = seed % CORPUS_SIZE, 1 + (seed >> 20) % (CORPUS_SIZE - 1)
    return [f"doc{(start + i * stride) % CORPUS_SIZE:06d}" for i in range(min(limit, CORPUS_SIZE))]


@lru_cache(maxsize=65_536)
def _answer_body(path: str, text: str, limit: int, latency_ms: float) -> bytes:
    documents = ranking(path, text, limit)
    answer = {
        "documents": [
            {"document_id": document_id, "score": float(len(documents) - rank)}
            for rank, document_id in enumerate(documents)
        ],
        "stage_statistics": {
            "stages": {
                STAGE: {
                    "input_count": CORPUS_SIZE,
                    "output_count": len(documents),
                    "duration_ms": latency_ms,
                }
            }
        },
    }
    return json.dumps(answer, separators=(",", ":")).encode()


def _response(status: int, body: bytes, keep_alive: bool) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode("ascii") + body


def _error(status: int, problem: str, keep_alive: bool) -> bytes:
    return _response(status, json.dumps({"error": problem}).encode(), keep_alive)


class _Engine:
    """Shared by every connection: the latency and how many searches were answered."""

    def __init__(self, latency_ms: float) -> None:
        self.latency_s = latency_ms / 1000.0
        self.latency_ms = latency_ms
        self.answered = 0

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if method != "POST":
            return 405, b""
        try:
            request = json.loads(body)
            text = request["inputs"].get("text") or ""
            limit = request.get("limit", 100)
            if not isinstance(text, str) or not isinstance(limit, int) or limit < 0:
                raise ValueError("inputs.text must be a string and limit a non-negative integer")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return 400, json.dumps({"error": str(exc)}).encode()
        self.answered += 1
        return 200, _answer_body(path, text, limit, self.latency_ms)


class _Connection(asyncio.Protocol):
    """Parses requests as bytes arrive and writes each answer, in request order, after the latency."""

    def __init__(self, engine: _Engine) -> None:
        self.engine = engine
        self.buffer = bytearray()
        self.pending: deque[list[bytes | None]] = deque()
        self.transport: asyncio.Transport | None = None
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while not self.closing:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    self._reply_now(_error(400, "request head too large", keep_alive=False))
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                length = -1
            if len(parts) != 3 or not 0 <= length <= MAX_BODY_BYTES:
                self._reply_now(_error(400, "bad request line or length", keep_alive=False))
                return
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            body = bytes(self.buffer[end + 4 : total])
            del self.buffer[:total]
            method, target, version = parts
            keep_alive = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
            status, payload = self.engine.answer(method, target.split("?", 1)[0], body)
            self._reply_later(_response(status, payload, keep_alive))
            if not keep_alive:
                self.closing = True

    def _reply_now(self, response: bytes) -> None:
        self.closing = True
        self._reply_later(response, delay_s=0.0)

    def _reply_later(self, response: bytes, delay_s: float | None = None) -> None:
        slot: list[bytes | None] = [None]
        self.pending.append(slot)
        delay = self.engine.latency_s if delay_s is None else delay_s
        asyncio.get_running_loop().call_later(delay, self._ready, slot, response)

    def _ready(self, slot: list[bytes | None], response: bytes) -> None:
        slot[0] = response
        while self.pending and self.pending[0][0] is not None:
            ready = self.pending.popleft()[0]
            if self.transport is not None and ready is not None:
                self.transport.write(ready)
        if self.closing and not self.pending and self.transport is not None:
            self.transport.close()


async def serve(latency_ms: float, port: int, max_seconds: float) -> int:
    """Serve until stdin closes, SIGTERM or max_seconds; prints the port first, returns the count."""
    engine = _Engine(latency_ms)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def wait_for_stdin_to_close() -> None:
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_stdin_to_close, daemon=True).start()
    server = await loop.create_server(lambda: _Connection(engine), LOOPBACK, port, backlog=1024)
    async with server:
        print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max_seconds)
    return engine.answered


@contextmanager
def latency_server(latency_ms: float, max_seconds: float = DEFAULT_MAX_SECONDS) -> Iterator[str]:
    """Run the engine in a child process for the block; yields its base URL (http://127.0.0.1:port)."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--latency-ms",
            str(latency_ms),
            "--max-seconds",
            str(max_seconds),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT_S)
        line = process.stdout.readline().decode() if ready else ""
        if not line.startswith("port "):
            raise RuntimeError(f"latency server did not start within {STARTUP_TIMEOUT_S} s")
        yield f"http://{LOOPBACK}:{int(line.split()[1])}"
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)
        process.stdout.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS)
    arguments = parser.parse_args(argv)
    asyncio.run(serve(arguments.latency_ms, arguments.port, arguments.max_seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
