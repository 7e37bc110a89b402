"""The real HttpRetriever against a loopback engine that injects faults: what is retried, how often,
how long it waits, and that every call ends (never a hang), even when nothing listens at all."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, TypeVar

import pytest

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.http_client import HttpRetriever, parse_retry_after
from eval_pipelines.core.retrieval.registry import load_retriever_config
from eval_pipelines_tests.fault_server import (
    CLIENT_ERROR_TYPE,
    DROP,
    FAULT_KINDS,
    HTTP_429,
    HTTP_500,
    RETRIED_KINDS,
    STALL,
    Fault,
    FaultPlan,
    fault_server,
    fixed_answer,
)
from eval_pipelines_tests.loopback import free_port

from .conftest import write_retriever

T = TypeVar("T")
CALL_BOUND_S = 60.0
TIMEOUT_S = 0.3


def bounded(call: Callable[[], T], bound_s: float = CALL_BOUND_S) -> T:
    """The call's result, or a test failure (not a hung test run) if it takes over bound_s."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(call).result(timeout=bound_s)
    finally:
        pool.shutdown(wait=False)


def retriever(paths: DataPaths, url: str, jitter_seed: int = 7, **options: Any) -> HttpRetriever:
    config = {
        "id": "faulty",
        "kind": "http",
        "http": {
            "url": url,
            "timeout_s": TIMEOUT_S,
            "backoff_base_s": 0.001,
            "backoff_max_s": 0.01,
            **options,
        },
    }
    return HttpRetriever(
        load_retriever_config(write_retriever(paths, config), paths), jitter_seed=jitter_seed
    )


def expected_documents(text: str) -> list[str]:
    return [document for document, _ in fixed_answer({"text": text}, None)]


@pytest.mark.parametrize("kind", FAULT_KINDS)
@pytest.mark.parametrize("failures", [None, 2], ids=["permanent", "transient"])
def test_each_fault_is_retried_only_if_retrying_can_help(
    paths: DataPaths, kind: str, failures: int | None
) -> None:
    """Exact attempt counts, from the client and from the engine, for every kind of fault."""
    max_retries = 3
    fault = Fault(kind, failures, retry_after="0" if kind == HTTP_429 else None)
    with (
        fault_server(FaultPlan(by_text={"hit": fault})) as server,
        retriever(paths, server.url, max_retries=max_retries) as client,
    ):
        execution = bounded(lambda: client.search({"text": "hit"}))
    if kind not in RETRIED_KINDS:
        expected = ("failed", CLIENT_ERROR_TYPE[kind], 1)
    elif failures is None:
        expected = ("failed", CLIENT_ERROR_TYPE[kind], max_retries + 1)
    else:
        expected = ("completed", None, failures + 1)
    assert (execution.status, execution.error_type, execution.attempts) == expected
    assert server.attempts == {"hit": expected[2]}
    assert execution.stages["http"].metadata["attempts"] == expected[2]
    if execution.status == "completed":
        assert execution.document_ids == expected_documents("hit")
    else:
        assert execution.documents == []
    if kind in RETRIED_KINDS and failures is None:
        assert f"({max_retries + 1} attempt(s))" in (execution.error or "")


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        (HTTP_500, "HTTP 500"),
        (HTTP_429, "HTTP 429"),
        (STALL, f"timed out after {TIMEOUT_S:g} s"),
        (DROP, "RemoteDisconnected"),
    ],
)
def test_a_permanent_fault_is_reported_with_its_cause(
    paths: DataPaths, kind: str, fragment: str
) -> None:
    with (
        fault_server(FaultPlan(by_text={"hit": Fault(kind)})) as server,
        retriever(paths, server.url, max_retries=1) as client,
    ):
        execution = bounded(lambda: client.search({"text": "hit"}))
    assert fragment in (execution.error or "")
    assert execution.error == execution.stages["http"].error
    assert execution.error.startswith(f"POST {server.url}: ")


