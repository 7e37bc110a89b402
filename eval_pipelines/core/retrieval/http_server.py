"""A loopback HTTP server answering searches with any retriever, for local_server retrievers and tests.

It speaks the default http-retriever protocol: POST {"inputs": query_input, "limit": N} and answer
{"documents": [{document_id, score}], "stage_statistics": {...}}. It binds 127.0.0.1 only.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from eval_pipelines.core.json_input import JsonProblem, decode_json
from eval_pipelines.core.retrieval.execution import ERROR_INVALID_QUERY, Execution, Retriever

LOOPBACK = "127.0.0.1"
SHUTDOWN_TIMEOUT_S = 5.0
IDLE_CONNECTION_TIMEOUT_S = 30.0


class _RetrieverServer(ThreadingHTTPServer):
    """Tracks open connections so that stopping the server also ends idle keep-alive handlers."""

    daemon_threads = True
    # Replays connect many clients at once; the default backlog of 5 resets connections beyond it.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], retriever: Retriever, route: str) -> None:
        super().__init__(address, _SearchHandler)
        self.retriever = retriever
        self.route = route
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _SearchHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_CONNECTION_TIMEOUT_S
    disable_nagle_algorithm = True
    server: _RetrieverServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request would drown the caller's output."""

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _bad_request(self, problem: str) -> None:
        self._reply(400, {"error": problem, "error_type": "bad_request"})

    def do_GET(self) -> None:
        self._reply(
            405 if urlsplit(self.path).path == self.server.route else 404, {"error": "use POST"}
        )

    def do_POST(self) -> None:
        if urlsplit(self.path).path != self.server.route:
            self._reply(404, {"error": f"not found; POST {self.server.route}"})
            return
        request = self._search_request()
        if request is None:
            return
        execution = self.server.retriever.search(*request)
        if execution.succeeded:
            self._reply(200, _answer(execution))
            return
        self._reply(
            400 if execution.error_type == ERROR_INVALID_QUERY else 500,
            {
                "execution_id": execution.execution_id,
                "error": execution.error,
                "error_type": execution.error_type,
            },
        )

    def _search_request(self) -> tuple[dict[str, Any], int | None] | None:
        """(query_input, limit) from the body; None after answering 400 saying what is wrong."""
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            self._bad_request("Content-Length: not an integer")
            return None
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            request = decode_json(raw)
        except JsonProblem as exc:
            self._bad_request(f"body: not valid JSON ({exc})")
            return None
        if not isinstance(request, dict) or not isinstance(request.get("inputs"), dict):
            self._bad_request("inputs: expected an object (the query_input)")
            return None
        limit = request.get("limit")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            self._bad_request("limit: expected a non-negative integer or null")
            return None
        return request["inputs"], limit


def _answer(execution: Execution) -> dict[str, Any]:
    """A completed search in the default http-retriever protocol."""
    return {
        "execution_id": execution.execution_id,
        "status": execution.status,
        "documents": [
            {"document_id": d.document_id, "score": d.score} for d in execution.documents
        ],
        "stage_statistics": {
            "stages": {name: s.to_dict() for name, s in execution.stages.items()},
            "total_time_ms": execution.total_time_ms,
            "credits_used": 0,
        },
    }


@contextmanager
def serve_retriever(
    retriever: Retriever, host: str = LOOPBACK, port: int = 0, path: str = "/search"
) -> Iterator[str]:
    """Serve `retriever` on 127.0.0.1 (port 0: an ephemeral one); yield the base URL; stop on exit."""
    if host not in (LOOPBACK, "localhost"):
        raise ValueError(f"host: the retriever server binds 127.0.0.1 only, got {host!r}")
    if not path.startswith("/"):
        raise ValueError(f"path: must start with '/', got {path!r}")
    server = _RetrieverServer((LOOPBACK, port), retriever, path)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"serve-{retriever.config.id}",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.close_open_connections()
        server.server_close()
        thread.join(timeout=SHUTDOWN_TIMEOUT_S)
