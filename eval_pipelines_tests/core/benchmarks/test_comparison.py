"""Benchmark results and comparison: hand-computed aggregates, known effects, degenerate runs, schemas."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import scipy.stats

from eval_pipelines.core.benchmarks.comparison import PipelineInfo, benchmark_results
from eval_pipelines.core.benchmarks.inference import InferenceSettings
from eval_pipelines.core.metrics.alignment import (
    CUTOFFS,
    counted_types,
    effective_weights,
    score_columns,
    score_sessions,
)
from eval_pipelines_tests.schemas import validation_errors

BASE = PipelineInfo("base", "Production BM25", "hash-base")
CAND = PipelineInfo("cand", "Candidate BM25", "hash-cand")
SCORE_FIELDS = [
    pa.field("execution_id", pa.string()),
    pa.field("retriever_id", pa.string()),
    pa.field("status", pa.string()),
    pa.field("error_type", pa.string()),
    pa.field("taxonomy_node_id", pa.string()),
    pa.field("latency_ms", pa.float64()),
    pa.field("stage_latencies", pa.string()),
    pa.field("logged_ndcg_at_10", pa.float64()),
    pa.field("query_key", pa.string()),
    *(
        pa.field(name, pa.float64() if name.startswith(("ndcg", "recall")) else pa.int64())
        for name in score_columns(CUTOFFS)
    ),
]
SCHEMA = pa.schema(SCORE_FIELDS)


def completed(
    execution_id: str,
    retriever_id: str,
    ndcg: float | None,
    *,
    recall: float | None = 0.5,
    node: str | None = None,
    logged: float | None = 0.5,
    latency: float = 10.0,
    stages: dict[str, float] | None = None,
    interacted: int = 1,
    clicked: int = 1,
    clicked_rank_sum: int = 1,
    purchased: int = 0,
    purchased_rank_sum: int = 0,
    position_delta_sum: int = 0,
    promoted: int = 0,
    demoted: int = 0,
    query: str | None = None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "execution_id": execution_id,
        "query_key": query or execution_id,
        "retriever_id": retriever_id,
        "status": "completed",
        "error_type": None,
        "taxonomy_node_id": node,
        "latency_ms": latency,
        "stage_latencies": None if stages is None else json.dumps(stages),
        "logged_ndcg_at_10": logged,
        "interacted_count": interacted,
        "clicked_count": clicked,
        "clicked_rank_sum": clicked_rank_sum,
        "purchased_count": purchased,
        "purchased_rank_sum": purchased_rank_sum,
        "position_delta_sum": position_delta_sum,
        "promoted": promoted,
        "demoted": demoted,
    }
    for k in CUTOFFS:
        row[f"ndcg_at_{k}"] = ndcg
        row[f"recall_at_{k}"] = recall
    return row


def failed(
    execution_id: str,
    retriever_id: str,
    error_type: str | None,
    *,
    node: str | None = None,
    logged: float | None = 0.5,
    latency: float | None = None,
    query: str | None = None,
) -> dict[str, Any]:
    row = dict.fromkeys(SCHEMA.names)
    row.update(
        execution_id=execution_id,
        query_key=query or execution_id,
        retriever_id=retriever_id,
        status="failed",
        error_type=error_type,
        taxonomy_node_id=node,
        latency_ms=latency,
        logged_ndcg_at_10=logged,
    )
    return row


def table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def assert_valid_records(results: list[dict[str, Any]], comparison: dict[str, Any]) -> None:
    for result in results:
        assert validation_errors("get_benchmark.openapi", "BenchmarkResult", result) == []
    assert validation_errors("get_benchmark.openapi", "BenchmarkComparison", comparison) == []
    assert_plain_json(results)
    assert_plain_json(comparison)
    json.dumps([results, comparison], allow_nan=False)


def assert_close(actual: Any, expected: Any, path: str = "") -> None:
    """Equal records, floats compared with a relative tolerance, at any nesting depth."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), (path, actual)
        for key, value in expected.items():
            assert_close(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (path, actual)
        for index, (got, value) in enumerate(zip(actual, expected, strict=True)):
            assert_close(got, value, f"{path}[{index}]")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-12, abs=1e-12), path
    else:
        assert actual == expected and type(actual) is type(expected), (path, actual)


