"""Every request put on the wire is counted in the execution's attempts (issue 10, point 18).

The engine here answers the first request on each connection without `Connection: close`, so the
client keeps the connection, and then reads the next request on it, counts it, and closes without
answering: an engine (or proxy) that drops reused connections. The client sends such a request
again on a new connection; both requests reached the engine, so both are attempts.
"""

from __future__ import annotations

import json
import threading

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.http_client import HttpRetriever
from eval_pipelines.core.retrieval.registry import load_retriever_config
from eval_pipelines_tests.core.retrieval.conftest import write_retriever
from eval_pipelines_tests.loopback import LoopbackServer, QuietHandler, serving

CALLS = 50


class DropsReusedConnections(LoopbackServer):
    def __init__(self) -> None:
        super().__init__(_Handler)
        self.received = 0
        self.answered = 0
        self.lock = threading.Lock()


class _Handler(QuietHandler):
    protocol_version = "HTTP/1.1"
    server: DropsReusedConnections
    served_here = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.received += 1
        if self.served_here:
            self.close_connection = True  # read and counted, then dropped unanswered
            return
        self.served_here += 1
        self.reply(200, json.dumps({"documents": [{"document_id": "d1", "score": 1.0}]}))
        with self.server.lock:
            self.server.answered += 1


def client(paths: DataPaths, port: int, concurrency: int) -> HttpRetriever:
    config = {
        "id": "dropping",
        "kind": "http",
        "http": {
            "url": f"http://127.0.0.1:{port}/search",
            "timeout_s": 5,
            "max_retries": 0,
            "concurrency": concurrency,
        },
    }
    return HttpRetriever(load_retriever_config(write_retriever(paths, config), paths))


def test_attempts_sum_to_the_requests_the_engine_received(paths: DataPaths) -> None:
    with (
        serving(DropsReusedConnections()) as engine,
        client(paths, engine.server_address[1], 1) as retriever,
    ):
        executions = [retriever.search({"text": f"q{i}"}) for i in range(CALLS)]
    assert [e.status for e in executions] == ["completed"] * CALLS
    assert engine.answered == CALLS
    assert engine.received == 2 * CALLS - 1  # every call but the first met a dropped connection
    assert sum(e.attempts for e in executions) == engine.received
    assert [e.attempts for e in executions] == [1] + [2] * (CALLS - 1)
    resent = [e.stages["http"].metadata.get("resent_after_closed_connection") for e in executions]
    assert resent == [None] + [1] * (CALLS - 1)


def test_attempts_match_under_concurrency(paths: DataPaths) -> None:
    with (
        serving(DropsReusedConnections()) as engine,
        client(paths, engine.server_address[1], 8) as retriever,
    ):
        executions = retriever.search_many([{"text": f"q{i}"} for i in range(CALLS)])
    assert [e.status for e in executions] == ["completed"] * CALLS
    assert engine.answered == CALLS
    assert sum(e.attempts for e in executions) == engine.received
    assert engine.received > CALLS
