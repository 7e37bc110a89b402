"""Benchmark of HTTP client libraries: httpx and aiohttp against the stdlib transport, on the replay-over-HTTP workload.

Issue 12: adopt a library only if it keeps at least 90% of today's throughput and the replay stays
at >= 70% of the concurrency bound. Each library runs behind the same Transport interface as the
default (eval_pipelines.core.retrieval.http_client.transport), swapped in through
HttpRetriever.transport_factory for the measured step only; retries, masking, response mapping
and the Parquet writes are the same code for every contender. Contenders alternate (harness),
each replaying into its own scratch data directory, and every contender's output passes the
checks of replay_http. Neither library is a dependency: this module needs them installed
(`pip install httpx aiohttp`) and reports a missing one as unavailable.

    python -m perf.http_libraries --scale full --repeat 3 --output results.json
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

from eval_pipelines.core.benchmarks.replay import replay_sessions
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.http_client import HttpRetriever
from eval_pipelines.core.retrieval.http_client.transport import (
    Answer,
    ConnectFailed,
    Endpoint,
    KeepAliveTransport,
    TransportFactory,
)
from perf import replay_http
from perf.harness import BenchmarkResult, Target, format_table, run_contenders, write_results
from perf.latency_server import latency_server

NAME = "http_libraries"
BASELINE = "stdlib"
TARGET_SHARE_OF_BASELINE = 0.90
MAX_CONNECTIONS = 1024


class HttpxTransport:
    """httpx.AsyncClient (HTTP/1.1, keep-alive pool); its errors mapped to the transport contract."""

    def __init__(self, endpoint: Endpoint) -> None:
        import httpx

        self._httpx = httpx
        self._endpoint = endpoint
        self._client = httpx.AsyncClient(
            timeout=None,
            trust_env=False,
            limits=httpx.Limits(
                max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
            ),
        )

    async def post(
        self, body: bytes, headers: Mapping[str, str], on_resend: Callable[[], None]
    ) -> Answer:
        httpx = self._httpx
        try:
            response = await self._client.post(self._endpoint.url, content=body, headers=headers)
        except httpx.ConnectError as exc:
            raise ConnectFailed(f"cannot connect to {self._endpoint.host}: {exc}") from None
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.HTTPError as exc:
            raise http.client.HTTPException(f"{type(exc).__name__}: {exc}") from None
        return Answer(
            response.status_code, response.content, True, response.headers.get("retry-after")
        )

    async def aclose(self) -> None:
        await self._client.aclose()


class AiohttpTransport:
    """aiohttp.ClientSession over a TCPConnector pool; its errors mapped to the transport contract."""

    def __init__(self, endpoint: Endpoint) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        self._endpoint = endpoint
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
            timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=False,
            trust_env=False,
        )

    async def post(
        self, body: bytes, headers: Mapping[str, str], on_resend: Callable[[], None]
    ) -> Answer:
        aiohttp = self._aiohttp
        try:
            async with self._session.post(self._endpoint.url, data=body, headers=headers) as answer:
                content = await answer.read()
                return Answer(answer.status, content, True, answer.headers.get("Retry-After"))
        except aiohttp.ClientConnectorError as exc:
            raise ConnectFailed(self._endpoint.connect_problem(exc.os_error)) from None
        except aiohttp.ClientError as exc:
            raise http.client.HTTPException(f"{type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        await self._session.close()


TRANSPORTS: dict[str, TransportFactory] = {
    BASELINE: KeepAliveTransport,
    "httpx": HttpxTransport,
    "aiohttp": AiohttpTransport,
}


@contextmanager
def using_transport(factory: TransportFactory) -> Iterator[None]:
    """Every HttpRetriever opened in the block sends through `factory`'s transport."""
    previous = HttpRetriever.transport_factory
    HttpRetriever.transport_factory = factory
    try:
        yield
    finally:
        HttpRetriever.transport_factory = previous


def _missing_library(name: str) -> str | None:
    module = {"httpx": "httpx", "aiohttp": "aiohttp"}.get(name)
    if module is None:
        return None
    try:
        __import__(module)
    except ImportError:
        return f"{module} is not installed (pip install {module})"
    return None


