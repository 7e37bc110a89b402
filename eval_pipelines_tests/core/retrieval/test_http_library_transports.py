"""The httpx and aiohttp transports the benchmark of HTTP libraries swaps in keep the transport
contract: against the same faulty engine they give the default transport's executions."""

from __future__ import annotations

from typing import Any

import pytest

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.http_client import HttpRetriever
from eval_pipelines.core.retrieval.registry import load_retriever_config
from eval_pipelines_tests.core.retrieval.conftest import write_retriever
from eval_pipelines_tests.fault_server import (
    HTTP_400,
    HTTP_429,
    HTTP_500,
    MALFORMED_JSON,
    MISSING_IDS,
    Fault,
    FaultPlan,
    fault_server,
)

PLAN = FaultPlan(
    by_text={
        "flaky": Fault(HTTP_500, failures=1),
        "busy": Fault(HTTP_429, failures=1, retry_after="0"),
        "down": Fault(HTTP_500),
        "bad": Fault(HTTP_400),
        "garbled": Fault(MALFORMED_JSON),
        "idless": Fault(MISSING_IDS),
    }
)
TEXTS = ["ok", "flaky", "busy", "down", "bad", "garbled", "idless", "fine"]


def outcomes(paths: DataPaths, url: str, retriever_class: type[HttpRetriever]) -> list[Any]:
    config = {
        "id": "library",
        "kind": "http",
        "http": {"url": url, "max_retries": 2, "backoff_base_s": 0.001, "backoff_max_s": 0.01},
    }
    with retriever_class(load_retriever_config(write_retriever(paths, config), paths)) as client:
        executions = client.search_many([{"text": text} for text in TEXTS])
    return [(e.status, e.error_type, e.attempts, e.document_ids) for e in executions]


@pytest.mark.parametrize("library", ["httpx", "aiohttp"])
def test_a_library_transport_gives_the_default_transports_executions(
    paths: DataPaths, library: str
) -> None:
    pytest.importorskip(library)
    from perf.http_libraries import TRANSPORTS

    class LibraryRetriever(HttpRetriever):
        transport_factory = TRANSPORTS[library]

    with fault_server(PLAN) as server:
        expected = outcomes(paths, server.url, HttpRetriever)
        default_requests = dict(server.attempts)
    with fault_server(PLAN) as server:
        received = outcomes(paths, server.url, LibraryRetriever)
        library_requests = dict(server.attempts)
    assert received == expected
    assert library_requests == default_requests
    assert [status for status, *_ in received] == [
        "completed",
        "completed",
        "completed",
        "failed",
        "failed",
        "failed",
        "failed",
        "completed",
    ]
