"""A credential given to an HTTP retriever through ${env:NAME} reaches the engine and nothing else.

A benchmark and an evaluation run through the real CLI against a loopback engine that sees the
credentials and, on some calls, answers with them: echoed headers in a 500 body, the bare token in a
401, a token cut by the length of the error snippet kept, a token in Retry-After and in a malformed
answer. Then every output is searched for the secrets (and for any 12-character piece of them):
records, every file under the data directory (Parquet decoded, the rest byte for byte), the Dagster
event log of every run, and what the CLI printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from dagster import DagsterInstance, serialize_value

from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.cli.conftest import CliResult, run_cli
from eval_pipelines_tests.loopback import LoopbackServer, QuietHandler, serving

TOKEN_VARIABLE = "EVAL_PIPELINES_TEST_SEARCH_TOKEN"
KEY_VARIABLE = "EVAL_PIPELINES_TEST_SEARCH_KEY"
SNIPPET_CHARS = 200  # what an error message keeps of an answer's body
PIECE = 12
# How the engine answers, by a hash of the query text (so every outcome is reproducible).
MODES = ("ok", "ok", "ok", "echo_headers_500", "bare_token_401", "cut_token_500")
MODES += ("retry_after_429", "malformed_200")


@dataclass
class Engine:
    """A search engine on loopback that checks the credentials and answers by mode."""

    token: str
    key: str
    calls: Counter = field(default_factory=Counter)
    with_credentials: int = 0
    url: str = ""


def mode_of(text: str) -> str:
    return MODES[int(hashlib.md5(text.encode()).hexdigest(), 16) % len(MODES)]


@pytest.fixture
def engine() -> Iterator[Engine]:
    state = Engine(token="tok-" + secrets.token_hex(20), key="key-" + secrets.token_hex(20))
    lock = threading.Lock()

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            mode = mode_of(body["inputs"]["text"])
            with lock:
                state.calls[mode] += 1
                state.with_credentials += (
                    self.headers.get("Authorization") == f"Bearer {state.token}"
                    and self.headers.get("X-Api-Key") == state.key
                )
            headers: dict[str, str] = {}
            if mode == "ok":
                status, payload = (
                    200,
                    json.dumps({"documents": [{"document_id": "prod_000001", "score": 1.0}]}),
                )
            elif mode == "echo_headers_500":
                status, payload = 500, json.dumps({"received_headers": dict(self.headers)})
            elif mode == "bare_token_401":
                status, payload = 401, f"token {state.token} is not valid for key {state.key}"
            elif mode == "cut_token_500":
                status, payload = 500, "x" * (SNIPPET_CHARS - PIECE) + state.token
            elif mode == "retry_after_429":
                status, payload = 429, "slow down"
                headers["Retry-After"] = f"never, {state.token}"
            else:
                status, payload = 200, f"<html>not json; you sent {state.key}</html>"
            self.reply(status, payload, headers, content_type=None)

    with serving(LoopbackServer(Handler)) as server:
        state.url = f"http://127.0.0.1:{server.server_address[1]}/search"
        yield state


@pytest.fixture
def world(world_copy: DataPaths, engine: Engine) -> DataPaths:
    """A private small demo world plus `guarded`, the engine's retriever with credentials."""
    paths = world_copy
    (paths.retrievers_dir / "guarded.yaml").write_text(
        yaml.safe_dump(
            {
                "id": "guarded",
                "name": "engine behind credentials",
                "kind": "http",
                "http": {
                    "url": engine.url,
                    "timeout_s": 5,
                    "max_retries": 1,
                    "backoff_base_s": 0.01,
                    "backoff_max_s": 0.05,
                    "headers": {
                        "Authorization": f"Bearer ${{env:{TOKEN_VARIABLE}}}",
                        "X-Api-Key": f"${{env:{KEY_VARIABLE}}}",
                    },
                },
            }
        )
    )
    return paths


def pieces(secret: str) -> set[str]:
    return {secret[i : i + PIECE] for i in range(len(secret) - PIECE + 1)}