def _replay_step(
    paths: DataPaths, sessions: pa.Table, factory: TransportFactory
) -> Callable[[], pa.Table]:
    def step() -> pa.Table:
        with using_transport(factory):
            return replay_sessions(
                paths, replay_http.BENCHMARK_ID, sessions, replay_http.PIPELINES, replay_http.DEPTH
            )

    return step


def _targets(rates: Mapping[str, float], bound: float) -> list[Target]:
    """For each library: its share of the bound, and of the baseline's throughput."""
    baseline_rate = rates.get(BASELINE, 0.0)
    targets = []
    for name, rate in rates.items():
        targets.append(
            Target(
                f"{name}: calls/s as a share of the bound ({bound:,.0f}/s)",
                rate / bound,
                replay_http.TARGET_SHARE_OF_BOUND,
                higher_is_better=True,
            )
        )
        if name != BASELINE and baseline_rate:
            targets.append(
                Target(
                    f"{name}: throughput as a share of {BASELINE}'s",
                    rate / baseline_rate,
                    TARGET_SHARE_OF_BASELINE,
                    higher_is_better=True,
                )
            )
    return targets


def run(
    scale: str, repeat: int, workdir: Path, seed: int = 4, names: Sequence[str] = tuple(TRANSPORTS)
) -> BenchmarkResult:
    sessions = replay_http.make_sessions(replay_http.SESSIONS[scale], seed)
    calls = sessions.num_rows * len(replay_http.PIPELINES)
    unavailable = {n: reason for n in names if (reason := _missing_library(n)) is not None}
    usable = [n for n in names if n not in unavailable]
    with latency_server(replay_http.LATENCY_MS) as base_url:
        worlds = {}
        for name in usable:
            paths = DataPaths(workdir / name / "data")
            worlds[name] = (paths, replay_http.write_http_retrievers(paths, base_url))
        contenders = [
            (name, _replay_step(worlds[name][0], sessions, TRANSPORTS[name])) for name in usable
        ]
        results, outputs = run_contenders(contenders, repeat, items=calls)
    checks = {
        name: replay_http.check_replays(
            outputs[name], sessions, worlds[name][1], worlds[name][0], seed
        )
        for name in usable
    }
    bound = replay_http.CONCURRENCY / (replay_http.LATENCY_MS / 1000.0)
    rates = {result.name: result.items_per_second or 0.0 for result in results}
    baseline_rate = rates.get(BASELINE, 0.0)
    targets = _targets(rates, bound)
    return BenchmarkResult(
        name=NAME,
        parameters={
            "sessions": sessions.num_rows,
            "pipelines": len(replay_http.PIPELINES),
            "calls": calls,
            "concurrency": replay_http.CONCURRENCY,
            "latency_ms": replay_http.LATENCY_MS,
            "bound_calls_per_second": bound,
            "calls_per_second": rates,
            "sessions_per_second": {
                name: rate / len(replay_http.PIPELINES) for name, rate in rates.items()
            },
            "share_of_bound": {name: rate / bound for name, rate in rates.items()},
            "share_of_baseline": {
                name: rate / baseline_rate for name, rate in rates.items() if baseline_rate
            },
            "timed_repetitions": repeat,
            "seed": seed,
        },
        contenders=results,
        checks=checks,
        targets=targets,
        notes=[
            "a library is adopted only if both of its targets are met;"
            " contenders alternate after one warm-up round.",
            "httpx and aiohttp retry a request on a stale keep-alive connection inside the"
            " library, so attempts may undercount there; the default transport counts each.",
        ],
        unavailable=unavailable,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perf.http_libraries", description=__doc__)
    parser.add_argument("--scale", choices=tuple(replay_http.SESSIONS), default="full")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--transports", nargs="+", choices=tuple(TRANSPORTS), default=None)
    parser.add_argument("--output", type=Path, default=Path("http-libraries.json"))
    arguments = parser.parse_args(argv)
    if arguments.repeat < 1:
        parser.error("--repeat must be at least 1")
    names = arguments.transports or tuple(TRANSPORTS)
    with tempfile.TemporaryDirectory(prefix="bench-http-libraries-") as scratch:
        result = run(arguments.scale, arguments.repeat, Path(scratch), names=names)
    print(format_table([result]))
    written = write_results([result], arguments.output, arguments.scale, arguments.repeat)
    print(f"results: {written}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
