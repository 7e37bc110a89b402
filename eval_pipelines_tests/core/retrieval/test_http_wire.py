"""The HTTP client's own framing against a raw loopback server: chunks, close-delimited answers,
interim answers, connections the server drops, header checks, the shared concurrency limit."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.http_client import HttpRetriever
from eval_pipelines.core.retrieval.registry import load_retriever_config

from .conftest import write_retriever

ANSWER = json.dumps(
    {"documents": [{"document_id": "d1", "score": 2.0}, {"document_id": "d2", "score": 1.0}]}
).encode()


def sized(body: bytes, extra_headers: str = "") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra_headers}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


@dataclass
class Reply:
    raw: bytes
    close_after: bool = False
    hold_s: float = 0.0


@dataclass
class RawServer:
    """Answers the n-th request (on any connection) with replies[n] as raw bytes; the last repeats."""

    replies: list[Reply]
    heads: list[bytes] = field(default_factory=list)
    connections: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self, head: bytes) -> Reply:
        with self.lock:
            self.heads.append(head)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.replies[min(len(self.heads), len(self.replies)) - 1]

    def handle(self, connection: socket.socket) -> None:
        with self.lock:
            self.connections += 1
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(buffer) < length:
                buffer += connection.recv(65536)
            buffer = buffer[length:]
            reply = self.next_reply(head)
            time.sleep(reply.hold_s)
            with self.lock:
                self.in_flight -= 1
            connection.sendall(reply.raw)
            if reply.close_after:
                return


@pytest.fixture
def raw_server() -> Iterator[Callable[[list[Reply]], tuple[RawServer, str]]]:
    servers: list[socketserver.ThreadingTCPServer] = []

    def start(replies: list[Reply]) -> tuple[RawServer, str]:
        script = RawServer(replies)

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                script.handle(self.request)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
        servers.append(server)
        return script, f"http://127.0.0.1:{server.server_address[1]}/search"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def retriever(paths: DataPaths, url: str, **options: Any) -> HttpRetriever:
    config = {
        "id": "wire",
        "kind": "http",
        "http": {"url": url, "backoff_base_s": 0.001, "backoff_max_s": 0.01, **options},
    }
    return HttpRetriever(load_retriever_config(write_retriever(paths, config), paths))


def test_chunked_answer_is_joined_and_the_connection_kept(
    paths: DataPaths, raw_server: Any
) -> None:
    pieces = [ANSWER[:10], ANSWER[10:40], ANSWER[40:]]
    chunked = b"".join(f"{len(p):x};note=x\r\n".encode() + p + b"\r\n" for p in pieces)
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked + b"0\r\n\r\n"
    script, url = raw_server([Reply(raw)])
    with retriever(paths, url) as client:
        executions = [client.search({"text": "x"}) for _ in range(3)]
    assert [e.document_ids for e in executions] == [["d1", "d2"]] * 3
    assert script.connections == 1


def test_answer_delimited_by_close_opens_a_new_connection(
    paths: DataPaths, raw_server: Any
) -> None:
    raw = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + ANSWER
    script, url = raw_server([Reply(raw, close_after=True)])
    with retriever(paths, url) as client:
        executions = [client.search({"text": "x"}) for _ in range(2)]
    assert [(e.status, e.attempts) for e in executions] == [("completed", 1)] * 2
    assert script.connections == 2


def test_interim_answers_are_skipped(paths: DataPaths, raw_server: Any) -> None:
    _, url = raw_server([Reply(b"HTTP/1.1 100 Continue\r\n\r\n" + sized(ANSWER))])
    with retriever(paths, url) as client:
        execution = client.search({"text": "x"})
    assert execution.document_ids == ["d1", "d2"]


def test_request_is_one_well_formed_post(paths: DataPaths, raw_server: Any) -> None:
    script, url = raw_server([Reply(sized(ANSWER))])
    with retriever(paths, url + "?tenant=7", limit=5) as client:
        client.search({"text": "blue"})
    request_line, *header_lines = script.heads[0].decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    assert request_line == "POST /search?tenant=7 HTTP/1.1"
    assert headers["Host"] == url.split("/")[2]
    assert headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(b'{"inputs":{"text":"blue"},"limit":5}')


def test_connection_the_server_dropped_while_idle_is_replaced_without_a_retry(
    paths: DataPaths, raw_server: Any
) -> None:
    script, url = raw_server([Reply(sized(ANSWER), close_after=True)])
    with retriever(paths, url, max_retries=0) as client:
        first = client.search({"text": "x"})
        time.sleep(0.1)  # the server closes each connection after its answer: let it, while idle
        second = client.search({"text": "x"})
        time.sleep(0.1)
        third = client.search({"text": "x"})
    assert [(e.status, e.attempts) for e in (first, second, third)] == [("completed", 1)] * 3
    assert script.connections == 3


def test_truncated_answer_is_a_connection_error_and_retried(
    paths: DataPaths, raw_server: Any
) -> None:
    truncated = b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n" + ANSWER[:20]
    script, url = raw_server([Reply(truncated, close_after=True), Reply(sized(ANSWER))])
    with retriever(paths, url, max_retries=1) as client:
        recovered = client.search({"text": "x"})
    assert (recovered.status, recovered.attempts) == ("completed", 2)
    script.replies[:] = [Reply(b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n")]
    with retriever(paths, url, max_retries=0) as client:
        broken = client.search({"text": "x"})
    assert (broken.status, broken.error_type) == ("failed", "connection_error")
    assert "Content-Length" in (broken.error or "")


def test_header_value_with_a_line_break_is_refused_unsent_and_unechoed(
    paths: DataPaths, raw_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    script, url = raw_server([Reply(sized(ANSWER))])
    monkeypatch.setenv("EVAL_TEST_TOKEN", "s3cret\r\nX-Injected: 1")
    headers = {"Authorization": "Bearer ${env:EVAL_TEST_TOKEN}"}
    with (
        retriever(paths, url, headers=headers) as client,
        pytest.raises(ValueError, match="Authorization") as refused,
    ):
        client.search({"text": "x"})
    assert "s3cret" not in str(refused.value)
    assert script.heads == []


def test_callers_on_many_threads_share_one_concurrency_limit(
    paths: DataPaths, raw_server: Any
) -> None:
    script, url = raw_server([Reply(sized(ANSWER), hold_s=0.05)])
    with retriever(paths, url, concurrency=2, max_retries=0) as client:
        results: list[list[str]] = []

        def replay() -> None:
            executions = client.search_many([{"text": f"q{i}"} for i in range(4)])
            results.append([e.status for e in executions])

        callers = [threading.Thread(target=replay) for _ in range(3)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(timeout=30)
    assert results == [["completed"] * 4] * 3
    assert script.max_in_flight == 2
    assert script.connections <= 2


def test_close_stops_the_loop_thread_and_the_retriever_can_be_reused(
    paths: DataPaths, raw_server: Any
) -> None:
    _, url = raw_server([Reply(sized(ANSWER))])
    client = retriever(paths, url)
    assert client.search({"text": "x"}).status == "completed"
    client.close()
    assert not [t for t in threading.enumerate() if t.name == "http-wire"]
    assert client.search_many([{"text": "x"}, {"text": "y"}])[1].status == "completed"
    client.close()
    client.close()
    assert not [t for t in threading.enumerate() if t.name == "http-wire"]


def test_a_secret_in_a_garbled_status_line_is_masked_before_the_message_is_cut(
    paths: DataPaths, raw_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "tok-0123456789abcdef"
    status_line = "XTTP/1.1 " + "x" * 173 + f" Bearer {secret}\r\n\r\n"  # cut at 200: mid-secret
    script, url = raw_server([Reply(status_line.encode(), close_after=True)])
    monkeypatch.setenv("EVAL_TEST_TOKEN", secret)
    headers = {"Authorization": "Bearer ${env:EVAL_TEST_TOKEN}"}
    with retriever(paths, url, headers=headers, max_retries=0) as client:
        failed = client.search({"text": "x"})
    assert (failed.status, failed.error_type) == ("failed", "connection_error")
    assert "BadStatusLine" in (failed.error or "")
    assert secret[:8] not in (failed.error or "") and secret[-8:] not in (failed.error or "")
    assert script.heads and secret.encode() in script.heads[0]
