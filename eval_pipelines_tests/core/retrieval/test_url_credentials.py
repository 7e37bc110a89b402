"""Credentials in a retriever's URL are sent, and never shown or hashed (issue 10, point 16).

user:password goes to the engine as HTTP Basic authentication (it used to be dropped silently);
query parameters that look like credentials (api_key, token, sig, auth..., any case) are sent as
written. Every output shows the URL with both redacted, and pipeline_hash leaves their values out,
like header values: a new key does not change the ranking.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.config import RetrieverConfigError, redact_url
from eval_pipelines.core.retrieval.http_client import HttpRetriever
from eval_pipelines.core.retrieval.registry import load_retriever_config
from eval_pipelines_tests.cli.conftest import run_cli
from eval_pipelines_tests.core.retrieval.conftest import write_retriever
from eval_pipelines_tests.loopback import LoopbackServer, QuietHandler, serving

PASSWORD = "pw-Zq81-secret"
KEY = "key-7Hx2-secret"


@contextmanager
def recording_engine() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Answers 401 echoing what it received (request line and headers); records each request."""
    seen: list[dict[str, Any]] = []

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append({"path": self.path, "authorization": self.headers.get("Authorization")})
            body = json.dumps({"request": self.requestline, "headers": dict(self.headers)})
            self.reply(401, body, content_type=None)

    with serving(LoopbackServer(Handler)) as server:
        yield f"127.0.0.1:{server.server_address[1]}", seen


def http_retriever(url: str, retriever_id: str = "creds", **http: Any) -> dict[str, Any]:
    return {"id": retriever_id, "kind": "http", "http": {"url": url, **http}}


def test_url_credentials_are_sent_and_redacted_in_the_execution(paths: DataPaths) -> None:
    with recording_engine() as (host, seen):
        url = f"http://alice:{PASSWORD}@{host}/search?lang=en&API_KEY={KEY}"
        config = load_retriever_config(write_retriever(paths, http_retriever(url)), paths)
        with HttpRetriever(config) as client:
            execution = client.search({"text": "shoes"})
    expected = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert seen == [{"path": f"/search?lang=en&API_KEY={KEY}", "authorization": expected}]
    assert (execution.status, execution.error_type) == ("failed", "http_4xx")
    detail = json.dumps(execution.to_detail())
    assert PASSWORD not in detail and KEY not in detail and expected[6:] not in detail
    assert execution.error.startswith(f"POST http://{host}/search: HTTP 401: ")
    assert "***" in execution.error


def test_pipeline_hash_leaves_credential_values_out(paths: DataPaths) -> None:
    def hash_of(url: str) -> str:
        return load_retriever_config(
            write_retriever(paths, http_retriever(url)), paths
        ).pipeline_hash

    base = hash_of(f"http://alice:{PASSWORD}@h.example/search?lang=en&token={KEY}")
    assert hash_of("http://bob:other@h.example/search?lang=en&token=another") == base
    assert hash_of(f"http://alice:{PASSWORD}@h.example/search?lang=de&token={KEY}") != base
    assert hash_of(f"http://alice:{PASSWORD}@other.example/search?lang=en&token={KEY}") != base


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"https://alice:{PASSWORD}@h/s", "https://***@h/s"),
        (f"https://{KEY}@h/s", "https://***@h/s"),
        (f"http://h/s?q=1&api_key={KEY}&Sig=x&x-amz-signature=y", "http://h/s?q=1&api_key=***&Sig=***&x-amz-signature=***"),
        ("http://h/s?access_token=t&apikey=k&Authorization=a&password=p&limit=5", "http://h/s?access_token=***&apikey=***&Authorization=***&password=***&limit=5"),
        ("http://h:81/s?q=key&sort_key=price&monkey=1", "http://h:81/s?q=key&sort_key=price&monkey=1"),
        ("http://h/s?KEY=k&X-Amz-Credential=c&page_token=t", "http://h/s?KEY=***&X-Amz-Credential=***&page_token=***"),
    ],
)  # fmt: skip
def test_redacted_urls(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_bad_urls_are_reported_without_their_credentials(paths: DataPaths) -> None:
    cases = [
        (http_retriever(f"http://alice:{PASSWORD}@h:99999/s"), "http.url", "bad port"),
        (http_retriever(f"ftp://alice:{PASSWORD}@h/s?token={KEY}"), "http.url", "ftp://***@h/s"),
        (
            http_retriever(
                f"http://alice:{PASSWORD}@h/s", headers={"authorization": "Bearer ${env:X}"}
            ),
            "http.url",
            "has user:password and headers has an Authorization header too",
        ),
    ]
    for config, field, problem in cases:
        with pytest.raises(RetrieverConfigError) as info:
            load_retriever_config(write_retriever(paths, config), paths)
        assert (info.value.field, problem in info.value.problem) == (field, True), info.value
        assert PASSWORD not in str(info.value) and KEY not in str(info.value)


def test_retrievers_list_shows_urls_redacted(paths: DataPaths) -> None:
    write_retriever(paths, http_retriever(f"http://alice:{PASSWORD}@h/s?api_key={KEY}&lang=en"))
    text = run_cli(paths.root, "retrievers", "list")
    listed = run_cli(paths.root, "retrievers", "list", "--json")
    assert (text.returncode, listed.returncode) == (0, 0), text.stderr + listed.stderr
    assert "http://***@h/s?api_key=***&lang=en" in text.stdout
    assert json.loads(listed.stdout)[0]["target"] == "http://***@h/s?api_key=***&lang=en"
    for output in (text, listed):
        assert PASSWORD not in output.stdout + output.stderr
        assert KEY not in output.stdout + output.stderr