def assert_plain_json(value: Any) -> None:
    """Only built-in JSON types: no numpy scalars sneak into a record."""
    if isinstance(value, dict):
        assert all(type(k) is str for k in value)
        for item in value.values():
            assert_plain_json(item)
    elif isinstance(value, list):
        for item in value:
            assert_plain_json(item)
    else:
        assert value is None or type(value) in (str, int, float, bool), (value, type(value))


def test_hand_computed_results() -> None:
    stages_1 = {"feature_search": 6.0, "limit": 1.0}
    rows = [
        completed(
            "e1", "base", 0.5, recall=0.4, node="a", logged=0.4, latency=10.0, stages=stages_1,
            interacted=2, clicked=2, clicked_rank_sum=5, purchased=1, purchased_rank_sum=3,
            position_delta_sum=-1, promoted=1,
        ),
        completed(
            "e2", "base", 0.8, recall=1.0, node="b", logged=0.8, latency=20.0,
            stages={"feature_search": 8.0}, clicked_rank_sum=1, position_delta_sum=2, demoted=1,
        ),
        completed(
            "e3", "base", None, recall=None, logged=None, latency=30.0,
            stages={"feature_search": 10.0, "limit": 2.0}, interacted=0, clicked=0,
            clicked_rank_sum=0,
        ),
        failed("e4", "base", "timeout", node="a", logged=0.3, latency=2000.0),
        completed(
            "e1", "cand", 0.3, node="a", logged=0.4, latency=15.0, interacted=2, clicked=2,
            clicked_rank_sum=9, position_delta_sum=4, demoted=2,
        ),
        failed("e2", "cand", None, node="b", logged=0.8),
        completed(
            "e3", "cand", None, recall=None, logged=None, latency=35.0, interacted=0, clicked=0,
            clicked_rank_sum=0,
        ),
        completed("e4", "cand", 0.9, recall=1.0, node="a", logged=0.3, latency=5.0),
    ]  # fmt: skip
    results, comparison = benchmark_results(table(rows), [BASE, CAND])
    assert_valid_records(results, comparison)
    base, cand = results
    assert (base["retriever_id"], base["retriever_name"], base["pipeline_hash"]) == (
        "base",
        "Production BM25",
        "hash-base",
    )
    assert_close(
        base["metrics"],
        {
            "ndcg_at_k": dict.fromkeys(("1", "5", "10", "20"), 0.65),
            "recall_at_k": dict.fromkeys(("1", "5", "10", "20"), 0.7),
            "mean_rank_clicked": (5 + 1) / (2 + 1),
            "mean_rank_purchased": 3.0,
            "avg_position_delta": (-1 + 2) / (2 + 1),
            "items_promoted": 1,
            "items_demoted": 1,
            "sessions_improved": 1,  # e1: 0.5 vs the logged 0.4
            "sessions_degraded": 0,
            "sessions_neutral": 1,  # e2: 0.8 vs the logged 0.8
        },
    )
    assert_close(
        base["latency"],
        {
            "p50_ms": 20.0,
            "p90_ms": 28.0,
            "p99_ms": 29.8,
            "mean_ms": 20.0,
            "stage_latencies": {"feature_search": 8.0, "limit": 1.5},
        },
    )
    assert (base["failed_sessions"], base["error_summary"]) == (1, {"timeout": 1})
    assert list(base["taxonomy_deltas"]) == ["a", "b"]
    assert base["taxonomy_deltas"]["a"]["ndcg_at_k"]["10"] == 0.5
    assert base["taxonomy_deltas"]["a"]["sessions_improved"] == 1
    assert base["taxonomy_deltas"]["b"]["mean_rank_purchased"] is None
    assert base["taxonomy_deltas"]["b"]["sessions_neutral"] == 1

    assert_close(
        cand["metrics"],
        {
            "ndcg_at_k": dict.fromkeys(("1", "5", "10", "20"), 0.6),
            "recall_at_k": dict.fromkeys(("1", "5", "10", "20"), 0.75),
            "mean_rank_clicked": (9 + 1) / (2 + 1),
            "mean_rank_purchased": None,
            "avg_position_delta": 4 / 3,
            "items_promoted": 0,
            "items_demoted": 2,
            "sessions_improved": 0,  # e4 has no baseline score to compare with
            "sessions_degraded": 1,  # e1: 0.3 vs the baseline's 0.5
            "sessions_neutral": 0,
        },
    )
    assert cand["latency"]["mean_ms"] == pytest.approx((15 + 35 + 5) / 3)
    assert cand["latency"]["stage_latencies"] == {}
    assert (cand["failed_sessions"], cand["error_summary"]) == (1, {"unknown": 1})
    assert cand["taxonomy_deltas"]["b"]["ndcg_at_k"]["10"] == 0.0

    (pair,) = comparison["comparisons"]
    # Completed-only means: e1 is the one session both scored.
    assert_close(
        {k: pair[k] for k in ("ndcg_delta", "recall_delta", "latency_delta_ms", "paired_sessions")},
        {
            "ndcg_delta": dict.fromkeys(("1", "5", "10", "20"), 0.3 - 0.5),
            "recall_delta": dict.fromkeys(("1", "5", "10", "20"), 0.5 - 0.4),
            "latency_delta_ms": ((15 - 10) + (35 - 30)) / 2,
            "paired_sessions": 1,
        },
    )
    # The primary estimate counts a failure as 0: e1 0.3-0.5, e2 0-0.8, e4 0.9-0 (e3 has no
    # interactions). Three queries are too few to test; every sign pattern of the three cluster
    # sums reaches |sum| = 0.1, so the exact sign-flip p is 1.
    assert pair["effect"]["delta"] == pytest.approx((-0.2 - 0.8 + 0.9) / 3)
    assert (pair["verdict"], pair["verdict_reasons"]) == (
        "not_testable",
        ["3 queries < minimum 10"],
    )
    assert (pair["p_value"], pair["confidence_interval"]) == (pytest.approx(1.0), None)
    assert pair["inference"]["method"] == "cluster_sign_flip"
    assert pair["failures"] == {"candidate_rate": 0.25, "baseline_rate": 0.25, "tolerance": 0.02}
    assert comparison["baseline_retriever_id"] == "base"
    assert comparison["recommendation"] == (
        "No verdict: no candidate could be tested against base (cand: 3 queries < minimum 10)."
    )


