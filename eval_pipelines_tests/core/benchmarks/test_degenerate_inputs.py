"""Degenerate benchmarks get defined, valid, honest records: no NaN, no placeholder posing as a verdict.

One session, all-zero deltas, taxonomy nodes with too few sessions, a pipeline whose every session
failed and a benchmark with no session at all: first through benchmark_results and completed_record
(every branch, exactly), then end to end on the small demo world through a real Dagster instance,
with a retriever that is down (nothing listens on its loopback port).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.stats
import yaml
from dagster import DagsterInstance

from eval_pipelines.cli.run_in_process import run_benchmark_here
from eval_pipelines.core.benchmarks.comparison import PipelineInfo, benchmark_results
from eval_pipelines.core.benchmarks.inference import DEFAULT_MIN_NODE_SESSIONS as MIN_NODE_SESSIONS
from eval_pipelines.core.benchmarks.record import completed_record, pending_record
from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.benchmarks.sampling import SessionFilter, sample_sessions
from eval_pipelines.core.demo.retrievers import BETTER, PROD, PROD_COPY
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.stats.clustered import SIGN_FLIP_SAMPLES
from eval_pipelines_tests.core.benchmarks.test_comparison import (
    BASE,
    CAND,
    assert_plain_json,
    completed,
    failed,
    table,
)
from eval_pipelines_tests.loopback import free_port
from eval_pipelines_tests.schemas import validation_errors

OTHER = PipelineInfo("other", "Other candidate", "hash-other")
DOWN = "demo_down"
ZEROS = dict.fromkeys(("1", "5", "10", "20"), 0.0)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> DataPaths:
    """Retrievers base, cand and other, so requests naming them validate (they are never called)."""
    paths = DataPaths(Path(tmp_path_factory.mktemp("registry")) / "data")
    paths.retrievers_dir.mkdir(parents=True)
    for info in (BASE, CAND, OTHER):
        config = {"id": info.retriever_id, "kind": "http", "http": {"url": "http://127.0.0.1:9/"}}
        (paths.retrievers_dir / f"{info.retriever_id}.yaml").write_text(yaml.safe_dump(config))
    return paths


def final_record(
    registry: DataPaths, rows: list[dict[str, Any]], pipelines: list[PipelineInfo], sessions: int
) -> dict[str, Any]:
    """The completed BenchmarkResponse these score rows yield, checked valid and NaN-free."""
    results, comparison = benchmark_results(table(rows), pipelines)
    request = parse_request(
        {
            "benchmark_name": "degenerate",
            "baseline_retriever_id": pipelines[0].retriever_id,
            "candidate_retriever_ids": [p.retriever_id for p in pipelines[1:]],
        },
        registry,
    )
    pending = pending_record(request, "bench_degenerate", "2026-11-01T00:00:00Z")
    outcome = {
        "results": results,
        "comparison": comparison,
        "sessions_sampled": sessions,
        "sessions_matched": sessions,
        "warnings": [],
    }
    record = completed_record(pending, outcome, None, "2026-11-01T00:01:00Z")
    assert_valid_json_record(record)
    return record


def assert_valid_json_record(record: dict[str, Any]) -> None:
    """Schema-valid, plain JSON types, no NaN or infinity, and no -0.0 (it prints as "-0.0")."""
    assert validation_errors("get_benchmark.openapi", "BenchmarkResponse", record) == []
    assert_plain_json(record)
    json.dumps(record, allow_nan=False)
    assert not [v for v in floats(record) if v == 0 and math.copysign(1.0, v) < 0]


def floats(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [f for item in value.values() for f in floats(item)]
    if isinstance(value, list):
        return [f for item in value for f in floats(item)]
    return [value] if isinstance(value, float) else []


def sessions_of(
    pipeline: str, ndcg: np.ndarray, nodes: list[str | None], **fields: Any
) -> list[dict[str, Any]]:
    return [
        completed(f"e{i:03d}", pipeline, float(value), node=nodes[i], logged=0.4, **fields)
        for i, value in enumerate(ndcg)
    ]


@pytest.mark.parametrize("sessions", [1, 2, 9])
def test_few_sessions_are_not_testable_and_never_promoted(
    registry: DataPaths, sessions: int
) -> None:
    """A large gain on 1, 2 or 9 queries: an exact p-value, no interval, no verdict, no promotion."""
    rng = np.random.default_rng(sessions)
    base = rng.uniform(0.2, 0.5, sessions)
    gain = 0.3 + rng.normal(0, 0.05, sessions)
    rows = sessions_of("base", base, [None] * sessions) + sessions_of(
        "cand", base + gain, [None] * sessions
    )
    record = final_record(registry, rows, [BASE, CAND], sessions=sessions)
    (pair,) = record["comparison"]["comparisons"]
    assert pair["verdict"] == "not_testable"
    assert pair["verdict_reasons"] == [f"{sessions} queries < minimum 10"]
    assert pair["confidence_interval"] is None
    # Every sign pattern of `sessions` positive sums: only all-plus and all-minus reach the sum.
    assert pair["p_value"] == pytest.approx(min(1.0, 2 / 2**sessions))
    assert pair["p_value"] > 0
    assert pair["inference"]["method"] == "cluster_sign_flip"
    assert not record["comparison"]["recommendation"].startswith("Promote")
    assert record["warnings"] == [
        f"cand: not testable against the baseline base ({sessions} queries < minimum 10): no"
        " verdict, never promoted"
    ]
    assert [r["scored_sessions"] for r in record["results"]] == [sessions, sessions]


def test_ten_queries_are_tested_as_the_paired_t_test_tests_them(registry: DataPaths) -> None:
    """At the minimum of 10 queries (one session each) the test runs, and it is the t-test."""
    rng = np.random.default_rng(10)
    base = rng.uniform(0.2, 0.5, 10)
    cand = base + 0.05 + rng.normal(0, 0.05, 10)
    rows = sessions_of("base", base, [None] * 10) + sessions_of("cand", cand, [None] * 10)
    record = final_record(registry, rows, [BASE, CAND], sessions=10)
    (pair,) = record["comparison"]["comparisons"]
    expected = scipy.stats.ttest_rel(cand, base)
    assert pair["inference"]["method"] == "wild_cluster_bootstrap_t"
    assert pair["inference"]["degrees_of_freedom"] == pytest.approx(9)
    # Ten clusters allow 1,024 sign patterns; the bootstrap-t p sits near the t-test's.
    assert pair["p_value"] == pytest.approx(expected.pvalue, abs=0.02)
    assert pair["p_value"] >= 2 / 2**10
    assert pair["verdict"] == ("better" if pair["p_value"] < 0.05 else "no_detectable_difference")


@pytest.mark.parametrize(
    ("difference", "verdict", "reasons"),
    [
        (0.3, "not_testable", ["the differences have no variance (every paired session differs alike)"]),
        (5.6e-17, "no_detectable_difference", ["identical NDCG@10 on every session"]),
        (0.0, "no_detectable_difference", ["identical NDCG@10 on every session"]),
    ],
)  # fmt: skip
def test_constant_differences_are_never_read_as_certainty(
    registry: DataPaths, difference: float, verdict: str, reasons: list[str]
) -> None:
    """Identical differences on 30 queries: no p = 0 and no zero-width interval for a real gain;
    floating-point noise of equal scores is no gain at all."""
    base = np.random.default_rng(31).uniform(0.1, 0.6, 30)
    nodes = ["shoes"] * 15 + ["hats"] * 15
    rows = sessions_of("base", base, nodes) + sessions_of("cand", base + difference, nodes)
    record = final_record(registry, rows, [BASE, CAND], sessions=30)
    (pair,) = record["comparison"]["comparisons"]
    assert (pair["verdict"], pair["verdict_reasons"]) == (verdict, reasons)
    assert pair["p_value"] > 0
    assert (pair["taxonomy_wins"], pair["taxonomy_losses"]) == ([], [])
    assert not record["comparison"]["recommendation"].startswith("Promote")
    if verdict == "no_detectable_difference":
        assert (pair["p_value"], pair["confidence_interval"]) == (1.0, [0.0, 0.0])
        assert pair["effect"]["minimum_detectable_effect"] == 0.0
    else:
        # 30 queries: the sign flips are sampled (seeded); no pattern but the observed one reaches it.
        assert pair["confidence_interval"] is None
        assert pair["p_value"] == pytest.approx(1 / (SIGN_FLIP_SAMPLES + 1))


def test_a_node_with_one_query_is_untested_however_many_sessions(registry: DataPaths) -> None:
    """Twenty sessions of one query in a node are one cluster: no win, whatever their gain."""
    rng = np.random.default_rng(32)
    base = rng.uniform(0.2, 0.5, 50)
    cand = base + 0.2 + rng.normal(0, 0.02, 50)
    nodes = ["single"] * 20 + ["many"] * 30
    queries = ["same query"] * 20 + [f"q{i}" for i in range(30)]
    rows = [
        completed(f"e{i:03d}", pipeline, float(value), node=nodes[i], logged=0.4, query=queries[i])
        for pipeline, values in (("base", base), ("cand", cand))
        for i, value in enumerate(values)
    ]
    record = final_record(registry, rows, [BASE, CAND], sessions=50)
    (pair,) = record["comparison"]["comparisons"]
    assert pair["taxonomy_wins"] == ["many"]
    assert pair["taxonomy_untested"] == {"single": 20}
    assert pair["inference"]["clusters"] == 31
    assert pair["verdict"] == "better"


@pytest.mark.parametrize("small_node", [MIN_NODE_SESSIONS - 1, MIN_NODE_SESSIONS])
def test_a_taxonomy_node_with_too_few_sessions_is_marked_untested_not_judged(
    registry: DataPaths, small_node: int
) -> None:
    """Both nodes gain clearly; only a node with at least MIN_NODE_SESSIONS sessions may be a win.

    A session without a node is counted in no node; a failure counts against its pipeline.
    """
    rng = np.random.default_rng(22)
    size = 20 + small_node + 1
    base = rng.uniform(0.2, 0.6, size)
    cand = base + 0.2 + rng.normal(0, 0.01, size)
    nodes: list[str | None] = ["big"] * 20 + ["small"] * small_node + [None]
    rows = sessions_of("base", base, nodes) + sessions_of("cand", cand, nodes)
    record = final_record(registry, rows, [BASE, CAND], sessions=size)
    (pair,) = record["comparison"]["comparisons"]
    if small_node < MIN_NODE_SESSIONS:
        assert (pair["taxonomy_wins"], pair["taxonomy_untested"]) == (
            ["big"],
            {"small": small_node},
        )
    else:
        assert (pair["taxonomy_wins"], pair["taxonomy_untested"]) == (["big", "small"], {})
    assert pair["taxonomy_losses"] == []
    assert pair["paired_sessions"] == size
    assert record["settings"]["min_node_sessions"] == MIN_NODE_SESSIONS


def test_a_candidate_whose_every_session_failed_is_never_recommended(registry: DataPaths) -> None:
    rng = np.random.default_rng(23)
    base = rng.uniform(0.2, 0.6, 40)
    nodes = ["shoes"] * 40
    rows = sessions_of("base", base, nodes) + sessions_of(
        "other", base + 0.1 + rng.normal(0, 0.01, 40), nodes
    )
    errors = ["timeout"] * 30 + ["http_5xx"] * 8 + [None] * 2
    rows += [
        failed(f"e{i:03d}", "cand", error, node="shoes", logged=0.4)
        for i, error in enumerate(errors)
    ]
    record = final_record(registry, rows, [BASE, CAND, OTHER], sessions=40)
    cand = record["results"][1]
    assert (cand["scored_sessions"], cand["failed_sessions"]) == (0, 40)
    assert cand["metrics"]["ndcg_at_k"] == ZEROS
    down, other = record["comparison"]["comparisons"]
    assert (down["p_value"], down["confidence_interval"], down["paired_sessions"]) == (
        None,
        None,
        0,
    )
    assert down["verdict"] == "not_testable"
    assert down["taxonomy_untested"] == {"shoes": 40}
    assert (other["verdict"], other["p_value"] > 0) == ("better", True)
    assert record["comparison"]["recommendation"].startswith("Promote other: NDCG@10 +0.09")
    assert record["warnings"] == [
        "cand scored no session (40 of 40 failed: http_5xx 8, timeout 30, unknown 2): its metrics"
        " and latency are placeholders (0), not measurements, and it was not compared and cannot"
        " be recommended"
    ]


def test_a_baseline_whose_every_session_failed_yields_no_verdict(registry: DataPaths) -> None:
    rows = [failed(f"e{i:03d}", "base", "connection_error") for i in range(12)]
    rows += [completed(f"e{i:03d}", "cand", 0.9) for i in range(12)]
    record = final_record(registry, rows, [BASE, CAND], sessions=12)
    assert record["comparison"]["recommendation"] == (
        "No verdict: the baseline base scored no session (12 of 12 failed), so no candidate could"
        " be compared with it."
    )
    assert record["warnings"] == [
        "base scored no session (12 of 12 failed: connection_error 12): its metrics and latency"
        " are placeholders (0), not measurements, and no candidate could be compared with it"
    ]
    (pair,) = record["comparison"]["comparisons"]
    assert (pair["p_value"], pair["ndcg_delta"], pair["verdict"]) == (None, ZEROS, "not_testable")


def test_a_benchmark_without_sessions_yields_no_verdict(registry: DataPaths) -> None:
    record = final_record(registry, [], [BASE, CAND], sessions=0)
    assert record["comparison"]["recommendation"] == (
        "No verdict: the benchmark has no session, so nothing was compared with base."
    )
    assert record["warnings"] == [
        "no session was sampled: every metric is a placeholder (0) and nothing was tested"
    ]
    assert [r["scored_sessions"] for r in record["results"]] == [0, 0]
    (pair,) = record["comparison"]["comparisons"]
    assert (pair["verdict"], pair["verdict_reasons"]) == (
        "not_testable",
        ["no session with interactions"],
    )


@pytest.fixture(scope="module")
def demo_with_a_dead_retriever(module_world_copy: DataPaths) -> DataPaths:
    """The small demo world plus demo_down, an HTTP retriever whose loopback port nobody serves."""
    paths = module_world_copy
    config = {
        "id": DOWN,
        "kind": "http",
        "http": {"url": f"http://127.0.0.1:{free_port()}/search", "max_retries": 0},
    }
    (paths.retrievers_dir / f"{DOWN}.yaml").write_text(yaml.safe_dump(config))
    return paths


def run_benchmark(
    paths: DataPaths, tmp_path: Path, benchmark_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    # demo_prod's own sessions, so the sample does not mix in the earlier ranker's (a warning)
    session_filter = {"retriever_ids": [PROD], **(body.get("session_filter") or {})}
    request = parse_request(
        {"benchmark_name": benchmark_id, **body, "session_filter": session_filter}, paths
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    with DagsterInstance.local_temp(str(home)) as instance:
        record = run_benchmark_here(paths, request, benchmark_id, lambda _: None, instance=instance)
    assert record["status"] == "completed", record["error_message"]
    assert_valid_json_record(record)
    return record


def by_candidate(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["candidate_retriever_id"]: c for c in record["comparison"]["comparisons"]}


def test_end_to_end_one_session_and_a_dead_retriever(
    demo_with_a_dead_retriever: DataPaths, tmp_path: Path
) -> None:
    paths = demo_with_a_dead_retriever
    sessions = sample_sessions(paths, SessionFilter(retriever_ids=(PROD,)), 10, 0).sessions
    moment = sessions.column("created_at")[0].as_py().isoformat()
    record = run_benchmark(
        paths,
        tmp_path,
        "bench_one_session",
        {
            "baseline_retriever_id": PROD,
            "candidate_retriever_ids": [PROD_COPY, BETTER, DOWN],
            "session_filter": {"time_range": {"start": moment, "end": moment}},
        },
    )
    assert record["session_count"] == 1
    node = sessions.column("taxonomy_node_id")[0].as_py()
    comparisons = by_candidate(record)
    for candidate, paired in ((PROD_COPY, 1), (BETTER, 1), (DOWN, 0)):
        pair = comparisons[candidate]
        assert (pair["verdict"], pair["confidence_interval"]) == ("not_testable", None), candidate
        assert (pair["paired_sessions"], pair["taxonomy_untested"]) == (paired, {node: 1})
    # One query's sign can flip either way: the exact p of a single cluster is 1 (0 for no one).
    assert comparisons[BETTER]["p_value"] == 1.0 and comparisons[DOWN]["p_value"] is None
    assert record["comparison"]["recommendation"].startswith("No verdict: no candidate could be")
    assert record["warnings"] == [
        "only 1 sessions match the filter; using all of them (requested 1000)",
        f"{DOWN} scored no session (1 of 1 failed: connection_error 1): its metrics and latency are"
        " placeholders (0), not measurements, and it was not compared and cannot be recommended",
        *(
            f"{candidate}: not testable against the baseline {PROD} (1 queries < minimum 10): no"
            " verdict, never promoted"
            for candidate in (PROD_COPY, BETTER)
        ),
    ]


def test_end_to_end_the_copy_ties_everywhere_and_the_dead_retriever_has_no_metrics(
    demo_with_a_dead_retriever: DataPaths, tmp_path: Path
) -> None:
    record = run_benchmark(
        demo_with_a_dead_retriever,
        tmp_path,
        "bench_copy_and_down",
        {
            "baseline_retriever_id": PROD,
            "candidate_retriever_ids": [PROD_COPY, DOWN],
            "session_count": 60,
        },
    )
    copy, down = by_candidate(record)[PROD_COPY], by_candidate(record)[DOWN]
    assert (copy["p_value"], copy["confidence_interval"], copy["paired_sessions"]) == (
        1.0,
        [0.0, 0.0],
        60,
    )
    assert copy["ndcg_delta"] == copy["recall_delta"] == ZEROS
    assert copy["taxonomy_wins"] == copy["taxonomy_losses"] == []
    assert copy["verdict"] == "no_detectable_difference"
    nodes = record["results"][0]["taxonomy_deltas"]
    per_node = {n: sum(nodes[n][k] for k in ("sessions_improved", "sessions_degraded",
                                               "sessions_neutral")) for n in nodes}  # fmt: skip
    assert sum(per_node.values()) == 60
    assert copy["taxonomy_untested"] == per_node  # no node reaches 10 queries in 60 sessions
    assert (down["p_value"], down["paired_sessions"], down["verdict"]) == (None, 0, "not_testable")
    assert down["taxonomy_untested"] == per_node
    results = {r["retriever_id"]: r for r in record["results"]}
    assert results[PROD_COPY]["metrics"] == {
        **results[PROD]["metrics"],
        "sessions_improved": 0,
        "sessions_degraded": 0,
        "sessions_neutral": 60,
    }
    assert (results[DOWN]["scored_sessions"], results[DOWN]["failed_sessions"]) == (0, 60)
    assert results[DOWN]["error_summary"] == {"connection_error": 60}
    assert record["comparison"]["recommendation"] == (
        f"Keep the baseline {PROD}: no candidate is better: {PROD_COPY} no detectable difference"
        f" (identical on every session); {DOWN} not testable (the candidate scored no session (60"
        " of 60 failed: connection_error 60))."
    )
    assert record["warnings"] == [
        f"{DOWN} scored no session (60 of 60 failed: connection_error 60): its metrics and latency"
        " are placeholders (0), not measurements, and it was not compared and cannot be recommended"
    ]
