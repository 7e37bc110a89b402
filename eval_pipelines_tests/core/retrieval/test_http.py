"""HTTP retrievers against real loopback servers: retries, timeouts, bad answers, secrets, concurrency."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.http_client import HttpRetriever
from eval_pipelines.core.retrieval.http_server import serve_retriever
from eval_pipelines.core.retrieval.registry import load_retriever_config, open_retrievers

from .conftest import open_pipeline, pipeline_config, write_retriever

OK_BODY = {"documents": [{"document_id": "d1", "score": 2.5}, {"document_id": "d2", "score": 1.0}]}


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict[str, Any] = field(default_factory=lambda: dict(OK_BODY))
    hold_s: float = 0.0


@dataclass
class ScriptedServer:
    """Answers each POST with the next scripted reply (the last one repeats) and records requests."""

    replies: list[Reply]
    barrier: threading.Barrier | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self, headers: dict[str, str], body: bytes) -> Reply:
        with self.lock:
            self.requests.append({"headers": headers, "body": json.loads(body)})
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.replies[min(len(self.requests), len(self.replies)) - 1]

    def finished(self) -> None:
        with self.lock:
            self.in_flight -= 1


def _handler(script: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            reply = script.next_reply(dict(self.headers), body)
            if script.barrier is not None:
                script.barrier.wait(timeout=10)
            if reply.hold_s:
                script.released.wait(timeout=reply.hold_s)
            payload = (
                reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            )
            script.finished()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass

    return Handler


@pytest.fixture
def scripted() -> Iterator[Callable[..., tuple[ScriptedServer, str]]]:
    servers: list[tuple[ThreadingHTTPServer, threading.Thread, ScriptedServer]] = []

    def start(
        replies: list[Reply], barrier: threading.Barrier | None = None
    ) -> tuple[ScriptedServer, str]:
        script = ScriptedServer(replies, barrier)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        servers.append((server, thread, script))
        return script, f"http://127.0.0.1:{server.server_address[1]}/search"

    yield start
    for server, thread, script in servers:
        script.released.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def http_retriever(
    paths: DataPaths, url: str, retriever_id: str = "api", **options: Any
) -> HttpRetriever:
    config = {
        "id": retriever_id,
        "kind": "http",
        "http": {"url": url, "backoff_base_s": 0.001, "backoff_max_s": 0.01, **options},
    }
    return HttpRetriever(
        load_retriever_config(write_retriever(paths, config), paths), jitter_seed=7
    )


def test_success_reads_documents_and_sends_default_body(paths: DataPaths, scripted: Any) -> None:
    script, url = scripted([Reply()])
    with http_retriever(paths, url, limit=7) as retriever:
        query = {"text": "red shoes", "filters": {"brand": "acme"}}
        execution = retriever.search(query)
    assert execution.status == "completed", execution.error
    assert [(d.document_id, d.score) for d in execution.documents] == [("d1", 2.5), ("d2", 1.0)]
    assert script.requests[0]["body"] == {"inputs": query, "limit": 7}
    assert script.requests[0]["headers"]["Content-Type"] == "application/json"
    stage = execution.stages["http"]
    assert (stage.input_count, stage.output_count, stage.metadata["attempts"]) == (2, 2, 1)
    assert execution.attempts == 1
    assert execution.pipeline_hash == retriever.config.pipeline_hash


def test_5xx_is_retried_and_counted(paths: DataPaths, scripted: Any) -> None:
    script, url = scripted(
        [Reply(status=503, body=b"busy"), Reply(status=500, body=b"oops"), Reply()]
    )
    with http_retriever(paths, url, max_retries=3) as retriever:
        execution = retriever.search({"text": "x"})
    assert execution.status == "completed"
    assert execution.attempts == 3
    assert execution.stages["http"].metadata["attempts"] == 3
    assert len(script.requests) == 3


def test_5xx_exhausting_retries_fails(paths: DataPaths, scripted: Any) -> None:
    script, url = scripted([Reply(status=502, body=b"bad gateway")])
    with http_retriever(paths, url, max_retries=2) as retriever:
        execution = retriever.search({"text": "x"})
    assert (execution.status, execution.error_type, execution.attempts) == ("failed", "http_5xx", 3)
    assert "HTTP 502" in execution.error and "3 attempt(s)" in execution.error
    assert len(script.requests) == 3


def test_timeout_after_max_retries(paths: DataPaths, scripted: Any) -> None:
    script, url = scripted([Reply(hold_s=5.0)])
    with http_retriever(paths, url, timeout_s=0.2, max_retries=1) as retriever:
        execution = retriever.search({"text": "slow"})
    assert (execution.status, execution.error_type) == ("failed", "timeout")
    assert execution.attempts == 2
    assert "timed out after 0.2 s" in execution.error
    assert execution.stages["http"].error == execution.error
    assert len(script.requests) == 2


def test_4xx_is_not_retried(paths: DataPaths, scripted: Any) -> None:
    script, url = scripted([Reply(status=404, body=b'{"detail": "no such index"}')])
    with http_retriever(paths, url, max_retries=3) as retriever:
        execution = retriever.search({"text": "x"})
    assert (execution.status, execution.error_type, execution.attempts) == ("failed", "http_4xx", 1)
    assert "HTTP 404" in execution.error and "no such index" in execution.error
    assert len(script.requests) == 1


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"<html>not json</html>", "not valid JSON"),
        (
            {"documents": [{"document_id": "d1", "score": 1.0}, {"score": 0.5}]},
            "documents[1].document_id",
        ),
        ({"documents": [{"document_id": "d1", "score": "high"}]}, "documents[0].score"),
        ({"results": []}, "documents: expected a list"),
    ],
)
def test_malformed_answers_fail_without_retry(
    paths: DataPaths, scripted: Any, body: Any, fragment: str
) -> None:
    script, url = scripted([Reply(body=body)])
    with http_retriever(paths, url, max_retries=3) as retriever:
        execution = retriever.search({"text": "x"})
    assert (execution.status, execution.error_type) == ("failed", "malformed_response")
    assert fragment in execution.error
    assert len(script.requests) == 1


def test_connection_errors_are_retried(paths: DataPaths) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with http_retriever(
        paths, f"http://127.0.0.1:{closed_port}/search", max_retries=2
    ) as retriever:
        execution = retriever.search({"text": "x"})
    assert (execution.status, execution.error_type, execution.attempts) == (
        "failed",
        "connection_error",
        3,
    )


def test_header_secret_is_sent_but_never_recorded(
    paths: DataPaths, scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cret-token-value"
    echo = json.dumps({"error": f"bad token Bearer {secret}"}).encode()
    script, url = scripted([Reply(), Reply(status=401, body=echo)])
    monkeypatch.setenv("EVAL_TEST_API_KEY", secret)
    headers = {"Authorization": "Bearer ${env:EVAL_TEST_API_KEY}"}
    with http_retriever(paths, url, headers=headers) as retriever:
        ok = retriever.search({"text": "x"})
        rejected = retriever.search({"text": "x"})
        monkeypatch.delenv("EVAL_TEST_API_KEY")
        missing = retriever.search({"text": "x"})
    assert ok.status == "completed"
    assert script.requests[0]["headers"]["Authorization"] == f"Bearer {secret}"
    assert (rejected.error_type, rejected.attempts) == ("http_4xx", 1)
    assert "bad token ***" in rejected.error
    assert (missing.status, missing.error_type) == ("failed", "missing_secret")
    assert "EVAL_TEST_API_KEY" in missing.error and "Authorization" in missing.error
    assert len(script.requests) == 2  # nothing was sent without the secret
    for execution in (ok, rejected, missing):
        assert secret not in json.dumps(execution.to_detail())
    assert secret not in repr(retriever.config)


def test_a_secret_echoed_inside_a_json_string_is_masked_in_its_escaped_form(
    paths: DataPaths, scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = 'k3y"with\\quote-é'
    echo = json.dumps({"error": f"unknown key {secret}"}).encode()
    assert secret.encode() not in echo  # the engine's JSON escapes it
    script, url = scripted([Reply(status=403, body=echo)])
    monkeypatch.setenv("EVAL_TEST_API_KEY", secret)
    with http_retriever(paths, url, headers={"X-Api-Key": "${env:EVAL_TEST_API_KEY}"}) as retriever:
        rejected = retriever.search({"text": "x"})
    assert script.requests[0]["headers"]["X-Api-Key"] == secret
    assert rejected.error_type == "http_4xx"
    assert "unknown key ***" in rejected.error
    assert json.dumps(secret)[1:-1] not in rejected.error and "k3y" not in rejected.error


def test_concurrency_limit_is_respected(paths: DataPaths, scripted: Any) -> None:
    # Each request waits until three are in flight together: the limit is reached, never exceeded.
    script, url = scripted([Reply()], barrier=threading.Barrier(3))
    with http_retriever(paths, url, concurrency=3, max_retries=0, timeout_s=20) as retriever:
        queries = [{"text": f"q{i}"} for i in range(12)]
        executions = retriever.search_many(queries)
    assert [e.status for e in executions] == ["completed"] * 12
    assert [e.query_input for e in executions] == queries
    assert script.max_in_flight == 3
    assert len(script.requests) == 12


def test_remote_stage_statistics_are_kept_and_bad_ones_reported(
    paths: DataPaths, scripted: Any
) -> None:
    stats = {"stages": {"lexical": {"input_count": 1000, "output_count": 2, "duration_ms": 3.5}}}
    _, url = scripted(
        [
            Reply(body={**OK_BODY, "stage_statistics": stats}),
            Reply(body={**OK_BODY, "stage_statistics": {"lexical": {"input_count": -1}}}),
        ]
    )
    with http_retriever(paths, url) as retriever:
        good = retriever.search({"text": "x"})
        bad = retriever.search({"text": "x"})
    assert list(good.stages) == ["lexical"]
    assert good.stages["lexical"].efficiency == 2 / 1000
    assert list(bad.stages) == ["http"]
    assert bad.status == "completed"
    assert "stage_statistics ignored" in bad.warnings[0]


def test_custom_request_and_response_paths(paths: DataPaths, scripted: Any) -> None:
    answer = {"hits": {"items": [{"meta": {"sku": 17}, "relevance": 0.3}]}}
    script, url = scripted([Reply(body=answer)])
    options = {
        "request_body": {"q": "${text}", "size": "${limit}", "label": "query=${text}"},
        "response": {
            "documents_path": "hits.items",
            "id_field": "meta.sku",
            "score_field": "relevance",
            "stage_statistics_path": None,
        },
    }
    with http_retriever(paths, url, **options) as retriever:
        execution = retriever.search({"text": "blue hat"}, limit=5)
    assert script.requests[0]["body"] == {"q": "blue hat", "size": 5, "label": "query=blue hat"}
    assert [(d.document_id, d.score) for d in execution.documents] == [("17", 0.3)]


def _raw_post(base_url: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_served_pipeline_ranks_like_in_process(paths: DataPaths) -> None:
    pipeline = open_pipeline(
        paths,
        [
            {"stage_id": "feature_search", "parameters": {"fields": ["title", "description"]}},
            {"stage_id": "attribute_filter", "parameters": {"fields": ["price"]}},
            {"stage_id": "limit", "parameters": {"n": 10}},
        ],
    )
    queries = [
        {"text": "running shoes"},
        {"text": "rain jacket", "filters": {"price": {"lt": 100}}},
        {"text": "zzz"},
    ]
    with serve_retriever(pipeline) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        with http_retriever(paths, base_url + "/search") as client:
            remote = client.search_many(queries)
            limited = client.search(queries[0], limit=3)
        answers = [
            _raw_post(base_url, path, body)
            for path, body in (
                ("/search", b"{not json"),
                ("/search", b'{"inputs": {"text": 3}}'),
                ("/search", b'{"inputs": {"text": "x"}, "limit": -2}'),
                ("/other", b'{"inputs": {"text": "x"}}'),
            )
        ]
    local = pipeline.search_many(queries)
    for over_http, in_process in zip(remote, local, strict=True):
        assert over_http.status == "completed"
        assert [(d.document_id, d.score) for d in over_http.documents] == [
            (d.document_id, d.score) for d in in_process.documents
        ]
        assert list(over_http.stages) == ["feature_search", "attribute_filter", "limit"]
    assert limited.document_ids == local[0].document_ids[:3]
    assert [status for status, _ in answers] == [400, 400, 400, 404]
    assert "query_input.text" in answers[1][1]["error"]
    port = int(base_url.rsplit(":", 1)[1])
    with socket.socket() as probe, pytest.raises(OSError):
        probe.settimeout(2)
        probe.connect(("127.0.0.1", port))


def test_local_server_retriever_through_the_registry(paths: DataPaths) -> None:
    stages = [{"stage_id": "feature_search", "parameters": {"fields": ["title"], "top_k": 20}}]
    write_retriever(paths, pipeline_config("backend_pipeline", stages))
    write_retriever(
        paths,
        {
            "id": "local_api",
            "kind": "http",
            "http": {"url": "http://127.0.0.1:8080/search", "timeout_s": 5},
            "local_server": {"backend": "backend_pipeline"},
        },
    )
    queries = [{"text": "leather"}, {"text": "running"}]
    with open_retrievers(paths, ["local_api", "backend_pipeline"]) as retrievers:
        assert list(retrievers) == ["local_api", "backend_pipeline"]
        api = retrievers["local_api"]
        assert api.config.http is not None and not api.config.http.url.endswith(":8080/search")
        over_http = api.search_many(queries)
        in_process = retrievers["backend_pipeline"].search_many(queries)
        served_url = api.config.http.url
    assert [e.document_ids for e in over_http] == [e.document_ids for e in in_process]
    assert all(e.retriever_id == "local_api" for e in over_http)
    with http_retriever(paths, served_url, "after", max_retries=0, timeout_s=2) as stale:
        assert stale.search({"text": "leather"}).error_type == "connection_error"
