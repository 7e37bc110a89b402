"""An HttpRetriever sends through a Transport (issue 12, the HTTP client in rooms).

Another transport behind the same interface receives every call with the body and headers the
default one would send, never the URL's user:password (only its Authorization header), and what
a transport raises is retried, masked and reported like the default transport's own failures.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import pytest

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.http_client import HttpRetriever
from eval_pipelines.core.retrieval.http_client.transport import (
    Answer,
    Endpoint,
    KeepAliveTransport,
)
from eval_pipelines.core.retrieval.registry import load_retriever_config
from eval_pipelines_tests.core.retrieval.conftest import write_retriever
from eval_pipelines_tests.search_stub import search_stub

SECRET = "tok-Vq93-never-shown"


class RecordingTransport(KeepAliveTransport):
    """The default transport, recording where each request went and what it carried."""

    sent: ClassVar[list[tuple[str, bytes, dict[str, str]]]] = []

    async def post(
        self, body: bytes, headers: Mapping[str, str], on_resend: Callable[[], None]
    ) -> Answer:
        self.sent.append((self.endpoint.url, body, dict(headers)))
        return await super().post(body, headers, on_resend)


class RecordingRetriever(HttpRetriever):
    transport_factory = RecordingTransport


class BrokenTransport:
    """Every post fails the way a library reports a protocol error, echoing the secret header."""

    posts: ClassVar[int] = 0

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def post(
        self, body: bytes, headers: Mapping[str, str], on_resend: Callable[[], None]
    ) -> Answer:
        type(self).posts += 1
        raise http.client.HTTPException(f"garbled answer to {headers['Authorization']}")

    async def aclose(self) -> None:
        return None


class BrokenRetriever(HttpRetriever):
    transport_factory = BrokenTransport


def config(paths: DataPaths, url: str, **options: Any) -> Any:
    written = {
        "id": "seam",
        "kind": "http",
        "http": {"url": url, "backoff_base_s": 0.001, "backoff_max_s": 0.01, **options},
    }
    return load_retriever_config(write_retriever(paths, written), paths)


def ranked(text: str) -> list[tuple[str, float]]:
    return [(f"{text}-{rank}", float(10 - rank)) for rank in range(3)]


def test_a_transport_put_in_place_receives_every_call_and_its_answers_are_mapped(
    paths: DataPaths,
) -> None:
    RecordingTransport.sent.clear()
    with search_stub(ranked) as url:
        with_credentials = url.replace("http://", "http://reader:pw-Hh2@")
        with RecordingRetriever(config(paths, with_credentials, limit=2)) as client:
            executions = client.search_many([{"text": f"q{i}"} for i in range(6)])
        with HttpRetriever(config(paths, with_credentials, limit=2)) as default:
            reference = default.search_many([{"text": f"q{i}"} for i in range(6)])
    assert [e.document_ids for e in executions] == [[f"q{i}-0", f"q{i}-1"] for i in range(6)]
    assert [e.document_ids for e in executions] == [e.document_ids for e in reference]
    assert [e.attempts for e in executions] == [1] * 6
    assert len(RecordingTransport.sent) == 6
    for target, body, headers in RecordingTransport.sent:
        assert target == url
        assert "pw-Hh2" not in target
        assert headers["Authorization"].startswith("Basic ")
        assert headers["Content-Type"] == "application/json"
        assert not {"host", "content-length"} & {name.lower() for name in headers}
        assert json.loads(body)["limit"] == 2
    assert sorted(json.loads(b)["inputs"]["text"] for _, b, _ in RecordingTransport.sent) == [
        f"q{i}" for i in range(6)
    ]


def test_what_a_transport_raises_is_retried_and_reported_with_the_secret_masked(
    paths: DataPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVAL_TEST_SEAM_TOKEN", SECRET)
    BrokenTransport.posts = 0
    headers = {"Authorization": "Bearer ${env:EVAL_TEST_SEAM_TOKEN}"}
    retriever_config = config(paths, "http://127.0.0.1:9/search", max_retries=2, headers=headers)
    with BrokenRetriever(retriever_config) as client:
        execution = client.search({"text": "x"})
    assert (execution.status, execution.error_type, execution.attempts) == (
        "failed",
        "connection_error",
        3,
    )
    assert BrokenTransport.posts == 3
    assert "HTTPException: garbled answer to ***" in (execution.error or "")
    assert SECRET not in (execution.error or "")
    assert SECRET not in json.dumps({n: s.to_dict() for n, s in execution.stages.items()})