def effect_rows(
    base_ndcg: np.ndarray, candidates: dict[str, np.ndarray], nodes: list[str]
) -> list[dict[str, Any]]:
    rows = []
    for i, ndcg in enumerate(base_ndcg):
        rows.append(
            completed(
                f"e{i:03d}", "base", float(ndcg), node=nodes[i], logged=0.4, latency=10.0 + i % 3
            )
        )
    for name, values in candidates.items():
        for i, ndcg in enumerate(values):
            rows.append(
                completed(
                    f"e{i:03d}", name, float(ndcg), node=nodes[i], logged=0.4, latency=12.0 + i % 3
                )
            )
    return rows


def test_a_better_candidate_is_significant_and_recommended() -> None:
    rng = np.random.default_rng(11)
    base = rng.uniform(0.2, 0.7, 40)
    cand = base + 0.05 + rng.normal(0, 0.01, 40)
    nodes = ["shoes"] * 20 + ["hats"] * 20
    results, comparison = benchmark_results(
        table(effect_rows(base, {"cand": cand}, nodes)), [BASE, CAND]
    )
    assert_valid_records(results, comparison)
    expected = scipy.stats.ttest_rel(cand, base)
    interval = expected.confidence_interval()
    (pair,) = comparison["comparisons"]
    assert pair["ndcg_delta"]["10"] == pytest.approx(np.mean(cand - base))
    # One session per query: the clustered standard error and df are the paired t-test's, and the
    # bootstrap-t agrees with it (both far below 0.001 here; its interval within a few percent).
    assert pair["inference"]["degrees_of_freedom"] == pytest.approx(39)
    t_se = (interval.high - interval.low) / (2 * scipy.stats.t.ppf(0.975, 39))
    assert pair["inference"]["standard_error"] == pytest.approx(t_se)
    assert pair["p_value"] < 0.001 and expected.pvalue < 0.001
    assert pair["confidence_interval"] == pytest.approx([interval.low, interval.high], rel=0.05)
    assert (pair["verdict"], pair["effect"]["design_effect"]) == ("better", pytest.approx(1.0))
    assert pair["effect"]["standardized"] == pytest.approx(
        np.mean(cand - base) / np.std(cand - base, ddof=1)
    )
    assert pair["effect"]["relative_change"] == pytest.approx(np.mean(cand - base) / np.mean(base))
    assert pair["latency_delta_ms"] == pytest.approx(2.0)
    assert (pair["taxonomy_wins"], pair["taxonomy_losses"]) == (["hats", "shoes"], [])
    delta = cand - base
    assert results[1]["metrics"]["sessions_improved"] == int((delta > 0.01).sum())
    assert results[1]["metrics"]["sessions_degraded"] == int((delta < -0.01).sum())
    assert results[0]["metrics"]["sessions_improved"] == int((base - 0.4 > 0.01).sum())
    assert results[0]["metrics"]["sessions_degraded"] == int((base - 0.4 < -0.01).sum())
    low, high = pair["confidence_interval"]
    assert comparison["recommendation"] == (
        f"Promote cand: NDCG@10 +{np.mean(delta):.4f} (95% CI [{low:.4f}, {high:.4f}], p < 0.001,"
        " 40 queries, n = 40 sessions), latency +2.0 ms per query."
    )


