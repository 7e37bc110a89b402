"""Bad input at every door: a clear error naming the field, exit 2 on the CLI, and nothing left behind.

One table of malformed inputs per door (CLI create/run/import/ingest, retriever YAML, the launchpad
jobs, the nightly schedule file, request files dropped for the sensor). Every case checks the message
names the field and the problem, and that the data directory and the Dagster instance are exactly as
before: no new or changed file, no dynamic partition, no stored request or record.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from dagster import (
    DagsterInstance,
    DagsterInvalidConfigError,
    SensorResult,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)

from eval_pipelines.cli.main import main
from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.benchmarks.sampling import SessionFilter, sample_sessions
from eval_pipelines.core.benchmarks.submit import accept_request, benchmark_store
from eval_pipelines.core.evaluations.submit import evaluation_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.warehouse import query, refresh_views
from eval_pipelines.definitions import defs
from eval_pipelines.kinds import BENCHMARKS, EVALUATIONS
from eval_pipelines.resources import DataDirResource
from eval_pipelines.schedules.benchmarks import nightly_benchmarks
from eval_pipelines.sensors.requests import request_sensor
from eval_pipelines_tests.cli.conftest import run_cli

DATASET = "demo-judgments"
HUGE = "x" * 1_000_000
NOT_UTF8 = b'{"benchmark_name": "caf\xe9"}\n'
# A message may quote a bad value, but never the whole of a huge one.
MAX_MESSAGE = 4000
PATHLIKE_IDS = ("../x", "a/b", "a'b", 'a"b', "demo_prod\n")

BENCHMARK = {
    "benchmark_name": "bad input",
    "baseline_retriever_id": "demo_prod",
    "candidate_retriever_ids": ["demo_better"],
    "session_count": 50,
}
EVALUATION = {"retriever_id": "demo_prod", "dataset_name": DATASET}

benchmark_request_sensor = request_sensor(BENCHMARKS)
evaluation_request_sensor = request_sensor(EVALUATIONS)


@pytest.fixture(scope="module")
def world(module_world_copy: DataPaths) -> DataPaths:
    """A small demo world (retrievers, collection, ingested logs, the demo-judgments dataset); its
    views are rebuilt, so the warehouse file reads this copy's files."""
    refresh_views(module_world_copy)
    return module_world_copy


@pytest.fixture(scope="module")
def instance() -> Iterator[DagsterInstance]:
    """An in-memory instance (a sqlite one costs ~1 s a run here): runs, events and partitions are real."""
    with DagsterInstance.ephemeral() as instance:
        yield instance


def snapshot(paths: DataPaths) -> dict[str, tuple[int, int]]:
    """Every file under the data directory (hidden temporaries too) with its size and mtime."""
    return {
        str(file.relative_to(paths.root)): (file.stat().st_size, file.stat().st_mtime_ns)
        for file in sorted(paths.root.rglob("*"))
        if file.is_file()
    }


def stored_ids(paths: DataPaths) -> tuple[list[str], list[str]]:
    return benchmark_store(paths).ids(), evaluation_store(paths).ids()


def partitions(instance: DagsterInstance) -> dict[str, list[str]]:
    return {name: instance.get_dynamic_partitions(name) for name in ("benchmark", "evaluation")}


@contextlib.contextmanager
def leaves_nothing(paths: DataPaths, instance: DagsterInstance | None = None) -> Iterator[None]:
    before = snapshot(paths)
    stored_before = stored_ids(paths)
    partitions_before = partitions(instance) if instance is not None else None
    yield
    after = snapshot(paths)
    assert after == before, {
        "new": sorted(set(after) - set(before)),
        "gone": sorted(set(before) - set(after)),
        "changed": sorted(k for k in set(after) & set(before) if after[k] != before[k]),
    }
    assert stored_ids(paths) == stored_before
    if instance is not None:
        assert partitions(instance) == partitions_before


def assert_names(message: str, fragments: tuple[str, ...]) -> None:
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message[:MAX_MESSAGE]}"
    assert len(message) < MAX_MESSAGE, f"message of {len(message)} characters"


