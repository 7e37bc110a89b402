"""The verdict table holds exactly the numbers of the demo's benchmark and evaluation records."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from eval_pipelines.core.benchmarks.submit import benchmark_store
from eval_pipelines.core.evaluations.submit import evaluation_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.reports.summary import benchmark_summary, evaluation_summary
from eval_pipelines.core.reports.verdict_table import (
    EVALUATION_COLUMNS,
    VERDICT_COLUMNS,
    evaluation_rows,
    verdict_rows,
)
from eval_pipelines_tests.cli.conftest import CliResult

DEMO_BENCHMARK = "demo: production vs candidates"
PYTHON_TYPES = {"str": str, "int": int, "float": float, "bool": bool}


def _records(data_dir: Path, kind: str) -> list[dict[str, Any]]:
    paths = DataPaths(data_dir)
    store = benchmark_store(paths) if kind == "benchmarks" else evaluation_store(paths)
    return [store.get(record_id) for record_id in store.ids()]


@pytest.fixture
def demo_benchmark(small_demo: tuple[Path, CliResult]) -> dict[str, Any]:
    # Other tests add benchmarks of the demo's name to this shared world: take the demo's own.
    return min(
        (
            r
            for r in _records(small_demo[0], "benchmarks")
            if r["status"] == "completed" and r["benchmark_name"] == DEMO_BENCHMARK
        ),
        key=lambda r: r["created_at"],
    )


def _assert_typed(rows: list[dict[str, Any]], columns: tuple) -> None:
    for row in rows:
        assert list(row) == [column.name for column in columns]
        for column in columns:
            value = row[column.name]
            assert value is None or type(value) is PYTHON_TYPES[column.type], (column, value)


def test_one_row_per_candidate_metric_and_k_with_the_records_numbers(
    demo_benchmark: dict[str, Any],
) -> None:
    record = demo_benchmark
    rows = verdict_rows(record)
    _assert_typed(rows, VERDICT_COLUMNS)
    results = {r["retriever_id"]: r for r in record["results"]}
    baseline = results[record["baseline_retriever_id"]]["metrics"]
    comparisons = record["comparison"]["comparisons"]
    ks = sorted(int(k) for k in comparisons[0]["ndcg_delta"])
    assert [(r["candidate_retriever_id"], r["metric"], r["k"]) for r in rows] == [
        (c["candidate_retriever_id"], metric, k)
        for c in comparisons
        for metric in ("ndcg", "recall")
        for k in ks
    ]
    for item in comparisons:
        candidate = item["candidate_retriever_id"]
        own = [r for r in rows if r["candidate_retriever_id"] == candidate]
        for row in own:
            key = f"{row['metric']}_at_k"
            assert row["baseline_value"] == baseline[key][str(row["k"])]
            assert row["candidate_value"] == results[candidate]["metrics"][key][str(row["k"])]
            assert row["verdict"] == item["verdict"]
            assert row["reasons"] == "; ".join(item["verdict_reasons"])
            assert row["failure_rate"] == item["failures"]["candidate_rate"]
            assert row["latency_p50_ms"] == results[candidate]["latency"]["p50_ms"]
        (tested,) = [r for r in own if r["tested"]]
        assert (tested["metric"], tested["k"]) == ("ndcg", 10)
        assert tested["delta"] == item["effect"]["delta"]
        assert [tested["ci_low"], tested["ci_high"]] == (item["confidence_interval"] or [None] * 2)
        assert tested["p_value"] == item["p_value"]
        assert tested["p_value_holm"] == item["p_value_adjusted"]
        assert tested["effect_size"] == item["effect"]["standardized"]
        assert tested["mde"] == item["effect"]["minimum_detectable_effect"]
        for row in own:
            if not row["tested"]:
                assert row["delta"] == item[f"{row['metric']}_delta"][str(row["k"])]
                assert row["p_value"] is None and row["ci_low"] is None and row["mde"] is None
    verdicts = {r["verdict"] for r in rows}
    assert "better" in verdicts and "not_testable" in verdicts, verdicts


def test_a_record_without_a_comparison_has_no_rows_and_an_older_one_shows_what_it_lacks(
    demo_benchmark: dict[str, Any],
) -> None:
    pending = {**demo_benchmark, "status": "pending", "results": None, "comparison": None}
    assert verdict_rows(pending) == []
    older = copy.deepcopy(demo_benchmark)
    for item in older["comparison"]["comparisons"]:
        for field in ("p_value_adjusted", "effect", "verdict", "verdict_reasons", "failures"):
            del item[field]
    rows = verdict_rows(older)
    _assert_typed(rows, VERDICT_COLUMNS)
    tested = [r for r in rows if r["tested"]]
    assert tested and all(r["p_value_holm"] is None and r["mde"] is None for r in tested)
    assert all(r["p_value"] is not None for r in tested if r["ci_low"] is not None)
    assert all(r["verdict"] is None and r["reasons"] == "" for r in rows)


def test_evaluation_rows_are_the_records_metrics_by_k(
    small_demo: tuple[Path, CliResult],
) -> None:
    records = [r for r in _records(small_demo[0], "evaluations") if r["status"] == "completed"]
    assert records
    for record in records:
        rows = evaluation_rows(record)
        _assert_typed(rows, EVALUATION_COLUMNS)
        assert {(r["measure"], str(r["k"])): r["value"] for r in rows} == {
            (measure, k): value
            for k, values in record["metrics_by_k"].items()
            for measure, value in values.items()
        }
        assert {r["retriever_id"] for r in rows} == {record["retriever_id"]}
    assert evaluation_rows({"status": "pending", "metrics_by_k": None}) == []


def test_summaries_of_records_without_results_say_their_status_and_error(
    demo_benchmark: dict[str, Any],
) -> None:
    failed = {
        **demo_benchmark,
        "status": "failed",
        "results": None,
        "comparison": None,
        "error_message": "replay: demo_http: connection refused",
    }
    text = benchmark_summary(failed)
    lines = text.splitlines()
    assert lines[0] == f"Benchmark {DEMO_BENCHMARK!r} ({failed['benchmark_id']}): failed"
    assert "error: replay: demo_http: connection refused" in lines
    assert "candidate " not in text and "Reasons" not in text
    completed = benchmark_summary(demo_benchmark)
    assert demo_benchmark["comparison"]["recommendation"] in completed.splitlines()
    pending = {
        "evaluation_id": "eval_x",
        "retriever_id": "demo_prod",
        "dataset_name": "demo-judgments",
        "status": "pending",
        "created_at": "2026-12-05T00:00:00Z",
        "metrics_by_k": None,
        "warnings": [],
    }
    assert evaluation_summary(pending).splitlines() == [
        "Evaluation 'demo_prod on demo-judgments' (eval_x): pending",
        "created 2026-12-05T00:00:00Z, completed -",
    ]