def leaks(text: str, engine: Engine) -> list[str]:
    """Pieces of either secret found in text (a whole secret shows as all of its pieces)."""
    return sorted(p for p in pieces(engine.token) | pieces(engine.key) if p in text)


def file_texts(root: Path) -> Iterator[tuple[Path, str]]:
    """Every file under root as text: Parquet decoded row by row (it is compressed), others raw."""
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        if file.suffix == ".parquet":
            yield file, json.dumps(pq.read_table(file).to_pylist(), default=str)
        else:
            yield file, file.read_bytes().decode("latin-1")


def run(paths: DataPaths, engine: Engine, *args: str) -> CliResult:
    """The CLI with the credentials in its environment (and only there)."""
    os.environ[TOKEN_VARIABLE], os.environ[KEY_VARIABLE] = engine.token, engine.key
    try:
        return run_cli(paths.root, *args)
    finally:
        del os.environ[TOKEN_VARIABLE], os.environ[KEY_VARIABLE]


def test_credentials_reach_the_engine_and_no_output(world: DataPaths, engine: Engine) -> None:
    benchmark_args = ["benchmark", "create", "--name", "with credentials", "--baseline"]
    benchmark_args += ["demo_prod", "--candidate", "guarded", "--sessions", "40", "--wait"]
    benchmark_args += ["--min-coverage", "0"]  # the stub's documents were never shown
    outputs = {
        "retrievers list": run(world, engine, "retrievers", "list"),
        "benchmark create": run(world, engine, *benchmark_args),
        "evaluation run": run(
            world, engine, "evaluation", "run", "guarded", "--dataset", "demo-judgments", "--wait"
        ),
    }
    for output in outputs.values():
        assert output.returncode == 0, output.stderr[-3000:]
    benchmark = json.loads(outputs["benchmark create"].stdout)
    evaluation = json.loads(outputs["evaluation run"].stdout)
    assert benchmark["status"] == "completed" and evaluation["status"] == "completed"
    assert all(engine.calls[mode] for mode in set(MODES)), engine.calls
    assert engine.with_credentials == sum(engine.calls.values()), "every call carried both"
    guarded = next(r for r in benchmark["results"] if r["retriever_id"] == "guarded")
    assert guarded["failed_sessions"] > 0
    assert evaluation["skipped_reasons"].get("failed_execution", 0) > 0

    benchmark_id, evaluation_id = benchmark["benchmark_id"], evaluation["evaluation_id"]
    replays = pq.read_table(world.root / "benchmarks" / benchmark_id / "replays.parquet")
    failed = [
        r["replay_execution_id"]
        for r in replays.to_pylist()
        if r["retriever_id"] == "guarded" and r["status"] != "completed"
    ]
    assert failed
    outputs["execution get"] = run(world, engine, "execution", "get", "guarded", failed[0])
    outputs["benchmark get"] = run(world, engine, "benchmark", "get", benchmark_id)
    outputs["evaluation get"] = run(world, engine, "evaluation", "get", evaluation_id)
    outputs["benchmark list"] = run(world, engine, "benchmark", "list", "--json")
    for output in outputs.values():
        assert output.returncode == 0, output.stderr[-3000:]

    found = {
        f"cli: {name}": leaked
        for name, output in outputs.items()
        if (leaked := leaks(output.stdout + output.stderr, engine))
    }
    found |= {
        f"file: {file.relative_to(world.root)}": leaked
        for file, text in file_texts(world.root)
        if (leaked := leaks(text, engine))
    }
    with DagsterInstance.from_config(str(world.root / "dagster_home")) as instance:
        runs = instance.get_run_records()
        assert len(runs) == 2
        for record in runs:
            events = instance.all_logs(record.dagster_run.run_id)
            assert events, "the run logged its events"
            logged = serialize_value(events) + serialize_value(record.dagster_run)
            if leaked := leaks(logged, engine):
                found[f"dagster events: {record.dagster_run.run_id}"] = leaked
    assert found == {}, {where: f"{len(leaked)} piece(s)" for where, leaked in found.items()}