def test_an_identical_candidate_is_neutral_everywhere() -> None:
    base = np.random.default_rng(12).uniform(0.2, 0.7, 40)
    nodes = ["shoes"] * 20 + ["hats"] * 20
    results, comparison = benchmark_results(
        table(effect_rows(base, {"cand": base.copy()}, nodes)), [BASE, CAND]
    )
    assert_valid_records(results, comparison)
    (pair,) = comparison["comparisons"]
    assert pair["p_value"] == 1.0
    assert pair["confidence_interval"] == [0.0, 0.0]
    assert pair["ndcg_delta"] == dict.fromkeys(("1", "5", "10", "20"), 0.0)
    assert (pair["taxonomy_wins"], pair["taxonomy_losses"]) == ([], [])
    metrics = results[1]["metrics"]
    assert (metrics["sessions_improved"], metrics["sessions_degraded"]) == (0, 0)
    assert metrics["sessions_neutral"] == 40
    assert (pair["verdict"], pair["verdict_reasons"]) == (
        "no_detectable_difference",
        ["identical NDCG@10 on every session"],
    )
    assert comparison["recommendation"] == (
        "Keep the baseline base: no candidate is better: cand no detectable difference (identical"
        " on every session)."
    )


def test_a_candidate_that_always_fails_still_gets_defined_records() -> None:
    base = np.random.default_rng(13).uniform(0.2, 0.7, 40)
    nodes = ["shoes"] * 20 + ["hats"] * 20
    rows = effect_rows(base, {}, nodes)
    errors = ["timeout"] * 30 + ["http_5xx"] * 8 + [None] * 2
    rows += [
        failed(f"e{i:03d}", "cand", error, node=nodes[i], logged=0.4)
        for i, error in enumerate(errors)
    ]
    results, comparison = benchmark_results(table(rows), [BASE, CAND])
    assert_valid_records(results, comparison)
    cand = results[1]
    zeros = dict.fromkeys(("1", "5", "10", "20"), 0.0)
    empty_metrics = {
        "ndcg_at_k": zeros,
        "recall_at_k": zeros,
        "mean_rank_clicked": 0.0,
        "mean_rank_purchased": None,
        "avg_position_delta": 0.0,
        "items_promoted": 0,
        "items_demoted": 0,
        "sessions_improved": 0,
        "sessions_degraded": 0,
        "sessions_neutral": 0,
    }
    assert cand["metrics"] == empty_metrics
    assert cand["taxonomy_deltas"] == {"hats": empty_metrics, "shoes": empty_metrics}
    assert cand["latency"] == {
        "p50_ms": 0.0,
        "p90_ms": 0.0,
        "p99_ms": 0.0,
        "mean_ms": 0.0,
        "stage_latencies": {},
    }
    assert cand["failed_sessions"] == 40
    assert cand["error_summary"] == {"http_5xx": 8, "timeout": 30, "unknown": 2}
    (pair,) = comparison["comparisons"]
    assert (pair["p_value"], pair["confidence_interval"], pair["latency_delta_ms"]) == (
        None,
        None,
        0.0,
    )
    assert pair["ndcg_delta"] == zeros
    assert (pair["verdict"], pair["verdict_reasons"]) == (
        "not_testable",
        ["the candidate scored no session (40 of 40 failed: http_5xx 8, timeout 30, unknown 2)"],
    )
    assert comparison["recommendation"].startswith("No verdict: no candidate could be tested")


