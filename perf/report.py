"""Benchmark: the HTML report of a benchmark of 10,000 sessions x baseline + 4 candidates.

The partition is made by the real code on the session_scoring benchmark's inputs: score_benchmark
and benchmark_results under the counterfactual estimator (as counterfactual_scoring measures them),
the tables written where the benchmark assets write them and the record completed by the record
machinery. One candidate is a copy of the baseline, as a real panel often holds. The measured step
is `build_report` + its atomic write, what `eval-pipelines report` and the report asset run.
Target: under 5 s; the page's size is reported, with its plots.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from eval_pipelines.core.benchmarks.comparison import PipelineInfo
from eval_pipelines.core.benchmarks.request import BenchmarkRequest
from eval_pipelines.core.benchmarks.submit import BENCHMARK_RECORDS, accept_request
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.records import with_record_id
from eval_pipelines.core.reports.html.build import Report, build_report, write_report
from eval_pipelines.core.table_names import (
    CLICK_MODEL_FACT,
    REPLAYS,
    SESSION_EVIDENCE,
    SESSION_INTERACTIONS,
    SESSION_SCORES,
    SESSIONS,
)
from perf.counterfactual_scoring import _tables, click_model_facts, corrected
from perf.harness import BenchmarkResult, CorrectnessError, Target, run_contenders
from perf.session_scoring import SESSIONS as SESSION_COUNTS
from perf.session_scoring import SessionInputs, make_inputs

NAME = "report"
BENCHMARK_ID = "bench_perf_report"
TARGET_SECONDS = 5.0
TARGET_MIB = 5.0
EXPECTED_PLOTS = {
    "forest",
    "delta-distribution",
    "taxonomy-deltas",
    "latency",
    "coverage",
    "position-bias",
}


def with_baseline_copy(inputs: SessionInputs) -> SessionInputs:
    """A fifth pipeline ranking exactly as the baseline does (its latency its own)."""
    rng = np.random.default_rng(len(inputs.pipelines))
    index = len(inputs.pipelines)
    return dataclasses.replace(
        inputs,
        rankings=[*inputs.rankings, inputs.rankings[0]],
        latency_ms=[*inputs.latency_ms, rng.gamma(4.0, 2.0, len(inputs.execution_ids))],
        pipelines=[
            *inputs.pipelines,
            PipelineInfo(f"pipeline_{index}", "Baseline copy", inputs.pipelines[0].pipeline_hash),
        ],
    )


def write_partition(paths: DataPaths, inputs: SessionInputs) -> None:
    """The partition as the benchmark assets leave it: tables, facts and the completed record."""
    tables = _tables(inputs)
    scores, results, comparison = corrected(inputs, tables)
    sessions, interactions, replays, evidence = tables
    request = BenchmarkRequest.model_validate(
        {
            "benchmark_name": "perf: report",
            "baseline_retriever_id": inputs.pipelines[0].retriever_id,
            "candidate_retriever_ids": [p.retriever_id for p in inputs.pipelines[1:]],
            "session_count": len(inputs.execution_ids),
        }
    )
    accept_request(paths, request, BENCHMARK_ID)
    store = BENCHMARK_RECORDS.store(paths)
    sample = {"sampled": sessions.num_rows, "matched": sessions.num_rows, "warnings": []}
    store.write_table(
        BENCHMARK_ID,
        SESSIONS,
        with_record_id(sessions, "benchmark_id", BENCHMARK_ID),
        facts={**sample, CLICK_MODEL_FACT: click_model_facts()},
    )
    store.write_table(BENCHMARK_ID, SESSION_INTERACTIONS, interactions)
    store.write_table(BENCHMARK_ID, SESSION_EVIDENCE, evidence)
    store.write_table(BENCHMARK_ID, REPLAYS, replays)
    store.write_table(BENCHMARK_ID, SESSION_SCORES, scores)
    outcome = {
        "results": results,
        "comparison": comparison,
        "sessions_sampled": sessions.num_rows,
        "sessions_matched": sessions.num_rows,
        "warnings": [],
    }
    BENCHMARK_RECORDS.completed(paths, BENCHMARK_ID, outcome, "perf-run")


def check(report: Report, written: Path, session_count: int) -> dict[str, Any]:
    if set(report.plots) != EXPECTED_PLOTS:
        raise CorrectnessError(f"plots {report.plots}, expected {sorted(EXPECTED_PLOTS)}")
    if written.read_text(encoding="utf-8") != report.html:
        raise CorrectnessError(f"{written} differs from the built page")
    pairs = report.html.count('class="query-pair"')
    if pairs == 0:
        raise CorrectnessError("the drill-down shows no query")
    size = len(report.html.encode("utf-8"))
    return {
        "sessions": session_count,
        "pipelines": 5,
        "plots": report.plots,
        "html_bytes": size,
        "html_mib": round(size / 2**20, 3),
        "drill_down_pairs": pairs,
    }


def run(scale: str, repeat: int, workdir: Path, seed: int = 2) -> BenchmarkResult:
    session_count = SESSION_COUNTS[scale]
    paths = DataPaths(workdir / "data")
    inputs = with_baseline_copy(make_inputs(session_count, seed))
    write_partition(paths, inputs)

    def build_and_write() -> tuple[Report, Path]:
        report = build_report(paths, BENCHMARK_ID)
        return report, write_report(report)

    results, outputs = run_contenders([("build_report + write", build_and_write)], repeat)
    checks = check(*outputs["build_report + write"], session_count)
    return BenchmarkResult(
        name=NAME,
        parameters={"sessions": session_count, "pipelines": 5, "seed": seed},
        contenders=results,
        checks=checks,
        targets=[
            Target("report build seconds", results[0].median_seconds, TARGET_SECONDS),
            Target("report size MiB", float(checks["html_mib"]), TARGET_MIB),
        ],
        notes=[
            "the first (warm-up) build also pays matplotlib's font cache and imports;"
            " the timed builds are what a run or the CLI pays after its imports",
        ],
    )
