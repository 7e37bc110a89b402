"""An engine's answer that json.loads cannot take without crashing (nesting 100,000 deep) or that is
not UTF-8 fails that one call as a malformed response; the replay goes on. Our loopback server
answers a client's unusable body with 400, never a crash."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest

from eval_pipelines.core.json_input import JsonProblem, decode_json
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.http_client import HttpRetriever
from eval_pipelines.core.retrieval.http_server import serve_retriever
from eval_pipelines.core.retrieval.registry import load_retriever_config, open_retrievers
from eval_pipelines_tests.loopback import LoopbackServer, QuietHandler, serving

from .conftest import pipeline_config, write_retriever

DEEP = b"[" * 100_000 + b"]" * 100_000
NOT_UTF8 = b'{"documents": [{"document_id": "caf\xe9", "score": 1}]}'
GOOD = b'{"documents": [{"document_id": "d1", "score": 1.0}]}'


@pytest.fixture
def engine() -> Iterator[str]:
    """Answers by query text: "deep" and "latin1" get unusable bodies, anything else one document."""

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            text = decode_json(body)["inputs"]["text"]
            self.reply(200, {"deep": DEEP, "latin1": NOT_UTF8}.get(text, GOOD))

    with serving(LoopbackServer(Handler)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/search"


def test_an_unusable_answer_fails_only_its_call(paths: DataPaths, engine: str) -> None:
    config = {"id": "api", "kind": "http", "http": {"url": engine, "max_retries": 0}}
    with HttpRetriever(load_retriever_config(write_retriever(paths, config), paths)) as retriever:
        outcomes = {text: retriever.search({"text": text}) for text in ("deep", "latin1", "ok")}
    assert outcomes["ok"].status == "completed"
    for text in ("deep", "latin1"):
        assert outcomes[text].status == "failed", text
        assert outcomes[text].error_type == "malformed_response", text
    assert "nested more than" in outcomes["deep"].error
    assert "not UTF-8 text" in outcomes["latin1"].error


def test_decode_json_names_bytes_that_are_not_utf8() -> None:
    with pytest.raises(JsonProblem) as caught:
        decode_json(NOT_UTF8)
    assert caught.value.problem.startswith("not UTF-8 text (invalid")


def test_the_loopback_server_answers_an_unusable_body_with_400(paths: DataPaths) -> None:
    stages = [{"stage_id": "feature_search", "parameters": {"fields": ["title"], "top_k": 20}}]
    write_retriever(paths, pipeline_config("local", stages))
    with open_retrievers(paths, ["local"]) as opened, serve_retriever(opened["local"]) as url:
        host, port = url.split("//")[1].split("/")[0].split(":")
        for body in (DEEP, NOT_UTF8):
            connection = http.client.HTTPConnection(host, int(port), timeout=10)
            connection.request("POST", "/search", body=body)
            answer = connection.getresponse()
            assert answer.status == 400
            assert b"not valid JSON" in answer.read()
            connection.close()