def test_the_largest_significant_gain_is_promoted_after_holm() -> None:
    rng = np.random.default_rng(14)
    base = rng.uniform(0.2, 0.7, 60)
    candidates = {
        "small": base + 0.02 + rng.normal(0, 0.01, 60),
        "big": base + 0.08 + rng.normal(0, 0.01, 60),
        "noisy": base + 0.1 + rng.normal(0, 1.5, 60),
    }
    pipelines = [BASE, *(PipelineInfo(name, name.title(), f"hash-{name}") for name in candidates)]
    results, comparison = benchmark_results(
        table(effect_rows(base, candidates, ["n"] * 60)), pipelines
    )
    assert_valid_records(results, comparison)
    noisy = comparison["comparisons"][2]
    assert noisy["ndcg_delta"]["10"] > comparison["comparisons"][1]["ndcg_delta"]["10"]
    assert noisy["p_value"] > 0.05
    big = candidates["big"] - base
    low, high = comparison["comparisons"][1]["confidence_interval"]
    interval = scipy.stats.ttest_rel(candidates["big"], base).confidence_interval()
    assert [low, high] == pytest.approx([interval.low, interval.high], rel=0.05)
    assert comparison["recommendation"] == (
        f"Promote big: NDCG@10 +{big.mean():.4f} (95% CI [{low:.4f}, {high:.4f}],"
        " p < 0.001, 60 queries, n = 60 sessions), latency +2.0 ms per query."
    )


def test_taxonomy_wins_and_losses_need_enough_sessions_and_holm() -> None:
    rng = np.random.default_rng(15)
    base = rng.uniform(0.3, 0.6, 48)
    shift = np.array([0.1] * 20 + [-0.1] * 20 + [0.3] * 8)
    cand = base + shift + rng.normal(0, 0.02, 48)
    nodes = ["shoes"] * 20 + ["hats"] * 20 + ["socks"] * 8
    _, comparison = benchmark_results(table(effect_rows(base, {"cand": cand}, nodes)), [BASE, CAND])
    (pair,) = comparison["comparisons"]
    assert (pair["taxonomy_wins"], pair["taxonomy_losses"]) == (["shoes"], ["hats"])
    assert pair["taxonomy_untested"] == {"socks": 8}
    # 8 queries: the smallest two-sided p of sign flips is 2 / 2^8, enough after Holm over 3 nodes.
    lenient_settings = InferenceSettings(min_node_sessions=8, min_clusters=8)
    _, lenient = benchmark_results(
        table(effect_rows(base, {"cand": cand}, nodes)), [BASE, CAND], settings=lenient_settings
    )
    assert lenient["comparisons"][0]["taxonomy_wins"] == ["shoes", "socks"]


def test_end_to_end_from_replayed_rankings() -> None:
    """score_sessions feeds benchmark_results: a candidate that ranks interacted documents first wins."""
    rng = np.random.default_rng(16)
    catalog = [f"p{i:03d}" for i in range(200)]
    weights = effective_weights(None)
    counted = counted_types(None, weights)
    sessions = 30
    logged, rows = [], []
    for s in range(sessions):
        served = list(rng.choice(catalog, 20, replace=False))
        logged.append(served)
        for position in sorted(rng.choice(20, 2, replace=False)):
            rows.append(
                (s, served[position], ["click", "purchase"][int(rng.integers(0, 2))], int(position))
            )
    interactions = pa.table(
        {
            "session_index": [r[0] for r in rows],
            "document_id": [r[1] for r in rows],
            "interaction_type": [r[2] for r in rows],
            "position": [r[3] for r in rows],
        }
    )
    gain = [{r[1]: weights[r[2]] for r in rows if r[0] == s} for s in range(sessions)]
    better = [
        sorted(ranking, key=lambda d, s=s: -gain[s].get(d, 0.0)) for s, ranking in enumerate(logged)
    ]
    shuffled = [list(rng.permutation(ranking)) for ranking in logged]
    logged_ndcg = score_sessions(logged, interactions, weights, counted).column("ndcg_at_10")
    parts = []
    for retriever_id, rankings in (("base", shuffled), ("better", better)):
        scored = score_sessions(rankings, interactions, weights, counted)
        columns = {
            "execution_id": [f"x{s}" for s in range(sessions)],
            "retriever_id": [retriever_id] * sessions,
            "status": ["completed"] * sessions,
            "error_type": pa.nulls(sessions, pa.string()),
            "taxonomy_node_id": pa.nulls(sessions, pa.string()),
            "latency_ms": rng.uniform(5, 9, sessions),
            "stage_latencies": [json.dumps({"feature_search": 3.5})] * sessions,
            "logged_ndcg_at_10": logged_ndcg,
            "query_key": [f"q{s}" for s in range(sessions)],
        }
        columns.update({name: scored.column(name) for name in scored.column_names})
        parts.append(pa.table(columns))
    pipelines = [BASE, PipelineInfo("better", "Better", "hash-better")]
    results, comparison = benchmark_results(pa.concat_tables(parts), pipelines)
    assert_valid_records(results, comparison)
    assert results[1]["metrics"]["ndcg_at_k"]["10"] == 1.0
    assert results[1]["metrics"]["recall_at_k"]["5"] == 1.0
    assert results[1]["taxonomy_deltas"] == {}
    assert results[1]["latency"]["stage_latencies"] == {"feature_search": 3.5}
    assert comparison["recommendation"].startswith("Promote better: NDCG@10 +")