def test_backoff_is_full_jitter_under_a_doubling_ceiling(paths: DataPaths) -> None:
    base_s, max_s, retries = 0.01, 0.04, 5
    options = {"max_retries": retries, "backoff_base_s": base_s, "backoff_max_s": max_s}
    plan = FaultPlan(by_text={"hit": Fault(HTTP_500)})
    waits: dict[int, list[float]] = {}
    with fault_server(plan) as server:
        for seed in (1, 1, 2):
            with retriever(paths, server.url, jitter_seed=seed, **options) as client:
                execution = bounded(lambda c=client: c.search({"text": "hit"}))
            assert execution.attempts == retries + 1
            seed_waits = execution.stages["http"].metadata["retry_waits_ms"]
            assert waits.setdefault(seed, seed_waits) == seed_waits
        arrivals = server.arrivals["hit"]
    ceilings_ms = [min(max_s, base_s * 2**k) * 1000 for k in range(retries)]
    for seed_waits in waits.values():
        assert len(seed_waits) == retries
        assert all(0 <= w <= c for w, c in zip(seed_waits, ceilings_ms, strict=True))
    assert waits[1] != waits[2]
    gaps_ms = [(b - a) * 1000 for a, b in itertools.pairwise(arrivals)][-retries:]
    assert all(gap >= wait - 1 for gap, wait in zip(gaps_ms, waits[2], strict=True))


def test_retry_after_is_waited_for(paths: DataPaths) -> None:
    plan = FaultPlan(
        by_text={
            "busy": Fault(HTTP_429, failures=1, retry_after="1"),
            "restarting": Fault(HTTP_500, failures=1, retry_after="0.5"),
        }
    )
    with (
        fault_server(plan) as server,
        retriever(paths, server.url, max_retries=2, backoff_max_s=5) as client,
    ):
        busy = bounded(lambda: client.search({"text": "busy"}))
        restarting = bounded(lambda: client.search({"text": "restarting"}))
    for execution, asked_s, text in ((busy, 1.0, "busy"), (restarting, 0.5, "restarting")):
        assert (execution.status, execution.attempts) == ("completed", 2)
        [wait_ms] = execution.stages["http"].metadata["retry_waits_ms"]
        assert asked_s * 1000 <= wait_ms <= asked_s * 1000 + 1
        first, second = server.arrivals[text]
        assert second - first >= asked_s


def test_retry_after_is_capped_by_backoff_max(paths: DataPaths) -> None:
    plan = FaultPlan(by_text={"hit": Fault(HTTP_429, retry_after="3600")})
    with (
        fault_server(plan) as server,
        retriever(paths, server.url, max_retries=2, backoff_max_s=0.2) as client,
    ):
        execution = bounded(lambda: client.search({"text": "hit"}))
    assert (execution.status, execution.error_type, execution.attempts) == ("failed", "http_4xx", 3)
    assert execution.stages["http"].metadata["retry_waits_ms"] == [200.0, 200.0]
    assert "HTTP 429" in execution.error and "Retry-After: 3600" in execution.error
    assert server.attempts == {"hit": 3}


def test_retry_after_forms() -> None:
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    in_ten_s = format_datetime(now + timedelta(seconds=10), usegmt=True)
    an_hour_ago = format_datetime(now - timedelta(hours=1), usegmt=True)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 0.25 ", now) == 0.25
    assert parse_retry_after(in_ten_s, now) == 10.0
    assert parse_retry_after(an_hour_ago, now) == 0.0
    assert parse_retry_after("-3", now) == 0.0
    for unusable in (None, "", "soon", "nan", "inf", "1e999"):
        assert parse_retry_after(unusable, now) is None


