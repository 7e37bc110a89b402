"""A search engine on loopback that fails on purpose, for tests of retries and failed sessions.

It speaks the default http-retriever protocol like search_stub, but a FaultPlan decides, from the
query text alone (so tests know in advance), whether a request fails and how: HTTP 500, 429 with
Retry-After, HTTP 400, a stall longer than the client's timeout, a connection closed without an
answer, malformed JSON, or documents without ids. A fault is permanent, or transient: only the
first `failures` requests carrying that text fail. Every request is counted per text.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from eval_pipelines_tests.loopback import LoopbackServer, QuietHandler, serving

HTTP_500 = "http_500"
HTTP_429 = "http_429"
HTTP_400 = "http_400"
STALL = "stall"
DROP = "drop"
MALFORMED_JSON = "malformed_json"
MISSING_IDS = "missing_ids"
FAULT_KINDS = (HTTP_500, HTTP_429, HTTP_400, STALL, DROP, MALFORMED_JSON, MISSING_IDS)

# The error_type an HttpRetriever reports once a fault of each kind has used up its attempts.
CLIENT_ERROR_TYPE = {
    HTTP_500: "http_5xx",
    HTTP_429: "http_4xx",
    HTTP_400: "http_4xx",
    STALL: "timeout",
    DROP: "connection_error",
    MALFORMED_JSON: "malformed_response",
    MISSING_IDS: "malformed_response",
}
# Kinds a client can hope to outlive by asking again; the others are final answers.
RETRIED_KINDS = frozenset({HTTP_500, HTTP_429, STALL, DROP})

IDLE_CONNECTION_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 10.0

# (query_input, limit) -> the ranking to answer with, as (document_id, score)
Answer = Callable[[dict[str, Any], int | None], Sequence[tuple[str, float]]]


@dataclass(frozen=True)
class Fault:
    """How requests with one text fail: always (failures=None) or only the first `failures` ones."""

    kind: str
    failures: int | None = None
    retry_after: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind: {self.kind!r} is not one of {FAULT_KINDS}")
        if self.failures is not None and self.failures < 1:
            raise ValueError(f"failures: {self.failures} < 1 (use None for a permanent fault)")

    @property
    def permanent(self) -> bool:
        return self.failures is None


@dataclass(frozen=True)
class FaultRule:
    """A share of all query texts (picked by hash) that fail with `fault`."""

    share: float
    fault: Fault


@dataclass(frozen=True)
class FaultPlan:
    """Which texts fail: named texts first, then each rule takes the next `share` of hash space."""

    rules: Sequence[FaultRule] = ()
    by_text: Mapping[str, Fault] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        total = sum(rule.share for rule in self.rules)
        if any(rule.share < 0 for rule in self.rules) or total > 1:
            raise ValueError(f"rules: shares must be >= 0 and sum to <= 1, got {total}")

    def position(self, text: str) -> float:
        """Where the text falls in [0, 1), the same on every run and machine."""
        digest = hashlib.blake2b(f"{self.seed}\0{text}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def fault_for(self, text: str) -> Fault | None:
        if text in self.by_text:
            return self.by_text[text]
        position, upper = self.position(text), 0.0
        for rule in self.rules:
            upper += rule.share
            if position < upper:
                return rule.fault
        return None


def fixed_answer(query_input: dict[str, Any], limit: int | None) -> list[tuple[str, float]]:
    """Three documents named after the text, so an answer shows which query it belongs to."""
    text = str(query_input.get("text") or "")
    documents = [(f"{text}#{rank}", float(3 - rank)) for rank in range(3)]
    return documents[:limit] if limit is not None else documents


@dataclass
class FaultServer:
    """The running server: its URL, and every request it received, per query text."""

    url: str
    plan: FaultPlan
    stall_s: float
    attempts: Counter[str] = field(default_factory=Counter)
    arrivals: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    connections: int = 0
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arrive(self, text: str) -> Fault | None:
        """Count one request; the fault to inject into it (None: answer normally)."""
        with self.lock:
            self.attempts[text] += 1
            self.arrivals[text].append(time.monotonic())
            fault = self.plan.fault_for(text)
            if fault is None or (
                fault.failures is not None and self.attempts[text] > fault.failures
            ):
                return None
            return fault


class _Server(LoopbackServer):
    """Remembers open connections so stopping also ends idle keep-alive and stalled handlers."""

    request_queue_size = 128

    def __init__(self, port: int, state: FaultServer | None, answer: Answer) -> None:
        super().__init__(_Handler, port)
        self.state = state
        self.answer = answer
        self.open: set[socket.socket] = set()
        self.open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.open_lock:
            self.open.add(request)
        if self.state is not None:
            with self.state.lock:
                self.state.connections += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.open_lock:
            self.open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self.open_lock:
            connections = list(self.open)
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def server_close(self) -> None:
        """Ends open connections first: closing joins the handler threads, and an idle
        keep-alive one would otherwise wait out its timeout."""
        self.close_open_connections()
        super().server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (after their timeout) are part of the game, not errors."""


class _Handler(QuietHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_CONNECTION_TIMEOUT_S
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:
        state = self.server.state
        assert state is not None
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        query_input, limit = body["inputs"], body.get("limit")
        fault = state.arrive(str(query_input.get("text") or ""))
        if fault is None:
            documents = self.server.answer(query_input, limit)
            payload = {"documents": [{"document_id": d, "score": s} for d, s in documents]}
            self.reply(200, json.dumps(payload))
        elif fault.kind in (HTTP_500, HTTP_429):
            asked = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            status = 500 if fault.kind == HTTP_500 else 429
            self.reply(status, b'{"error": "injected fault"}', asked)
        elif fault.kind == HTTP_400:
            self.reply(400, b'{"error": "injected bad request"}')
        elif fault.kind == STALL:
            state.released.wait(state.stall_s)
            self.close_connection = True
            with suppress(OSError):
                self.reply(200, b'{"documents": []}')
        elif fault.kind == DROP:
            self.close_connection = True
            with suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        elif fault.kind == MALFORMED_JSON:
            self.reply(200, b'{"documents": [{"document_id": "d1", "score": 1.0')
        elif fault.kind == MISSING_IDS:
            self.reply(200, b'{"documents": [{"score": 2.0}, {"document_id": "d2", "score": 1.0}]}')


@contextmanager
def fault_server(
    plan: FaultPlan,
    answer: Answer = fixed_answer,
    *,
    stall_s: float = 30.0,
    port: int = 0,
) -> Iterator[FaultServer]:
    """Serve POST /search on 127.0.0.1 (port 0: any free one) until the block ends; stall_s must
    exceed the client's timeout (a stalled request is released early when the server stops)."""
    server = _Server(port, None, answer)
    state = FaultServer(f"http://127.0.0.1:{server.server_address[1]}/search", plan, stall_s)
    server.state = state
    with serving(server, join_timeout_s=SHUTDOWN_TIMEOUT_S):
        try:
            yield state
        finally:
            state.released.set()
