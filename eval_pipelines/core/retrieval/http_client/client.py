"""HttpRetriever: a remote engine behind the Retriever interface, its calls run as coroutines on one event-loop thread."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from eval_pipelines.core.retrieval.config import HTTP, RetrieverConfig
from eval_pipelines.core.retrieval.execution import (
    ERROR_INVALID_QUERY,
    ERROR_MISSING_SECRET,
    CallRecorder,
    Execution,
    check_limit,
    query_problem,
)
from eval_pipelines.core.retrieval.http_client.outcome import Prepared, call_outcome
from eval_pipelines.core.retrieval.http_client.request import (
    JSON_HEADERS,
    checked_headers,
    request_body,
)
from eval_pipelines.core.retrieval.http_client.responses import ResponseReader
from eval_pipelines.core.retrieval.http_client.retry import Attempts, RetryPolicy
from eval_pipelines.core.retrieval.http_client.secrets import (
    MaskCache,
    MissingSecretError,
    basic_authorization,
    header_secrets,
    resolve_headers,
)
from eval_pipelines.core.retrieval.http_client.transport import (
    Answer,
    Endpoint,
    KeepAliveTransport,
    Transport,
    TransportFactory,
)
from eval_pipelines.core.retrieval.urls import redact_url

_SHUTDOWN_TIMEOUT_S = 10.0


class HttpRetriever:
    """A remote engine behind the Retriever interface; calls run on this retriever's event loop.

    timeout_s bounds each attempt as a whole: connecting, sending and reading the full answer.
    """

    # How calls reach the engine. Only the benchmark of HTTP libraries
    # (benchmarks/http_libraries.py) puts another one here.
    transport_factory: ClassVar[TransportFactory] = KeepAliveTransport

    def __init__(self, config: RetrieverConfig, *, jitter_seed: int | None = None) -> None:
        if config.kind != HTTP or config.http is None:
            raise ValueError(f"retriever {config.id!r} is not an http retriever")
        self.config = config
        self.http = config.http
        self._endpoint = Endpoint.from_url(self.http.url)
        path = self._endpoint.target.partition("?")[0]
        self._display_url = redact_url(
            f"{self._endpoint.scheme}://{self._endpoint.host_header}{path}"
        )
        self._basic_auth, self._url_secrets = basic_authorization(self.http.url)
        self._masks = MaskCache()
        self._reader = ResponseReader(self.http.response)
        self._retries = RetryPolicy(self.http, jitter_seed)
        self._loop_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._slots: asyncio.Semaphore | None = None
        self._transport: Transport | None = None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The loop every call of this retriever runs on, started on first use."""
        with self._loop_lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._slots = asyncio.Semaphore(self.http.concurrency)
                self._transport = None
                self._retries.unreachable_calls = 0
                self._loop_thread = threading.Thread(
                    target=self._loop.run_forever, name=f"http-{self.config.id}", daemon=True
                )
                self._loop_thread.start()
            return self._loop

    def search(
        self,
        query_input: dict[str, Any],
        limit: int | None = None,
        execution_id: str | None = None,
    ) -> Execution:
        limit = check_limit(limit)
        return asyncio.run_coroutine_threadsafe(
            self._search(query_input, limit, execution_id), self._running_loop()
        ).result()

    def search_many(
        self, query_inputs: Sequence[dict[str, Any]], limit: int | None = None
    ) -> list[Execution]:
        """Executions in input order; at most `concurrency` calls in flight."""
        check_limit(limit)
        if not query_inputs:
            return []
        return asyncio.run_coroutine_threadsafe(
            self._search_all(query_inputs, limit), self._running_loop()
        ).result()

    async def _search_all(
        self, query_inputs: Sequence[dict[str, Any]], limit: int | None
    ) -> list[Execution]:
        executions: dict[int, Execution] = {}
        queue = iter(enumerate(query_inputs))

        async def work() -> None:
            for index, query_input in queue:
                executions[index] = await self._search(query_input, limit, None)

        workers = [
            asyncio.ensure_future(work())
            for _ in range(min(self.http.concurrency, len(query_inputs)))
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
        return [executions[index] for index in range(len(query_inputs))]

    async def _search(
        self, query_input: dict[str, Any], limit: int | None, execution_id: str | None
    ) -> Execution:
        assert self._slots is not None
        async with self._slots:
            prepared = self._prepare(query_input, limit, execution_id)
            if prepared.refusal is not None:
                return prepared.refusal
            transport = self._open_transport()

            async def post(seen: Attempts) -> Answer:
                async with asyncio.timeout(self.http.timeout_s):
                    return await transport.post(prepared.body, prepared.headers, seen.count_resend)

            seen = await self._retries.send(post, prepared.mask)
            return call_outcome(prepared, seen, self._reader, self._display_url)

    def _open_transport(self) -> Transport:
        """This loop's transport, made on first use inside the loop (some need a running loop)."""
        if self._transport is None:
            self._transport = type(self).transport_factory(self._endpoint)
        return self._transport

    def _prepare(
        self, query_input: dict[str, Any], limit: int | None, execution_id: str | None
    ) -> Prepared:
        call = CallRecorder(
            retriever_id=self.config.id,
            pipeline_hash=self.config.pipeline_hash,
            query_input=query_input,
            execution_id=execution_id,
            total_stages=1,
        )
        effective_limit = self.http.limit if limit is None else limit
        problem = query_problem(query_input)
        mask = self._masks(self._url_secrets)
        if problem is not None:
            refusal = call.failed(ERROR_INVALID_QUERY, mask(problem), attempts=0)
            return Prepared(call, effective_limit, mask, refusal=refusal)
        try:
            headers = resolve_headers(self.http.headers, os.environ)
        except MissingSecretError as exc:
            refusal = call.failed(ERROR_MISSING_SECRET, f"{self.config.id}: {exc}", attempts=0)
            return Prepared(call, effective_limit, mask, refusal=refusal)
        if self._basic_auth is not None:
            headers = {"Authorization": self._basic_auth, **headers}
        body = request_body(self.http.request_body, query_input, effective_limit)
        sent_headers = checked_headers({**headers, **JSON_HEADERS})
        secrets = header_secrets(self.http.headers, os.environ) + self._url_secrets
        return Prepared(call, effective_limit, self._masks(secrets), body, sent_headers)

    def close(self) -> None:
        """Cancel calls still running, close every keep-alive connection and stop the loop thread."""
        with self._loop_lock:
            loop, thread = self._loop, self._loop_thread
            self._loop = self._loop_thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(_SHUTDOWN_TIMEOUT_S)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_SHUTDOWN_TIMEOUT_S)
            if not thread.is_alive():
                loop.close()

    async def _shutdown(self) -> None:
        running = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.aclose()

    def __enter__(self) -> HttpRetriever:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
