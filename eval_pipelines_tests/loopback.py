"""Loopback HTTP engines for tests: serve a handler on 127.0.0.1 in a thread and always stop it.

Tests talk to real servers rather than mocks; this keeps the plumbing (start, stop, quiet log,
one call to answer) in one place so each test file shows only how its engine answers.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

JSON = "application/json"
POLL_INTERVAL_S = 0.05
JOIN_TIMEOUT_S = 10.0

Server = TypeVar("Server", bound=ThreadingHTTPServer)


def free_port() -> int:
    """A loopback port nobody listens on right now, for servers a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LoopbackServer(ThreadingHTTPServer):
    """127.0.0.1 on `port` (0: any free one); handler threads are daemons, so a client left
    hanging cannot keep the test process alive."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), handler)


@contextmanager
def serving(server: Server, *, join_timeout_s: float = JOIN_TIMEOUT_S) -> Iterator[Server]:
    """Serve until the block ends, then stop even if the test failed: a leftover server would
    keep its port and threads for the rest of the session. Yields the server."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL_S}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=join_timeout_s)


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps pytest's output free of access logs and answers in one call."""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: every request would otherwise print a line on stderr."""

    def reply(
        self,
        status: int,
        body: bytes | str,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = JSON,
    ) -> None:
        """Send a whole answer with its Content-Length (content_type None: no such header)."""
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
