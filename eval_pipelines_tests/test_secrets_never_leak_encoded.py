"""Credentials reach the engine and no output, in any spelling (issue 10, points 15 and 16).

A retriever carries three credentials: a bearer token from the environment, a password in its
URL (sent as HTTP Basic authentication) and an api_key query parameter. A loopback engine checks
all three, and on every other call echoes them back, each in one of many reversible spellings
(JSON escapes with `\\/` or `\\uXXXX`, upper case, percent-encoding, base64, HTML entities, hex,
...), in an error body, a Retry-After header or the stage statistics of a good answer. An
evaluation runs through the real CLI, then `retrievers list` (text and --json), `execution get`
and `evaluation get`; every output, every file of the data directory but the retriever's own
YAML, and the Dagster event log are searched for every spelling of every credential.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit

import pyarrow.parquet as pq
import pytest
import yaml
from dagster import DagsterInstance, serialize_value

from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.cli.conftest import CliResult, run_cli
from eval_pipelines_tests.core.retrieval.test_secret_masking import SPELLINGS
from eval_pipelines_tests.loopback import LoopbackServer, QuietHandler, serving
from eval_pipelines_tests.test_secrets_never_leak import file_texts

TOKEN_VARIABLE = "EVAL_PIPELINES_TEST_ENCODED_TOKEN"
PLACES = ("500_body", "401_body", "429_retry_after", "200_stage_metadata")
MIN_SPELLING = 8


@dataclass
class Engine:
    token: str
    password: str
    api_key: str
    url: str = ""
    calls: int = 0
    authorized: int = 0
    echoed: Counter = field(default_factory=Counter)

    @property
    def secrets(self) -> dict[str, str]:
        basic = base64.b64encode(f"alice:{self.password}".encode()).decode()
        return {
            "token": self.token,
            "password": self.password,
            "api_key": self.api_key,
            "basic": basic,
        }


def spellings(secret: str) -> set[str]:
    return {spell(secret) for spell in SPELLINGS.values()} | {secret}


@pytest.fixture
def engine() -> Iterator[Engine]:
    state = Engine(
        token=f'tok/{secrets.token_hex(12)}+A b="q',
        password=f"pw/{secrets.token_hex(12)} :@x",
        api_key=f"key/{secrets.token_hex(12)}+=",
    )
    lock = threading.Lock()

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            query = dict(p.split("=", 1) for p in urlsplit(self.path).query.split("&"))
            basic = "Basic " + state.secrets["basic"]
            with lock:
                call = state.calls
                state.calls += 1
                state.authorized += (
                    self.headers.get("Authorization") == basic
                    and self.headers.get("X-Token") == state.token
                    and unquote_plus(query.get("api_key", "")) == state.api_key
                )
                spelling, place = (call // 2) % len(SPELLINGS), (call // 2) % len(PLACES)
                if call % 2:
                    state.echoed[(spelling, place)] += 1
            spell = list(SPELLINGS.values())[spelling]
            echo = " | ".join(spell(s) for s in (state.token, state.password, state.api_key, basic))
            status, headers = 200, {}
            body = {"documents": [{"document_id": "prod_000001", "score": 1}]}
            text = None  # an error body is sent as text, exactly as spelled
            if call % 2:
                if PLACES[place] == "500_body":
                    status, text = 500, f"you sent {echo}"
                elif PLACES[place] == "401_body":
                    status, text = 401, f"bad credentials: {echo}"
                elif PLACES[place] == "429_retry_after":
                    status, text = 429, "slow down"
                    headers["Retry-After"] = spell(state.token)
                else:
                    body["stage_statistics"] = {
                        "remote": {
                            "input_count": 1,
                            "output_count": 1,
                            "duration_ms": 1.0,
                            "error": f"echo {echo}",
                            "metadata": {"request": echo},
                        }
                    }
            self.reply(status, json.dumps(body) if text is None else text, headers)

    with serving(LoopbackServer(Handler)) as server:
        port = server.server_address[1]
        state.url = (
            f"http://alice:{quote(state.password, safe='')}@127.0.0.1:{port}/search"
            f"?lang=en&api_key={quote_plus(state.api_key)}"
        )
        yield state


def run(paths: DataPaths, engine: Engine, *args: str) -> CliResult:
    os.environ[TOKEN_VARIABLE] = engine.token
    try:
        return run_cli(paths.root, *args)
    finally:
        del os.environ[TOKEN_VARIABLE]


def leaks(text: str, engine: Engine) -> list[str]:
    """Which credential shows in text, and in which spelling (any case)."""
    folded = text.lower()
    found = []
    for name, secret in engine.secrets.items():
        for spelled in spellings(secret):
            if len(spelled) >= MIN_SPELLING and spelled.lower() in folded:
                found.append(f"{name} as {spelled[:40]!r}")
    return found


def test_no_credential_leaks_in_any_spelling(world_copy: DataPaths, engine: Engine) -> None:
    retriever_file = world_copy.retrievers_dir / "guarded.yaml"
    retriever_file.write_text(
        yaml.safe_dump(
            {
                "id": "guarded",
                "kind": "http",
                "http": {
                    "url": engine.url,
                    "max_retries": 1,
                    "backoff_base_s": 0.001,
                    "backoff_max_s": 0.002,
                    "headers": {"X-Token": f"${{env:{TOKEN_VARIABLE}}}"},
                },
            }
        )
    )
    evaluation = run(
        world_copy, engine, "evaluation", "run", "guarded", "--dataset", "demo-judgments", "--wait"
    )
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    record = json.loads(evaluation.stdout)
    assert engine.authorized == engine.calls, "every request carried all three credentials"
    covered = {spelling for spelling, _ in engine.echoed}, {place for _, place in engine.echoed}
    assert covered == (set(range(len(SPELLINGS))), set(range(len(PLACES)))), engine.echoed

    outputs = {
        "evaluation run": evaluation,
        "retrievers list": run(world_copy, engine, "retrievers", "list"),
        "retrievers list --json": run(world_copy, engine, "retrievers", "list", "--json"),
        "evaluation get": run(world_copy, engine, "evaluation", "get", record["evaluation_id"]),
    }
    listed = json.loads(outputs["retrievers list --json"].stdout)
    [guarded] = [r for r in listed if r["id"] == "guarded"]
    assert guarded["target"].startswith("http://***@127.0.0.1:")
    assert guarded["target"].endswith("/search?lang=en&api_key=***")
    executions = pq.read_table(world_copy.retriever_executions_dir("guarded")).to_pylist()
    for row in executions[:6]:
        outputs[f"execution get {row['execution_id']}"] = run(
            world_copy, engine, "execution", "get", "guarded", row["execution_id"]
        )
    for name, output in outputs.items():
        assert output.returncode == 0, (name, output.stderr[-2000:])
    assert any(row["status"] == "failed" for row in executions)
    assert any("***" in (row["error"] or "") for row in executions)

    found = {
        f"cli: {name}": leaked
        for name, output in outputs.items()
        if (leaked := leaks(output.stdout + output.stderr, engine))
    }
    found |= {
        f"file: {file.relative_to(world_copy.root)}": leaked
        for file, text in file_texts(world_copy.root)
        if file != retriever_file and (leaked := leaks(text, engine))
    }
    with DagsterInstance.from_config(str(world_copy.root / "dagster_home")) as instance:
        for run_record in instance.get_run_records():
            logged = serialize_value(instance.all_logs(run_record.dagster_run.run_id))
            if leaked := leaks(logged + serialize_value(run_record.dagster_run), engine):
                found[f"dagster events: {run_record.dagster_run.run_id}"] = leaked
    assert found == {}, found