def cli_in_process(paths: DataPaths, *args: str) -> tuple[int, str, str]:
    """The CLI's own entry point (what the console script calls), for the large table of cases."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["--data-dir", str(paths.root), *args])
        except SystemExit as exc:  # argparse refusing a flag
            code = exc.code
    return code, out.getvalue(), err.getvalue()


# ---------------------------------------------------------------------------------------------
# The CLI: every case is (argv, input files, fragments the message must hold).


@dataclass(frozen=True)
class CliCase:
    """argv may name `{in}/<file>`; files are written to that folder (outside the data directory)."""

    id: str
    argv: tuple[str, ...]
    expected: tuple[str, ...]
    files: dict[str, str | bytes] = field(default_factory=dict)


def request_file(value: Any) -> dict[str, str | bytes]:
    return {"request.json": value if isinstance(value, str | bytes) else json.dumps(value)}


def bench(**overrides: Any) -> dict[str, Any]:
    return {**BENCHMARK, **overrides}


def with_filter(**session_filter: Any) -> dict[str, Any]:
    return bench(session_filter=session_filter)


def weights(**given: Any) -> dict[str, Any]:
    return with_filter(interaction_weights={"weights": given})


CREATE = ("benchmark", "create", "{in}/request.json")
CREATE_FLAGS = (
    "benchmark",
    "create",
    "--name",
    "flags",
    "--baseline",
    "demo_prod",
    "--candidate",
    "demo_better",
)

BENCHMARK_CREATE_CASES = [
    CliCase("broken-json", CREATE, ("REQUEST", "invalid JSON"), request_file('{"a": ')),
    CliCase("not-an-object", CREATE, ("REQUEST", "expected a JSON object"), request_file("[1]")),
    CliCase("not-utf8", CREATE, ("REQUEST", "utf-8"), request_file(NOT_UTF8)),
    CliCase("missing-file", ("benchmark", "create", "{in}/absent.json"), ("REQUEST", "absent")),
    CliCase(
        "required-missing",
        CREATE,
        ("baseline_retriever_id", "required"),
        request_file({"benchmark_name": "x", "candidate_retriever_ids": ["demo_better"]}),
    ),
    CliCase(
        "count-as-text",
        CREATE,
        ("session_count", "not of type 'integer'"),
        request_file(bench(session_count="100")),
    ),
    CliCase(
        "count-as-float",
        CREATE,
        ("session_count", "integer"),
        request_file(bench(session_count=100.0)),
    ),
    CliCase(
        "count-too-small",
        CREATE,
        ("session_count", "minimum of 10"),
        request_file(bench(session_count=5)),
    ),
    CliCase(
        "count-too-large",
        CREATE,
        ("session_count", "maximum of 10000"),
        request_file(bench(session_count=10**30)),
    ),
    CliCase(
        "count-bool",
        CREATE,
        ("session_count", "integer"),
        request_file(bench(session_count=True)),
    ),
    CliCase(
        "name-wrong-type",
        CREATE,
        ("benchmark_name", "not of type 'string'"),
        request_file(bench(benchmark_name=["a"])),
    ),
    CliCase(
        "name-empty",
        CREATE,
        ("benchmark_name", "should be non-empty"),
        request_file(bench(benchmark_name="")),
    ),
    CliCase(
        "name-huge",
        CREATE,
        ("benchmark_name", "too long"),
        request_file(bench(benchmark_name=HUGE)),
    ),
    CliCase(
        "candidates-empty",
        CREATE,
        ("candidate_retriever_ids", "should be non-empty"),
        request_file(bench(candidate_retriever_ids=[])),
    ),
    CliCase(
        "candidates-not-a-list",
        CREATE,
        ("candidate_retriever_ids", "not of type 'array'"),
        request_file(bench(candidate_retriever_ids="demo_better")),
    ),
    CliCase(
        "candidates-duplicated",
        CREATE,
        ("candidate_retriever_ids", "listed more than once: 'demo_better'"),
        request_file(bench(candidate_retriever_ids=["demo_better", "demo_better"])),
    ),
    CliCase(
        "baseline-is-candidate",
        CREATE,
        ("candidate_retriever_ids", "is the baseline too"),
        request_file(bench(candidate_retriever_ids=["demo_prod"])),
    ),
    CliCase(
        "unknown-baseline",
        CREATE,
        ("baseline_retriever_id", "unknown retriever 'ghost'"),
        request_file(bench(baseline_retriever_id="ghost")),
    ),
    *[
        CliCase(
            f"candidate-id-{index}",
            CREATE,
            ("candidate_retriever_ids.0", "unknown retriever", repr(bad)),
            request_file(bench(candidate_retriever_ids=[bad])),
        )
        for index, bad in enumerate(PATHLIKE_IDS)
    ],
    CliCase(
        "candidate-id-huge",
        CREATE,
        ("candidate_retriever_ids.0", "unknown retriever", "characters"),
        request_file(bench(candidate_retriever_ids=[HUGE])),
    ),
    CliCase(
        "candidates-unhashable",
        CREATE,
        ("candidate_retriever_ids.0", "not of type 'string'"),
        request_file(bench(candidate_retriever_ids=[["a"], ["a"]])),
    ),
    CliCase(
        "weights-not-an-object",
        CREATE,
        ("session_filter.interaction_weights", "not of type 'object'"),
        request_file(with_filter(interaction_weights=[1, 2])),
    ),
    CliCase(
        "min-interactions-float",
        CREATE,
        ("session_filter.min_interactions", "integer"),
        request_file(with_filter(min_interactions=2.0)),
    ),
    CliCase(
        "unknown-field",
        CREATE,
        ("sesion_count", "unknown field"),
        request_file(bench(sesion_count=50)),
    ),
    CliCase(
        "nan-weight",
        CREATE,
        ("session_filter.interaction_weights.weights.click", "finite", "nan"),
        request_file(json.dumps(weights(click=float("nan")))),
    ),
    CliCase(
        "infinite-weight",
        CREATE,
        ("session_filter.interaction_weights.weights.click", "finite"),
        request_file(json.dumps(weights(click=float("inf")))),
    ),
    CliCase(
        "negative-weight",
        CREATE,
        ("session_filter.interaction_weights.weights.purchase", ">= 0", "-1"),
        request_file(weights(purchase=-1)),
    ),
    CliCase(
        "weight-as-text",
        CREATE,
        ("session_filter.interaction_weights.weights.click", "number"),
        request_file(weights(click="2")),
    ),
    CliCase(
        "all-weights-zero",
        CREATE,
        ("session_filter.interaction_weights", "no interaction type has a positive weight"),
        request_file(weights(click=0, add_to_cart=0, bookmark=0, purchase=0)),
    ),
    CliCase(
        "start-after-end",
        CREATE,
        ("session_filter.time_range", "is after end"),
        request_file(
            with_filter(time_range={"start": "2026-10-02T00:00:00Z", "end": "2026-10-01T00:00:00Z"})
        ),
    ),
    CliCase(
        "start-not-a-date",
        CREATE,
        ("session_filter.time_range.start", "ISO 8601"),
        request_file(with_filter(time_range={"start": "yesterday"})),
    ),
    CliCase(
        "empty-retriever-filter",
        CREATE,
        ("session_filter.retriever_ids", "empty list"),
        request_file(with_filter(retriever_ids=[])),
    ),
    CliCase(
        "empty-taxonomy-filter",
        CREATE,
        ("session_filter.taxonomy_node_ids", "empty list"),
        request_file(with_filter(taxonomy_node_ids=[])),
    ),
    CliCase(
        "unweighted-interaction-type",
        CREATE,
        ("session_filter.interaction_types", "no positive weight"),
        request_file(with_filter(interaction_types=["hover"])),
    ),
    CliCase(
        "unknown-strategy",
        CREATE,
        ("session_filter.sample_strategy", "is not one of"),
        request_file(with_filter(sample_strategy="biggest")),
    ),
    CliCase(
        "min-interactions-zero",
        CREATE,
        ("session_filter.min_interactions", "minimum of 1"),
        request_file(with_filter(min_interactions=0)),
    ),
    CliCase(
        "filter-not-an-object",
        CREATE,
        ("session_filter", "'all' is not of type 'object'"),
        request_file(bench(session_filter="all")),
    ),
    CliCase(
        "negative-seed",
        CREATE,
        ("seed", "non-negative integer"),
        request_file(bench(seed=-1)),
    ),
    CliCase(
        "depth-zero",
        CREATE,
        ("replay_depth", "from 1 to 1000"),
        request_file(bench(replay_depth=0)),
    ),
    CliCase(
        "epsilon-nan",
        CREATE,
        ("epsilon", "finite"),
        request_file(json.dumps(bench(epsilon=float("nan")))),
    ),
    CliCase(
        "flag-count-text", (*CREATE_FLAGS, "--sessions", "many"), ("--sessions", "invalid int")
    ),
    CliCase("flag-count-small", (*CREATE_FLAGS, "--sessions", "0"), ("session_count", "minimum")),
    CliCase(
        "flag-strategy", (*CREATE_FLAGS, "--strategy", "biggest"), ("--strategy", "invalid choice")
    ),
    CliCase("flag-seed", (*CREATE_FLAGS, "--seed", "-3"), ("seed", "non-negative")),
    CliCase(
        "flag-baseline-path",
        ("benchmark", "create", "--name", "n", "--baseline", "../x", "--candidate", "demo_better"),
        ("baseline_retriever_id", "unknown retriever '../x'"),
    ),
    CliCase(
        "flag-candidate-quote",
        (*CREATE_FLAGS, "--candidate", "a'b"),
        ("candidate_retriever_ids.1", "unknown retriever", "a'b"),
    ),
    CliCase(
        "flags-override-a-bad-file",
        (*CREATE, "--sessions", "3"),
        ("session_count", "minimum of 10"),
        request_file(bench()),
    ),
    CliCase(
        "wait-does-not-help",
        (*CREATE, "--wait"),
        ("session_count", "minimum of 10"),
        request_file(bench(session_count=3)),
    ),
]

RUN = ("evaluation", "run", "demo_prod", "--dataset", DATASET)
EVALUATION_RUN_CASES = [
    CliCase(
        "unknown-retriever",
        ("evaluation", "run", "ghost", "--dataset", DATASET),
        ("retriever_id", "unknown retriever 'ghost'"),
    ),
    *[
        CliCase(
            f"retriever-id-{index}",
            ("evaluation", "run", bad, "--dataset", DATASET),
            ("retriever_id", "unknown retriever", repr(bad)),
        )
        for index, bad in enumerate(PATHLIKE_IDS)
    ],
    CliCase(
        "retriever-id-huge",
        ("evaluation", "run", HUGE, "--dataset", DATASET),
        ("retriever_id", "unknown retriever", "characters"),
    ),
    CliCase(
        "retriever-id-not-utf8",
        ("evaluation", "run", "caf\udce9", "--dataset", DATASET),
        ("retriever_id", "lone surrogate (not valid Unicode text)"),
    ),
    CliCase(
        "unknown-dataset",
        ("evaluation", "run", "demo_prod", "--dataset", "nope"),
        ("dataset_name", "unknown dataset 'nope'"),
    ),
    *[
        CliCase(
            f"dataset-name-{index}",
            ("evaluation", "run", "demo_prod", "--dataset", bad),
            ("dataset_name", "unknown dataset", repr(bad)),
        )
        for index, bad in enumerate(PATHLIKE_IDS)
    ],
    CliCase(
        "dataset-name-huge",
        ("evaluation", "run", "demo_prod", "--dataset", HUGE),
        ("dataset_name", "unknown dataset", "characters"),
    ),
    CliCase("k-zero", (*RUN, "--k", "0,5"), ("evaluation_config.k_values.0", "from 1 to 1000")),
    CliCase("k-negative", (*RUN, "--k", "-5"), ("evaluation_config.k_values.0", "from 1 to 1000")),
    CliCase("k-huge", (*RUN, "--k", "10001"), ("evaluation_config.k_values.0", "from 1 to 1000")),
    CliCase("k-text", (*RUN, "--k", "five"), ("--k", "comma-separated integers")),
    CliCase("k-empty", (*RUN, "--k", ","), ("evaluation_config.k_values", "non-empty")),
    CliCase("k-duplicated", (*RUN, "--k", "5,5"), ("evaluation_config.k_values", "listed twice")),
    CliCase(
        "unknown-metric",
        (*RUN, "--metrics", "ndcg,bleu"),
        ("evaluation_config.metrics.1", "unknown metric 'bleu'"),
    ),
    CliCase("metrics-empty", (*RUN, "--metrics", ","), ("evaluation_config.metrics", "non-empty")),
    CliCase(
        "metric-duplicated",
        (*RUN, "--metrics", "ndcg,ndcg"),
        ("evaluation_config.metrics", "listed twice"),
    ),
    CliCase(
        "wait-does-not-help",
        (*RUN, "--k", "0", "--wait"),
        ("evaluation_config.k_values.0", "from 1 to 1000"),
    ),
]

GET_CASES = [
    *[
        CliCase(
            f"benchmark-get-{index}", ("benchmark", "get", bad), ("benchmark_id", "not a valid id")
        )
        for index, bad in enumerate(PATHLIKE_IDS)
    ],
    CliCase("benchmark-get-huge", ("benchmark", "get", HUGE), ("benchmark_id", "not a valid id")),
    CliCase(
        "benchmark-get-unknown", ("benchmark", "get", "bench_0"), ("benchmark_id", "no benchmark")
    ),
    *[
        CliCase(
            f"evaluation-get-{index}",
            ("evaluation", "get", bad),
            ("evaluation_id", "not a valid id"),
        )
        for index, bad in enumerate(PATHLIKE_IDS)
    ],
    CliCase(
        "evaluation-export-path",
        ("evaluation", "export", "../x", "-o", "{in}/run.txt"),
        ("evaluation_id", "not a valid id"),
    ),
    CliCase(
        "execution-get-quote",
        ("execution", "get", "demo_prod", "x' OR '1'='1"),
        ("execution_id", "not a valid id"),
    ),
    CliCase(
        "execution-get-path",
        ("execution", "get", "../demo_prod", "e1"),
        ("retriever_id", "not a valid id"),
    ),
]


def gt_line(**overrides: Any) -> str:
    value = {
        "query_id": "q1",
        "query_input": {"text": "red sofa"},
        "relevant_documents": ["d1"],
        **overrides,
    }
    return json.dumps(value) + "\n"


IMPORT = ("dataset", "import", "bad", "{in}/gt.jsonl", "--format", "ground_truth")
QRELS_AND_TOPICS = (
    "dataset",
    "import",
    "bad",
    "{in}/run.qrels",
    "{in}/topics.tsv",
    "--format",
    "trec",
)
BEIR = ("dataset", "import", "bad", "{in}/queries.jsonl", "{in}/qrels.tsv", "--format", "beir")
GOOD_TOPICS = {"topics.tsv": "q1\tred sofa\n"}
GOOD_BEIR_QUERIES = {"queries.jsonl": json.dumps({"_id": "q1", "text": "red sofa"}) + "\n"}
BEIR_HEADER = "query-id\tcorpus-id\tscore\n"

DATASET_IMPORT_CASES = [
    CliCase(
        "gt-broken-json", IMPORT, ("gt.jsonl:1", "invalid JSON"), {"gt.jsonl": '{"query_id": '}
    ),
    CliCase(
        "gt-not-utf8",
        IMPORT,
        ("gt.jsonl", "UTF-8"),
        {"gt.jsonl": gt_line().encode() + b'{"query_id": "caf\xe9"}\n'},
    ),
    CliCase("gt-array", IMPORT, ("gt.jsonl:1", "expected a JSON object"), {"gt.jsonl": "[1, 2]\n"}),
    CliCase(
        "gt-id-wrong-type",
        IMPORT,
        ("gt.jsonl:1", "query_id", "expected a string id"),
        {"gt.jsonl": gt_line(query_id=7)},
    ),
    CliCase(
        "gt-duplicate-query",
        IMPORT,
        ("gt.jsonl:2", "query_id", "q1"),
        {"gt.jsonl": gt_line() + gt_line()},
    ),
    CliCase(
        "gt-duplicate-document",
        IMPORT,
        ("gt.jsonl:1", "relevant_documents", "d1"),
        {"gt.jsonl": gt_line(relevant_documents=["d1", "d1"])},
    ),
    CliCase(
        "gt-grade-too-high",
        IMPORT,
        ("gt.jsonl:1", "relevance_scores", "9"),
        {"gt.jsonl": gt_line(relevance_scores={"d1": 9})},
    ),
    CliCase(
        "gt-grade-negative",
        IMPORT,
        ("gt.jsonl:1", "relevance_scores", "-1"),
        {"gt.jsonl": gt_line(relevance_scores={"d1": -1})},
    ),
    CliCase(
        "gt-grade-nan",
        IMPORT,
        ("gt.jsonl:1", "relevance_scores"),
        {"gt.jsonl": gt_line(relevance_scores={"d1": float("nan")})},
    ),
    CliCase(
        "gt-query-input-text",
        IMPORT,
        ("gt.jsonl:1", "query_input"),
        {"gt.jsonl": gt_line(query_input="red sofa")},
    ),
    CliCase(
        "gt-id-with-space",
        IMPORT,
        ("gt.jsonl:1", "query_id", "whitespace"),
        {"gt.jsonl": gt_line(query_id="q 1")},
    ),
    CliCase(
        "gt-unknown-field",
        IMPORT,
        ("gt.jsonl:1", "relevant_docs", "unknown field"),
        {"gt.jsonl": gt_line(relevant_docs=[])},
    ),
    CliCase(
        "gt-huge-id",
        IMPORT,
        ("gt.jsonl:1", "relevant_documents"),
        {"gt.jsonl": gt_line(relevant_documents=["a b" + HUGE])},
    ),
    CliCase(
        "trec-grade-text",
        QRELS_AND_TOPICS,
        ("run.qrels:1", "rel", "expected an integer grade"),
        {"run.qrels": "q1 0 d1 high\n", **GOOD_TOPICS},
    ),
    CliCase(
        "trec-three-fields",
        QRELS_AND_TOPICS,
        ("run.qrels:1",),
        {"run.qrels": "q1 d1 1\n", **GOOD_TOPICS},
    ),
    CliCase(
        "trec-qrels-without-topic",
        QRELS_AND_TOPICS,
        ("run.qrels:2", "q2"),
        {"run.qrels": "q1 0 d1 1\nq2 0 d1 1\n", **GOOD_TOPICS},
    ),
    CliCase(
        "trec-duplicate-judgment",
        QRELS_AND_TOPICS,
        ("run.qrels:2", "d1"),
        {"run.qrels": "q1 0 d1 1\nq1 0 d1 2\n", **GOOD_TOPICS},
    ),
    CliCase(
        "beir-missing-header",
        BEIR,
        ("qrels.tsv",),
        {"qrels.tsv": "q1\td1\t1\n", **GOOD_BEIR_QUERIES},
    ),
    CliCase(
        "beir-fractional-score",
        BEIR,
        ("qrels.tsv:2", "score"),
        {"qrels.tsv": BEIR_HEADER + "q1\td1\t1.5\n", **GOOD_BEIR_QUERIES},
    ),
    CliCase(
        "beir-broken-queries",
        BEIR,
        ("queries.jsonl:1", "invalid JSON"),
        {"queries.jsonl": '{"_id": \n', "qrels.tsv": BEIR_HEADER + "q1\td1\t1\n"},
    ),
    CliCase(
        "auto-broken-json",
        ("dataset", "import", "bad", "{in}/gt.jsonl"),
        ("gt.jsonl:1", "format", "cannot tell what this file is", "--format"),
        {"gt.jsonl": '{"query_id": '},
    ),
    CliCase(
        "auto-cannot-tell",
        ("dataset", "import", "bad", "{in}/notes.txt"),
        ("notes.txt", "format"),
        {"notes.txt": "hello world, this is not a dataset\n"},
    ),
    CliCase(
        "unknown-format",
        (*IMPORT, "--format", "csv"),
        ("--format", "invalid choice"),
        {"gt.jsonl": gt_line()},
    ),
    CliCase("missing-file", IMPORT, ("FILE", "not found")),
    CliCase(
        "existing-name",
        ("dataset", "import", DATASET, "{in}/gt.jsonl"),
        (DATASET, "exists", "--replace"),
        {"gt.jsonl": gt_line()},
    ),
    *[
        CliCase(
            f"name-{index}",
            ("dataset", "import", bad, "{in}/gt.jsonl"),
            ("dataset", "not a valid id"),
            {"gt.jsonl": gt_line()},
        )
        for index, bad in enumerate((*PATHLIKE_IDS, HUGE))
    ],
]

EXECUTION_ROW = {
    "execution_id": "exec_bad_1",
    "retriever_id": "demo_prod",
    "session_id": "s1",
    "user_id": "u1",
    "query_input": {"text": "red sofa"},
    "documents": ["prod_000001"],
    "created_at": "2026-10-01T12:00:00Z",
}
INGEST = ("ingest", "executions", "{in}/rows.jsonl")
COLLECTION = ("ingest", "collection", "{in}/docs.jsonl", "--name", "bad")

INGEST_CASES = [
    CliCase(
        "broken-json",
        INGEST,
        ("rows.jsonl:2", "invalid JSON", "nothing was written"),
        {"rows.jsonl": json.dumps(EXECUTION_ROW) + '\n{"execution_id": \n'},
    ),
    CliCase(
        "not-utf8",
        INGEST,
        ("rows.jsonl:2", "not UTF-8"),
        {"rows.jsonl": json.dumps(EXECUTION_ROW).encode() + b'\n{"user_id": "caf\xe9"}\n'},
    ),
    CliCase(
        "line-not-an-object",
        INGEST,
        ("rows.jsonl:1", "expected a JSON object"),
        {"rows.jsonl": '["exec_1"]\n'},
    ),
    CliCase(
        "interactions-broken-json",
        ("ingest", "interactions", "{in}/rows.jsonl"),
        ("rows.jsonl:1", "invalid JSON"),
        {"rows.jsonl": "{not json}\n"},
    ),
    CliCase(
        "csv-ragged",
        ("ingest", "executions", "{in}/rows.csv"),
        ("rows.csv:2", "cells"),
        {"rows.csv": "execution_id,retriever_id\nexec_1,demo_prod,extra\n"},
    ),
    CliCase(
        "csv-repeated-header",
        ("ingest", "executions", "{in}/rows.csv"),
        ("rows.csv:1", "repeats execution_id"),
        {"rows.csv": "execution_id,execution_id\na,b\n"},
    ),
    CliCase(
        "not-parquet",
        ("ingest", "executions", "{in}/rows.parquet"),
        ("rows.parquet", "not a readable Parquet file"),
        {"rows.parquet": b"PAR1 this is not parquet"},
    ),
    CliCase(
        "ubi-broken",
        ("ingest", "executions", "{in}/queries.jsonl", "--format", "ubi"),
        ("queries.jsonl:1", "invalid JSON"),
        {"queries.jsonl": '{"query_id": "q1",\n'},
    ),
    CliCase(
        "unknown-extension",
        ("ingest", "executions", "{in}/rows.txt"),
        ("rows.txt", "cannot tell the format"),
        {"rows.txt": json.dumps(EXECUTION_ROW) + "\n"},
    ),
    CliCase(
        "unknown-format",
        (*INGEST, "--format", "xml"),
        ("--format", "invalid choice"),
        {"rows.jsonl": json.dumps(EXECUTION_ROW) + "\n"},
    ),
    CliCase("missing-file", INGEST, ("FILE", "not found")),
    *[
        CliCase(
            f"default-retriever-{index}",
            (*INGEST, "--retriever-id", bad),
            ("retriever_id", "not a valid id"),
            {"rows.jsonl": json.dumps(EXECUTION_ROW) + "\n"},
        )
        for index, bad in enumerate((*PATHLIKE_IDS, HUGE))
    ],
    CliCase(
        "collection-broken-json",
        COLLECTION,
        ("docs.jsonl", "cannot be read"),
        {"docs.jsonl": '{"document_id": "d1"}\n{"document_id": \n'},
    ),
    CliCase(
        "collection-no-id-column",
        COLLECTION,
        ("document_id", "column missing"),
        {"docs.jsonl": '{"title": "a"}\n'},
    ),
    CliCase(
        "collection-duplicate-ids",
        COLLECTION,
        ("document_id", "duplicated", "'d1'"),
        {"docs.jsonl": '{"document_id": "d1"}\n{"document_id": "d1"}\n'},
    ),
    CliCase(
        "collection-empty",
        COLLECTION,
        ("docs.jsonl",),
        {"docs.jsonl": ""},
    ),
    CliCase(
        "collection-not-utf8",
        ("ingest", "collection", "{in}/docs.csv", "--name", "bad"),
        ("title", "unsupported column type binary"),
        {"docs.csv": b"document_id,title\nd1,caf\xe9\n"},
    ),
    CliCase(
        "collection-unknown-extension",
        ("ingest", "collection", "{in}/docs.txt", "--name", "bad"),
        ("docs.txt", "unknown extension"),
        {"docs.txt": "d1\n"},
    ),
    *[
        CliCase(
            f"collection-name-{index}",
            ("ingest", "collection", "{in}/docs.jsonl", "--name", bad),
            ("collection", "not a valid id"),
            {"docs.jsonl": '{"document_id": "d1"}\n'},
        )
        for index, bad in enumerate((*PATHLIKE_IDS, HUGE))
    ],
]

# Legal-looking but odd input (issue 10.14): refused at the door, never a crash after acceptance.
DEEP = "[" * 100_000 + "]" * 100_000
DIGITS = "9" * 5000
ODD_CASES = [
    CliCase(
        "end-year-9999-with-an-offset",
        CREATE,
        ("session_filter.time_range.end", "outside years 1 to 9999 once converted to UTC"),
        request_file(with_filter(time_range={"end": "9999-12-31T23:00:00-05:00"})),
    ),
    CliCase(
        "start-year-1-with-an-offset",
        CREATE,
        ("session_filter.time_range.start", "outside years 1 to 9999"),
        request_file(with_filter(time_range={"start": "0001-01-01T00:30:00+01:00"})),
    ),
    CliCase(
        "weight-1e308",
        CREATE,
        ("session_filter.interaction_weights.weights.purchase", "<= 1,000,000", "1e+308"),
        request_file(weights(click=1.0, purchase=1e308)),
    ),
    CliCase(
        "name-lone-surrogate-escaped",
        CREATE,
        ("benchmark_name", "lone surrogate"),
        request_file(json.dumps(bench(benchmark_name="caf\ud800"))),
    ),
    CliCase(
        "name-lone-surrogate-flag",
        (*CREATE_FLAGS[:3], "caf\udce9", *CREATE_FLAGS[4:]),
        ("benchmark_name", "lone surrogate"),
    ),
    CliCase(
        "taxonomy-lone-surrogate",
        CREATE,
        ("session_filter.taxonomy_node_ids.0", "lone surrogate"),
        request_file(json.dumps(with_filter(taxonomy_node_ids=["\udfff"]))),
    ),
    CliCase(
        "seed-5000-digits",
        CREATE,
        ("REQUEST", "request.json", "more than 4300 digits"),
        request_file('{"benchmark_name": "n", "seed": ' + DIGITS + "}"),
    ),
    CliCase(
        "request-nested-100000-deep",
        CREATE,
        ("REQUEST", "request.json", "nested more than 64 levels"),
        request_file('{"benchmark_name": ' + DEEP + "}"),
    ),
    CliCase(
        "request-nested-100-deep",
        CREATE,
        ("benchmark_name.0.0.0", "nested more than 64 levels"),
        request_file('{"benchmark_name": ' + "[" * 100 + "]" * 100 + "}"),
    ),
    CliCase(
        "gt-nested-100000-deep",
        IMPORT,
        ("gt.jsonl:1", "nested more than 64 levels"),
        {"gt.jsonl": '{"query_id": "q1", "x": ' + DEEP + "}\n"},
    ),
    CliCase(
        "gt-grade-5000-digits",
        IMPORT,
        ("gt.jsonl:1", "more than 4300 digits"),
        {"gt.jsonl": '{"query_id": "q1", "relevance_scores": {"d": ' + DIGITS + "}}\n"},
    ),
    CliCase(
        "gt-query-id-lone-surrogate",
        IMPORT,
        ("gt.jsonl:1", "query_id", "lone surrogate"),
        {
            "gt.jsonl": '{"query_id": "q\\ud800", "query_input": {"text": "sofa"},'
            ' "relevant_documents": ["d1"]}\n'
        },
    ),
]

CLI_CASES = [
    pytest.param(case, id=f"{door}-{case.id}")
    for door, cases in (
        ("benchmark-create", BENCHMARK_CREATE_CASES),
        ("evaluation-run", EVALUATION_RUN_CASES),
        ("get", GET_CASES),
        ("dataset-import", DATASET_IMPORT_CASES),
        ("ingest", INGEST_CASES),
        ("odd", ODD_CASES),
    )
    for case in cases
]


def write_inputs(folder: Path, files: dict[str, str | bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        target = folder / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")


def argv_for(case: CliCase, folder: Path) -> list[str]:
    return [arg.replace("{in}", str(folder)) for arg in case.argv]


@pytest.mark.parametrize("case", CLI_CASES)
def test_the_cli_refuses_bad_input_naming_the_field(
    case: CliCase, world: DataPaths, tmp_path: Path
) -> None:
    write_inputs(tmp_path, case.files)
    with leaves_nothing(world):
        code, out, err = cli_in_process(world, *argv_for(case, tmp_path))
    assert code == 2, err
    assert out == ""
    assert_names(err, case.expected)


@pytest.mark.parametrize(
    "case",
    [
        next(c for c in BENCHMARK_CREATE_CASES if c.id == "nan-weight"),
        next(c for c in EVALUATION_RUN_CASES if c.id == "retriever-id-not-utf8"),
        next(c for c in DATASET_IMPORT_CASES if c.id == "gt-not-utf8"),
        next(c for c in INGEST_CASES if c.id == "collection-name-0"),
        next(c for c in ODD_CASES if c.id == "name-lone-surrogate-flag"),
        next(c for c in ODD_CASES if c.id == "end-year-9999-with-an-offset"),
    ],
    ids=lambda case: case.id,
)
def test_the_console_script_exits_2_as_the_table_says(
    case: CliCase, world: DataPaths, tmp_path: Path
) -> None:
    write_inputs(tmp_path, case.files)
    with leaves_nothing(world):
        result = run_cli(world.root, *argv_for(case, tmp_path), timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert_names(result.stderr, case.expected)


# ---------------------------------------------------------------------------------------------
# Retriever YAML files: `retrievers list` reports each broken file (exit 2) and writes nothing.

PIPELINE_YAML = {
    "id": "bad",
    "kind": "pipeline",
    "collection": "products",
    "stages": [{"stage_id": "feature_search", "parameters": {"fields": ["title"]}}],
}
HTTP_YAML = {"id": "bad", "kind": "http", "http": {"url": "http://127.0.0.1:9/search"}}


def pipeline_yaml(**top: Any) -> str:
    return yaml.safe_dump({**PIPELINE_YAML, **top})


def stage_yaml(stage_id: str = "feature_search", **parameters: Any) -> str:
    return pipeline_yaml(
        stages=[{"stage_id": stage_id, "parameters": {"fields": ["title"], **parameters}}]
    )


def http_yaml(**http: Any) -> str:
    return yaml.safe_dump({**HTTP_YAML, "http": {**HTTP_YAML["http"], **http}})


RETRIEVER_CASES = [
    ("broken-yaml", "id: [bad\nkind: http\n", ("yaml", "invalid YAML at line")),
    ("not-a-mapping", "- a\n- b\n", ("file", "expected a mapping at the top level")),
    ("not-utf8", b"id: caf\xe9\nkind: http\n", ("file", "not UTF-8")),
    ("key-twice", "id: bad\nid: again\nkind: http\n", ("yaml", "key 'id' given twice")),
    ("kind-wrong-type", pipeline_yaml(kind=5), ("kind", "expected a string, got int")),
    ("kind-unknown", pipeline_yaml(kind="sql"), ("kind", "unknown kind 'sql'")),
    ("id-null", pipeline_yaml(id=None), ("id", "expected a string, got null")),
    (
        "id-missing",
        yaml.safe_dump({k: v for k, v in PIPELINE_YAML.items() if k != "id"}),
        ("id", "required"),
    ),
    *[
        (f"id-{index}", pipeline_yaml(id=bad), ("id", "is not a valid id"))
        for index, bad in enumerate((*PATHLIKE_IDS, HUGE))
    ],
    ("id-duplicate", pipeline_yaml(id="demo_prod"), ("id", "duplicate id 'demo_prod'")),
    ("unknown-key", pipeline_yaml(colection="products"), ("colection", "unknown key")),
    ("collection-unknown", pipeline_yaml(collection="nope"), ("collection", "unknown collection")),
    ("collection-path", pipeline_yaml(collection="../demo"), ("collection", "not a valid id")),
    ("stages-not-a-list", pipeline_yaml(stages="feature_search"), ("stages", "expected a list")),
    ("stages-empty", pipeline_yaml(stages=[]), ("stages", "at least one stage")),
    (
        "stage-unknown",
        pipeline_yaml(stages=[{"stage_id": "magic"}]),
        ("stages[0].stage_id", "unknown stage 'magic'"),
    ),
    ("stage-top-k-negative", stage_yaml(top_k=-5), ("stages[0].parameters.top_k", ">= 1")),
    ("stage-top-k-text", stage_yaml(top_k="ten"), ("stages[0].parameters.top_k", "integer")),
    ("stage-k1-nan", stage_yaml(k1=float("nan")), ("stages[0].parameters.k1", "finite")),
    ("stage-unknown-column", stage_yaml(fields=["colour"]), ("fields[0]", "unknown column")),
    (
        "stage-name-path",
        pipeline_yaml(stages=[{"stage_id": "limit", "name": "a/b", "parameters": {"n": 3}}]),
        ("stages[0].name", "not a valid id"),
    ),
    ("timeout-nan", http_yaml(timeout_s=float("nan")), ("http.timeout_s", "finite")),
    ("timeout-infinite", http_yaml(timeout_s=float("inf")), ("http.timeout_s", "finite")),
    ("timeout-zero", http_yaml(timeout_s=0), ("http.timeout_s", "> 0")),
    ("timeout-text", http_yaml(timeout_s="fast"), ("http.timeout_s", "expected a number")),
    ("retries-negative", http_yaml(max_retries=-1), ("http.max_retries", "from 0 to")),
    ("retries-endless", http_yaml(max_retries=10**9), ("http.max_retries", "from 0 to")),
    ("concurrency-zero", http_yaml(concurrency=0), ("http.concurrency", "from 1 to")),
    ("limit-zero", http_yaml(limit=0), ("http.limit", "from 1 to")),
    (
        "backoff-max-below-base",
        http_yaml(backoff_base_s=2, backoff_max_s=1),
        ("http.backoff_max_s", "backoff_base_s"),
    ),
    ("url-not-http", http_yaml(url="file:///etc/passwd"), ("http.url", "http://")),
    (
        "header-placeholder",
        http_yaml(headers={"Authorization": "Bearer ${secret}"}),
        ("http.headers.Authorization", "${env:NAME}"),
    ),
    (
        "body-placeholder",
        http_yaml(request_body={"q": "${query}"}),
        ("http.request_body.q", "unknown placeholder"),
    ),
    (
        "backend-unknown",
        yaml.safe_dump({**HTTP_YAML, "local_server": {"backend": "ghost"}}),
        ("local_server.backend", "'ghost' is not a pipeline retriever"),
    ),
]


@contextlib.contextmanager
def retriever_file(paths: DataPaths, content: str | bytes) -> Iterator[Path]:
    file = paths.retrievers_dir / "zz_bad.yaml"
    file.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    try:
        yield file
    finally:
        file.unlink()


@pytest.mark.parametrize(
    ("content", "expected"),
    [pytest.param(content, expected, id=name) for name, content, expected in RETRIEVER_CASES],
)
def test_a_broken_retriever_file_is_reported_naming_the_field(
    content: str | bytes, expected: tuple[str, ...], world: DataPaths
) -> None:
    with retriever_file(world, content), leaves_nothing(world):
        code, out, err = cli_in_process(world, "retrievers", "list")
    assert code == 2, err
    assert "demo_prod" in out  # the good files are still listed
    assert_names(err, ("zz_bad.yaml", *expected))


def test_a_broken_retriever_file_stops_requests_with_exit_2_naming_it(world: DataPaths) -> None:
    """Only requests for the retriever the broken file declares ('bad'); others go ahead."""
    with retriever_file(world, http_yaml(timeout_s=float("nan"))), leaves_nothing(world):
        code, _, err = cli_in_process(
            world,
            "benchmark",
            "create",
            "--name",
            "n",
            "--baseline",
            "demo_prod",
            "--candidate",
            "bad",
        )
        assert code == 2
        assert_names(err, ("retriever 'bad' cannot be used", "zz_bad.yaml", "http.timeout_s"))
        code, _, err = cli_in_process(world, "evaluation", "run", "bad", "--dataset", DATASET)
        assert code == 2
        assert_names(err, ("retriever 'bad' cannot be used", "zz_bad.yaml", "finite"))


# ---------------------------------------------------------------------------------------------
# The launchpad jobs: bad run config -> a failed run with every problem, and no request stored.


def launch(paths: DataPaths, instance: DagsterInstance, job: str, config: dict[str, Any]) -> Any:
    return defs.resolve_job_def(job).execute_in_process(
        run_config={"ops": {f"{job}_request": {"config": config}}},
        instance=instance,
        resources={"data_dir": DataDirResource(path=str(paths.root))},
        raise_on_error=False,
    )


def failure_description(result: Any) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.step_failure_data.user_failure_data.description


LAUNCH_CASES = [
    ("submit_benchmark", bench(session_count=3), ("session_count", "minimum of 10")),
    ("submit_benchmark", bench(session_count=10**6), ("session_count", "maximum of 10000")),
    ("submit_benchmark", bench(benchmark_name=""), ("benchmark_name", "non-empty")),
    ("submit_benchmark", bench(benchmark_name=HUGE), ("benchmark_name", "too long")),
    ("submit_benchmark", bench(baseline_retriever_id="../x"), ("baseline_retriever_id", "'../x'")),
    (
        "submit_benchmark",
        bench(candidate_retriever_ids=[]),
        ("candidate_retriever_ids", "non-empty"),
    ),
    (
        "submit_benchmark",
        bench(candidate_retriever_ids=["a'b", 'a"b']),
        ("candidate_retriever_ids.0", "candidate_retriever_ids.1", "unknown retriever"),
    ),
    (
        "submit_benchmark",
        bench(candidate_retriever_ids=["demo_better", "demo_better"]),
        ("candidate_retriever_ids", "listed more than once"),
    ),
    (
        "submit_benchmark",
        weights(click=float("nan")),
        ("session_filter.interaction_weights.weights.click", "finite"),
    ),
    (
        "submit_benchmark",
        weights(click=-2.0),
        ("session_filter.interaction_weights.weights.click", ">= 0"),
    ),
    (
        "submit_benchmark",
        with_filter(time_range={"start": "2026-10-02T00:00:00Z", "end": "2026-10-01T00:00:00Z"}),
        ("session_filter.time_range", "is after end"),
    ),
    (
        "submit_benchmark",
        with_filter(time_range={"start": "last tuesday"}),
        ("session_filter.time_range.start", "ISO 8601"),
    ),
    ("submit_benchmark", with_filter(sample_strategy="biggest"), ("sample_strategy", "biggest")),
    ("submit_benchmark", with_filter(retriever_ids=[]), ("session_filter.retriever_ids", "empty")),
    ("submit_benchmark", with_filter(min_interactions=0), ("min_interactions", "minimum of 1")),
    ("submit_benchmark", bench(seed=-1), ("seed", "non-negative")),
    ("submit_benchmark", bench(epsilon=float("inf")), ("epsilon", "finite")),
    ("submit_benchmark", bench(replay_depth=5000), ("replay_depth", "from 1 to 1000")),
    ("submit_evaluation", {**EVALUATION, "retriever_id": "ghost"}, ("retriever_id", "'ghost'")),
    ("submit_evaluation", {**EVALUATION, "dataset_name": "../x"}, ("dataset_name", "'../x'")),
    (
        "submit_evaluation",
        {**EVALUATION, "evaluation_config": {"k_values": [0, 10]}},
        ("evaluation_config.k_values.0", "from 1 to 1000"),
    ),
    (
        "submit_evaluation",
        {**EVALUATION, "evaluation_config": {"k_values": []}},
        ("evaluation_config.k_values", "non-empty"),
    ),
    (
        "submit_evaluation",
        {**EVALUATION, "evaluation_config": {"metrics": ["ndcg", "bleu"]}},
        ("evaluation_config.metrics.1", "unknown metric 'bleu'"),
    ),
    (
        "submit_evaluation",
        {**EVALUATION, "evaluation_config": {"metrics": ["map", "map"]}},
        ("evaluation_config.metrics", "listed twice"),
    ),
]


@pytest.mark.parametrize(
    ("job", "config", "expected"),
    [
        pytest.param(job, config, expected, id=f"{job}-{index}")
        for index, (job, config, expected) in enumerate(LAUNCH_CASES)
    ],
)
def test_a_bad_launch_config_fails_the_run_clearly_and_stores_nothing(
    job: str,
    config: dict[str, Any],
    expected: tuple[str, ...],
    world: DataPaths,
    instance: DagsterInstance,
) -> None:
    with leaves_nothing(world, instance):
        result = launch(world, instance, job, config)
    assert not result.success
    assert_names(failure_description(result), expected)


@pytest.mark.parametrize(
    ("job", "config", "expected"),
    [
        ("submit_benchmark", bench(session_count="many"), ("session_count", "many")),
        (
            "submit_benchmark",
            bench(candidate_retriever_ids="demo_better"),
            ("candidate_retriever_ids",),
        ),
        ("submit_benchmark", bench(sesion_count=50), ("sesion_count",)),
        ("submit_benchmark", {"benchmark_name": "x"}, ("baseline_retriever_id",)),
        (
            "submit_evaluation",
            {**EVALUATION, "evaluation_config": {"k_values": ["ten"]}},
            ("k_values", "ten"),
        ),
    ],
    ids=["count-text", "candidates-text", "unknown-key", "missing", "k-text"],
)
def test_a_launch_config_of_the_wrong_shape_is_refused_before_any_run(
    job: str,
    config: dict[str, Any],
    expected: tuple[str, ...],
    world: DataPaths,
    instance: DagsterInstance,
) -> None:
    runs_before = len(instance.get_run_records())
    with leaves_nothing(world, instance), pytest.raises(DagsterInvalidConfigError) as refused:
        launch(world, instance, job, config)
    assert_names(str(refused.value), expected)
    assert len(instance.get_run_records()) == runs_before


# ---------------------------------------------------------------------------------------------
# The nightly schedule file: a broken file or entry skips the tick, saying why; no run request.

TICK = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
NIGHTLY = {**BENCHMARK, "benchmark_name": "nightly", "lookback_hours": 24}


def schedule_yaml(*entries: Any) -> str:
    return yaml.safe_dump({"benchmarks": list(entries)})


SCHEDULE_CASES = [
    ("broken-yaml", "benchmarks: [\n  - {benchmark_name: x\n", ("benchmark_schedule.yaml", "YAML")),
    (
        "not-utf8",
        b"benchmarks:\n  - benchmark_name: caf\xe9\n",
        ("benchmark_schedule.yaml", "UTF-8"),
    ),
    ("empty", "", ("benchmarks", "expected a list")),
    ("not-a-list", "benchmarks: nightly\n", ("benchmarks", "expected a list")),
    ("entry-not-an-object", schedule_yaml("nightly"), ("benchmarks[0]", "expected an object")),
    (
        "lookback-negative",
        schedule_yaml({**NIGHTLY, "lookback_hours": -1}),
        ("benchmarks[0].lookback_hours", "positive"),
    ),
    (
        "lookback-nan",
        schedule_yaml({**NIGHTLY, "lookback_hours": float("nan")}),
        ("benchmarks[0].lookback_hours", "positive"),
    ),
    (
        "lookback-text",
        schedule_yaml({**NIGHTLY, "lookback_hours": "a day"}),
        ("benchmarks[0].lookback_hours", "positive"),
    ),
    (
        "lookback-overflows",
        schedule_yaml({**NIGHTLY, "lookback_hours": 1e12}),
        ("benchmarks[0].lookback_hours", "up to"),
    ),
    (
        "filter-not-an-object",
        schedule_yaml({**NIGHTLY, "session_filter": "all"}),
        ("benchmarks[0]", "session_filter", "not of type 'object'"),
    ),
    (
        "unknown-retriever",
        schedule_yaml({**NIGHTLY, "baseline_retriever_id": "ghost"}),
        ("benchmarks[0]", "baseline_retriever_id", "'ghost'"),
    ),
    (
        "count-text",
        schedule_yaml({**NIGHTLY, "session_count": "many"}),
        ("benchmarks[0]", "session_count", "integer"),
    ),
    (
        "count-too-small",
        schedule_yaml({**NIGHTLY, "session_count": 3}),
        ("benchmarks[0]", "session_count", "minimum"),
    ),
    (
        "nan-weight",
        schedule_yaml(
            {
                **NIGHTLY,
                "session_filter": {"interaction_weights": {"weights": {"click": float("nan")}}},
            }
        ),
        ("benchmarks[0]", "weights.click", "finite"),
    ),
    (
        "unknown-key",
        schedule_yaml({**NIGHTLY, "nightly": True}),
        ("benchmarks[0]", "nightly", "unknown field"),
    ),
    (
        "second-entry-bad",
        schedule_yaml(NIGHTLY, {**NIGHTLY, "candidate_retriever_ids": ["../x"]}),
        ("benchmarks[1]", "candidate_retriever_ids.0", "'../x'"),
    ),
]


@pytest.mark.parametrize(
    ("content", "expected"),
    [pytest.param(content, expected, id=name) for name, content, expected in SCHEDULE_CASES],
)
def test_a_bad_schedule_file_skips_the_tick_saying_why(
    content: str | bytes, expected: tuple[str, ...], world: DataPaths, instance: DagsterInstance
) -> None:
    file = world.root / "benchmark_schedule.yaml"
    file.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    try:
        context = build_schedule_context(
            instance=instance,
            scheduled_execution_time=TICK,
            resources={"data_dir": DataDirResource(path=str(world.root))},
        )
        with leaves_nothing(world, instance):
            outcome = nightly_benchmarks(context)
    finally:
        file.unlink()
    assert isinstance(outcome, SkipReason), outcome
    assert_names(outcome.skip_message or "", expected)


# ---------------------------------------------------------------------------------------------
# Request files dropped for the sensor: a malformed one is reported (its record marked failed when
# it has one), never partitioned, and does not stop the good ones.


@dataclass(frozen=True)
class DroppedRequest:
    id: str
    kind: str
    request: str | bytes
    expected: tuple[str, ...]
    folder: str = "bench_dropped"
    with_record: bool = True
    record_json: str | None = None  # a hand-made record.json, for the cases that have one


DROPPED_CASES = [
    DroppedRequest(
        "broken-json", "benchmarks", '{"benchmark_name": ', ("request.json", "not valid JSON")
    ),
    DroppedRequest(
        "not-utf8", "benchmarks", b'{"benchmark_name": "caf\xe9"}', ("request.json", "UTF-8")
    ),
    DroppedRequest("array", "benchmarks", "[1, 2]", ("expected a JSON object",)),
    DroppedRequest(
        "unknown-retriever",
        "benchmarks",
        json.dumps(bench(baseline_retriever_id="ghost")),
        ("baseline_retriever_id", "unknown retriever 'ghost'"),
        with_record=False,
    ),
    DroppedRequest(
        "empty-candidates",
        "benchmarks",
        json.dumps(bench(candidate_retriever_ids=[], benchmark_name=HUGE)),
        ("candidate_retriever_ids", "non-empty", "benchmark_name", "too long"),
    ),
    DroppedRequest(
        "record-broken",
        "benchmarks",
        json.dumps(bench()),
        ("record.json", "not valid JSON"),
        with_record=False,
        record_json='{"record": ',
    ),
    DroppedRequest(
        "record-empty",
        "benchmarks",
        json.dumps(bench()),
        ("record.json", "expected an object with a record and its status"),
        with_record=False,
        record_json='{"run_id": null}',
    ),
    DroppedRequest(
        "bad-numbers",
        "benchmarks",
        json.dumps(bench(session_count=3, epsilon=float("nan"))),
        ("session_count", "epsilon"),
    ),
    DroppedRequest(
        "no-record",
        "benchmarks",
        json.dumps(bench(session_count=3)),
        ("session_count",),
        with_record=False,
    ),
    DroppedRequest(
        "folder-not-an-id",
        "benchmarks",
        json.dumps(bench()),
        ("bench 'x", "not a valid id"),
        folder="bench 'x",
        with_record=False,
    ),
    DroppedRequest(
        "evaluation-unknown-metric",
        "evaluations",
        json.dumps({**EVALUATION, "evaluation_config": {"metrics": ["bleu"]}}),
        ("evaluation_config.metrics.0", "unknown metric 'bleu'"),
        folder="eval_dropped",
    ),
]


def sensor_context(instance: DagsterInstance, paths: DataPaths) -> Any:
    return build_sensor_context(
        instance=instance, resources={"data_dir": DataDirResource(path=str(paths.root))}
    )


def pending_record(paths: DataPaths, kind: str, record_id: str) -> dict[str, Any]:
    """A well-formed pending record, as a door would have stored it with the request."""
    if kind == "benchmarks":
        return accept_request(paths, parse_request(bench(), paths), record_id)
    from eval_pipelines.core.evaluations.request import parse_evaluation_request
    from eval_pipelines.core.evaluations.submit import accept_request as accept_evaluation

    return accept_evaluation(paths, parse_evaluation_request(EVALUATION, paths), record_id)


@pytest.mark.parametrize("case", DROPPED_CASES, ids=lambda case: case.id)
def test_a_malformed_dropped_request_is_reported_and_never_partitioned(
    case: DroppedRequest, world: DataPaths
) -> None:
    folder = world.root / case.kind / case.folder
    sensor = benchmark_request_sensor if case.kind == "benchmarks" else evaluation_request_sensor
    try:
        if case.with_record:
            pending_record(world, case.kind, case.folder)
        folder.mkdir(parents=True, exist_ok=True)
        if case.record_json is not None:
            (folder / "record.json").write_text(case.record_json, encoding="utf-8")
        (folder / "request.json").write_bytes(
            case.request if isinstance(case.request, bytes) else case.request.encode("utf-8")
        )
        with DagsterInstance.ephemeral() as instance:
            first = sensor(sensor_context(instance, world))
            again = sensor(sensor_context(instance, world))
            if case.record_json is not None:
                assert isinstance(first, SkipReason)
                assert "record.json" in (first.skip_message or "")
                assert case.folder in (first.skip_message or "")
            assert partitions(instance) == {"benchmark": [], "evaluation": []}
        for outcome in (first, again):
            assert isinstance(outcome, SkipReason), outcome
        assert_names(first.skip_message or "", (case.folder, *case.expected))
        # a marked record is not reported again; a request without one is, every tick
        assert (case.folder in (again.skip_message or "")) is not case.with_record
        if case.with_record:
            store = benchmark_store(world) if case.kind == "benchmarks" else evaluation_store(world)
            record = store.get(case.folder)
            assert record["status"] == "failed"
            assert_names(record["error_message"], case.expected)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_malformed_dropped_request_does_not_hold_up_a_good_one(world: DataPaths) -> None:
    good = accept_request(world, parse_request(bench(), world))["benchmark_id"]
    bad = world.root / "benchmarks" / "bench_broken"
    bad.mkdir()
    (bad / "request.json").write_text("{", encoding="utf-8")
    try:
        with DagsterInstance.ephemeral() as instance:
            result = benchmark_request_sensor(sensor_context(instance, world))
        assert isinstance(result, SensorResult)
        assert [r.partition_key for r in result.run_requests] == [good]
        assert [list(a.partition_keys) for a in result.dynamic_partitions_requests] == [[good]]
    finally:
        shutil.rmtree(bad)
        shutil.rmtree(world.root / "benchmarks" / good)


# ---------------------------------------------------------------------------------------------
# SQL takes values as parameters: a quote in an id reaching DuckDB is a value, never SQL.

INJECTIONS = ("demo_prod' OR '1'='1", "x'); DROP VIEW logged_executions; --", 'a"b')


@pytest.mark.parametrize("value", INJECTIONS)
def test_sampling_treats_a_quoted_id_as_a_value(world: DataPaths, value: str) -> None:
    honest = sample_sessions(world, SessionFilter(retriever_ids=("demo_prod",)), 20, seed=1)
    assert honest.matched > 0
    for session_filter in (
        SessionFilter(retriever_ids=(value,)),
        SessionFilter(taxonomy_node_ids=(value,)),
        SessionFilter(retriever_ids=("demo_prod", value)),
    ):
        sample = sample_sessions(world, session_filter, 20, seed=1)
        expected = honest.matched if "demo_prod" in (session_filter.retriever_ids or ()) else 0
        assert sample.matched == expected, session_filter


@pytest.mark.parametrize("value", INJECTIONS)
def test_a_warehouse_query_takes_a_quoted_id_as_a_value(world: DataPaths, value: str) -> None:
    sql = "SELECT count(*) AS n FROM logged_executions WHERE retriever_id = ?"
    assert query(world, sql, ["demo_prod"])["n"][0].as_py() > 0
    assert query(world, sql, [value])["n"][0].as_py() == 0
    assert query(world, "SELECT count(*) AS n FROM logged_executions")["n"][0].as_py() > 0


def test_the_warehouse_survives_quotes_in_the_data_directory_and_in_folder_names(
    tmp_path: Path,
) -> None:
    paths = DataPaths(tmp_path / 'it\'s "data"')
    executions = paths.log_table_dir("executions")
    executions.mkdir(parents=True)
    pq.write_table(
        pa.table({"execution_id": ["e1"], "retriever_id": ["r'1"]}), executions / "part-1.parquet"
    )
    stray = paths.collections_dir / 'x"; DROP VIEW logged_executions; --'
    stray.mkdir(parents=True)
    pq.write_table(pa.table({"document_id": ["d1"]}), stray / "documents.parquet")
    views = refresh_views(paths)
    assert "logged_executions" in views
    assert not [v for v in views if "DROP" in v]
    table = query(
        paths, "SELECT retriever_id FROM logged_executions WHERE retriever_id = ?", ["r'1"]
    )
    assert table["retriever_id"].to_pylist() == ["r'1"]
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM logged_executions").fetchall() == [(1,)]


@pytest.mark.parametrize("value", ["../x", "a/b", "a'b", 'a"b', "x\n", "", "." * 3, HUGE])
def test_ids_that_reach_paths_are_validated(value: str, world: DataPaths) -> None:
    from eval_pipelines.core.errors import InvalidInputError

    for reach in (
        lambda: world.collection_dir(value),
        lambda: world.dataset_dir(value),
        lambda: world.retriever_executions_dir(value),
        lambda: benchmark_store(world).folder(value),
    ):
        with pytest.raises(InvalidInputError, match="not a valid id") as refused:
            reach()
        assert len(str(refused.value)) < MAX_MESSAGE
