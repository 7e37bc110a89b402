"""Odd but legal YAML in a retriever file is refused promptly, naming the file and the field
(issue 10, points 13 and 14).

Each case runs the real CLI in a subprocess with a timeout, on a data directory with two good
retrievers and one bad file: `retrievers list` must exit 2 within the timeout, list the good
retrievers, and report `file: field: problem` for the bad one. Before, a 513-byte alias bomb
hung every command that loads retrievers, a lone surrogate in a name broke `retrievers list` for
every file, and deep nesting or a 5,000-digit integer crashed with a Python error.
"""

from __future__ import annotations

import time

import pytest

from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.cli.conftest import run_cli

TIMEOUT_S = 60.0

# The classic "billion laughs" in a request body (which is checked, hashed and sent): nine levels
# of nine aliases each, 9^9 strings once expanded, in under 600 bytes.
ALIAS_BOMB = "id: bomb\nkind: http\nhttp:\n  url: http://127.0.0.1:9/search\n  request_body:\n"
ALIAS_BOMB += "    x0: &a0 lol\n" + "".join(
    f"    x{level}: &a{level} [{','.join([f'*a{level - 1}'] * 9)}]\n" for level in range(1, 10)
)
HTTP_TOP = "id: bad\nkind: http\n"

CASES = {
    "alias-bomb": (
        ALIAS_BOMB,
        "http.request_body.x6[",
        "more than 100,000 values once its aliases are expanded",
    ),
    "deep-flow": (
        HTTP_TOP
        + "http: {url: 'http://127.0.0.1:9/s', request_body: "
        + "[" * 5000
        + "]" * 5000
        + "}\n",
        "http.request_body[0][0]",
        "nested deeper than 32 levels",
    ),
    "deep-block": (
        HTTP_TOP
        + "description:\n"
        + "".join("  " * i + f"- k{i}:\n" for i in range(1, 60))
        + "  " * 60
        + "v\n",
        "description[0].k1[0]",
        "nested deeper than 32 levels",
    ),
    "huge-integer": (
        HTTP_TOP + "http:\n  url: http://127.0.0.1:9/s\n  max_retries: " + "7" * 5000 + "\n",
        "http.max_retries",
        "a number written with 5,000 characters (at most 100)",
    ),
    "lone-surrogate-name": (
        HTTP_TOP + 'name: "search \\ud800 api"\nhttp: {url: "http://127.0.0.1:9/s"}\n',
        "name",
        "'\\ud800', a lone surrogate",
    ),
    "surrogate-pair-escapes": (
        HTTP_TOP + 'description: "\\ud83d\\ude00"\nhttp: {url: "http://127.0.0.1:9/s"}\n',
        "description",
        "lone surrogate",
    ),
    "surrogate-key": (
        HTTP_TOP + 'http: {url: "http://127.0.0.1:9/s", headers: {"X-\\udc80": v}}\n',
        "http.headers (a key)",
        "lone surrogate",
    ),
    "recursive-alias": (HTTP_TOP + "description: &loop [*loop]\n", "description[0]", "contains it"),
    "impossible-date": (HTTP_TOP + "description: 2026-02-30\n", "yaml", "day is out of range"),
    "too-large": (HTTP_TOP + "description: '" + "x" * 2_000_001 + "'\n", "file", "larger than"),
}


@pytest.mark.parametrize(("content", "field", "problem"), CASES.values(), ids=list(CASES))
def test_retrievers_list_reports_the_file_and_field_promptly(
    two_http_retrievers: DataPaths, content: str, field: str, problem: str
) -> None:
    bad = two_http_retrievers.retrievers_dir / "zz_bad.yaml"
    bad.write_text(content, encoding="utf-8", errors="surrogatepass")
    started = time.monotonic()
    listed = run_cli(two_http_retrievers.root, "retrievers", "list", timeout=TIMEOUT_S)
    took_s = time.monotonic() - started
    assert listed.returncode == 2, listed.stderr[-2000:]
    assert [line.split()[0] for line in listed.stdout.splitlines()[2:]] == ["cand", "prod"]
    [error] = listed.stderr.splitlines()
    assert error.startswith(f"error: {bad}: {field}"), error
    assert problem in error, error
    assert took_s < TIMEOUT_S / 2, took_s


def test_an_alias_bomb_does_not_stop_requests_for_other_retrievers(
    two_http_retrievers: DataPaths,
) -> None:
    bad = two_http_retrievers.retrievers_dir / "bomb.yaml"
    bad.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB.encode()) < 600
    root = two_http_retrievers.root
    created = run_cli(
        root, "benchmark", "create", "--name", "n", "--baseline", "prod", "--candidate", "cand",
        timeout=TIMEOUT_S,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr[-2000:]
    refused = run_cli(root, "evaluation", "run", "bomb", "--dataset", "anything", timeout=TIMEOUT_S)
    assert refused.returncode == 2
    assert (
        f"{bad}: http.request_body.x6[" in refused.stderr
        and "aliases are expanded" in refused.stderr
    )