def test_a_drop_on_a_reused_connection_is_sent_again_once_on_a_new_one(
    paths: DataPaths,
) -> None:
    """A request the engine closed a kept-alive connection under cannot be told from one the
    engine's idle timeout closed: it goes once more on a new connection, not on each idle one,
    and without costing a retry. So the engine sees it twice, never more, and attempts says 2."""
    plan = FaultPlan(by_text={"dropped": Fault(DROP), "dropped_once": Fault(DROP, failures=1)})
    with (
        fault_server(plan) as server,
        retriever(paths, server.url, max_retries=0, concurrency=4) as client,
    ):
        warm = bounded(lambda: client.search_many([{"text": f"warm{i}"} for i in range(8)]))
        pooled = server.connections
        recovered = bounded(lambda: client.search({"text": "dropped_once"}))
        dropped = bounded(lambda: client.search({"text": "dropped"}))
    assert [e.status for e in warm] == ["completed"] * 8
    assert pooled >= 2
    assert (recovered.status, recovered.attempts) == ("completed", 2)
    assert recovered.stages["http"].metadata["resent_after_closed_connection"] == 1
    assert (dropped.status, dropped.error_type, dropped.attempts) == (
        "failed",
        "connection_error",
        2,
    )
    assert (server.attempts["dropped_once"], server.attempts["dropped"]) == (2, 2)


class SilentListener:
    """A socket that accepts connections (the kernel's backlog) but never reads or answers."""

    def __enter__(self) -> str:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}/search"

    def __exit__(self, *exc_info: object) -> None:
        self.socket.close()


@pytest.mark.parametrize("engine", ["stalled_handler", "never_accepted"])
def test_an_engine_that_never_answers_times_out_on_every_attempt(
    paths: DataPaths, engine: str
) -> None:
    queries = [{"text": f"q{i}"} for i in range(6)]
    server_context: Any = (
        fault_server(FaultPlan(by_text={q["text"]: Fault(STALL) for q in queries}))
        if engine == "stalled_handler"
        else SilentListener()
    )
    with server_context as served:
        url = served if isinstance(served, str) else served.url
        with retriever(paths, url, max_retries=2, concurrency=3) as client:
            executions = bounded(lambda: client.search_many(queries))
    assert [(e.status, e.error_type, e.attempts) for e in executions] == [
        ("failed", "timeout", 3)
    ] * len(queries)
    assert all(e.total_time_ms >= 3 * TIMEOUT_S * 1000 for e in executions)
    if not isinstance(served, str):
        assert served.attempts == {q["text"]: 3 for q in queries}


def test_an_engine_that_is_down_fails_fast_and_says_so(paths: DataPaths) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/search"
    retries = 3
    with retriever(paths, url, max_retries=retries) as client:
        one_by_one = [bounded(lambda i=i: client.search({"text": f"q{i}"})) for i in range(5)]
        with fault_server(FaultPlan(), port=port) as server:
            recovered = bounded(lambda: client.search({"text": "back"}))
            also_served = bounded(lambda: client.search({"text": "x"}))
        assert server.attempts == {"back": 1, "x": 1}
        after_recovery = [bounded(lambda i=i: client.search({"text": f"r{i}"})) for i in range(4)]
    for execution in one_by_one:
        assert (execution.status, execution.error_type) == ("failed", "connection_error")
        assert f"cannot connect to 127.0.0.1:{port}: connection refused" in execution.error
    assert [e.attempts for e in one_by_one] == [retries + 1] * 3 + [1] * 2
    assert "not retried: the previous 3+ calls could not connect either" in one_by_one[3].error
    assert "not retried" not in one_by_one[2].error
    assert (recovered.status, recovered.attempts) == ("completed", 1)
    assert also_served.status == "completed"
    assert [e.attempts for e in after_recovery] == [retries + 1] * 3 + [1]


def test_a_replay_against_a_down_engine_ends_with_every_call_failed(paths: DataPaths) -> None:
    url = f"http://127.0.0.1:{free_port()}/search"
    queries = [{"text": f"q{i}"} for i in range(40)]
    with retriever(paths, url, max_retries=3, concurrency=4) as client:
        executions = bounded(lambda: client.search_many(queries))
    assert [e.query_input for e in executions] == queries
    assert {(e.status, e.error_type) for e in executions} == {("failed", "connection_error")}
    assert all("connection refused" in (e.error or "") for e in executions)
    assert executions[-1].attempts == 1
    assert sum(e.attempts for e in executions) < len(queries) * 4 / 2