def test_stage_latencies_parse_pretty_json_and_reject_bad_rows() -> None:
    pretty = completed("e1", "base", 0.5, stages=None)
    pretty["stage_latencies"] = '{\n  "feature_search": 4,\n  "rerank": 2.5\n}'
    plain = completed("e2", "base", 0.5, stages={"feature_search": 6})
    results, _ = benchmark_results(table([pretty, plain]), [BASE])
    assert results[0]["latency"]["stage_latencies"] == {"feature_search": 5.0, "rerank": 2.5}
    for text, message in (
        ("{not json", r"stage_latencies: row 1 is not JSON"),
        ("[1, 2]", r"stage_latencies: row 1 is not a JSON object"),
        ('{"rerank": "slow"}', r"stage_latencies: .*'rerank'"),
    ):
        broken = completed("e2", "base", 0.5)
        broken["stage_latencies"] = text
        with pytest.raises(ValueError, match=message):
            benchmark_results(table([pretty, broken]), [BASE])


def test_a_baseline_alone_has_no_comparisons() -> None:
    results, comparison = benchmark_results(table([completed("e1", "base", 0.5)]), [BASE])
    assert_valid_records(results, comparison)
    assert comparison["estimator"]["used"] == "logged_order"
    assert {k: v for k, v in comparison.items() if k != "estimator"} == {
        "baseline_retriever_id": "base",
        "comparisons": [],
        "recommendation": "Keep the baseline base: there is no candidate to compare.",
    }


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([completed("e1", "other", 0.5)], r"retriever_id: row 0 names 'other', not one of"),
        (
            [completed("e1", "base", 0.5), completed("e1", "base", 0.6)],
            "execution 'e1' has more than one row for pipeline 'base'",
        ),
        ([{**completed("e1", "base", 0.5), "status": "done"}], r"status: row 0 is 'done'"),
        ([completed("e1", "base", 0.5), completed("e1", "cand", 0.5, logged=0.7)], "logged_ndcg_at_10: rows of execution 'e1' disagree"),
        ([completed("e1", "base", 0.5, node="a"), completed("e1", "cand", 0.5, node="b")], "taxonomy_node_id: rows of execution 'e1' disagree"),
        ([completed("e1", "base", 0.5, logged=None)], "logged_ndcg_at_10: missing for execution 'e1'"),
        ([{**completed("e1", "base", 0.5), "latency_ms": None}], "latency_ms: row 0 is missing or negative"),
        ([completed("e1", "base", None)], "ndcg_at_1: row 0 is missing on a completed row with interacted"),
        ([{**completed("e1", "base", 0.5), "promoted": None}], "promoted: row 0 is missing"),
    ],
)  # fmt: skip
def test_bad_scores_name_the_row_and_column(rows: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        benchmark_results(table(rows), [BASE, CAND])


def test_bad_parameters() -> None:
    scores = table([completed("e1", "base", 0.5)])
    with pytest.raises(ValueError, match="missing columns"):
        benchmark_results(scores.drop_columns(["latency_ms"]), [BASE])
    with pytest.raises(ValueError, match="retriever ids repeat"):
        benchmark_results(scores, [BASE, BASE])
    with pytest.raises(ValueError, match="lacks 10"):
        benchmark_results(scores, [BASE], cutoffs=(1, 5))
    with pytest.raises(ValueError, match="query_key"):
        benchmark_results(scores.drop_columns(["query_key"]), [BASE])
    assert benchmark_results(
        scores.drop_columns(["query_key"]), [BASE], settings=InferenceSettings(unit="session")
    )
    with pytest.raises(ValueError, match="min_node_sessions"):
        InferenceSettings(min_node_sessions=1)
    with pytest.raises(ValueError, match="alpha"):
        InferenceSettings(alpha=0.0)
    with pytest.raises(ValueError, match="unit"):
        InferenceSettings(unit="user")
