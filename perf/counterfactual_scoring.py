"""Benchmark: counterfactual session scoring of 10,000 sessions x 4 pipelines, next to today's.

Contenders, on the session_scoring benchmark's inputs (same sessions, rankings, interactions):
- session_scoring's measured step (score_sessions for the logged ranking and every pipeline, the
  scores table, benchmark_results): today's session scoring, the reference of the issue's target;
- the benchmark's own score_benchmark + benchmark_results under the logged-order estimator;
- the same under the counterfactual estimator (in-session inverse propensity weighting, query-level
  evidence for 500 queries, coverage, the optimistic bound, the logged-order columns beside them).
Target: counterfactual within 2x of session_scoring. The check: each pipeline's mean corrected NDCG@10
is the ratio of sums (sum of DCG over sum of ideal DCG) recomputed from the per-session columns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.benchmarks.comparison import benchmark_results
from eval_pipelines.core.benchmarks.request import BenchmarkRequest
from eval_pipelines.core.benchmarks.scoring import score_benchmark
from perf.harness import BenchmarkResult, CorrectnessError, Target, run_contenders
from perf.session_scoring import (
    COUNTED,
    DEPTH,
    PIPELINES,
    SESSIONS,
    SessionInputs,
    make_inputs,
    score_and_compare,
)

NAME = "counterfactual_scoring"
SERVED = 24
EXAMINATION = 0.95 * 0.8 ** (np.arange(SERVED) // 4)
TARGET_RATIO = 2.0


def _tables(inputs: SessionInputs) -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
    """The sessions, interactions, replays and query-document evidence score_benchmark reads."""
    n = len(inputs.execution_ids)
    sessions = pa.table(
        {
            "execution_id": inputs.execution_ids,
            "query_text": inputs.query_key,
            "query_input": pa.array(
                [json.dumps({"text": q}) for q in inputs.query_key.to_pylist()]
            ),
            "logged_documents": inputs.logged,
            "taxonomy_node_id": inputs.taxonomy_node_id,
        }
    )
    acted = inputs.interactions
    interactions = pa.table(
        {
            "execution_id": inputs.execution_ids.take(acted.column("session_index")),
            "document_id": acted.column("document_id"),
            "interaction_type": acted.column("interaction_type"),
            "position": pc.cast(acted.column("position"), pa.int32()),
        }
    )
    replays = pa.concat_tables(
        pa.table(
            {
                "benchmark_id": pa.array(["perf"] * n),
                "execution_id": inputs.execution_ids,
                "retriever_id": pa.array([pipeline.retriever_id] * n),
                "ranking": rankings,
                "status": pa.array(["completed"] * n),
                "error_type": pa.nulls(n, pa.string()),
                "latency_ms": pa.array(latency),
                "stage_latencies": pa.nulls(n, pa.map_(pa.string(), pa.float64())),
            }
        )
        for pipeline, rankings, latency in zip(
            inputs.pipelines, inputs.rankings, inputs.latency_ms, strict=True
        )
    )
    served = pc.list_slice(inputs.logged, 0, SERVED)
    parent = pc.list_parent_indices(served).to_numpy()
    position = np.arange(len(parent)) - np.repeat(np.arange(n) * SERVED, SERVED)
    shown = pa.table(
        {
            "query_key": inputs.query_key.take(pa.array(parent)),
            "document_id": pc.list_flatten(served),
            "exposure": pa.array(EXAMINATION[position] / EXAMINATION[0]),
        }
    )
    evidence = shown.group_by(["query_key", "document_id"]).aggregate([("exposure", "sum")])
    evidence = evidence.rename_columns(["query_key", "document_id", "exposure"])
    evidence = evidence.append_column("gain_sum", pc.multiply(evidence.column("exposure"), 0.1))
    evidence = evidence.append_column(
        "interacted_sessions",
        pc.cast(pc.floor(pc.multiply(evidence.column("exposure"), 0.1)), pa.int64()),
    )
    return sessions, interactions, replays, evidence


def click_model_facts() -> dict[str, Any]:
    relative = EXAMINATION / EXAMINATION[0]
    return {
        "model_id": "pbm-perf",
        "available": True,
        "reason": None,
        "propensities": [
            {"position": p + 1, "propensity": float(v)} for p, v in enumerate(relative)
        ],
        "fit": {"depth": SERVED},
    }


def corrected(
    inputs: SessionInputs, tables: tuple[pa.Table, ...], estimator: str = "counterfactual"
) -> tuple[pa.Table, list, dict]:
    """The benchmark's scoring step as its asset runs it, under one estimator."""
    sessions, interactions, replays, evidence = tables
    request = BenchmarkRequest.model_validate(
        {
            "benchmark_name": "perf",
            "baseline_retriever_id": inputs.pipelines[0].retriever_id,
            "candidate_retriever_ids": [p.retriever_id for p in inputs.pipelines[1:]],
            "estimator": estimator,
            "replay_depth": DEPTH,
            "session_filter": {"interaction_types": sorted(COUNTED)},
        }
    )
    choice = request.estimator_choice(click_model_facts())
    scores = score_benchmark(request, sessions, interactions, replays, choice, evidence)
    results, comparison = benchmark_results(
        scores, inputs.pipelines, request.epsilon, request.inference_settings, choice=choice
    )
    return scores, results, comparison


def check(output: tuple[pa.Table, list, dict]) -> dict[str, Any]:
    scores, results, comparison = output
    if comparison["estimator"]["used"] != "counterfactual":
        raise CorrectnessError(f"estimator used: {comparison['estimator']['used']}")
    for result in results:
        rows = scores.filter(pc.equal(scores.column("retriever_id"), result["retriever_id"]))
        values = rows.column("cf_ndcg_at_10").to_numpy(zero_copy_only=False)
        mean = float(np.nanmean(values))
        if abs(mean - result["metrics"]["ndcg_at_k"]["10"]) > 1e-9:
            raise CorrectnessError(f"{result['retriever_id']}: mean cf NDCG@10 {mean} differs")
    return {"pipelines": len(results), "scores_rows": scores.num_rows}


def run(scale: str, repeat: int, workdir: Path, seed: int = 2) -> BenchmarkResult:
    session_count = SESSIONS[scale]
    inputs = make_inputs(session_count, seed)
    tables = _tables(inputs)
    results, outputs = run_contenders(
        [
            ("session_scoring (before this issue)", lambda: score_and_compare(inputs)),
            ("score_benchmark, logged_order", lambda: corrected(inputs, tables, "logged_order")),
            ("score_benchmark, counterfactual", lambda: corrected(inputs, tables)),
        ],
        repeat,
        items=session_count * PIPELINES,
    )
    checks = check(outputs["score_benchmark, counterfactual"])
    ratio = results[2].median_seconds / results[0].median_seconds
    return BenchmarkResult(
        name=NAME,
        parameters={
            "sessions": session_count,
            "pipelines": PIPELINES,
            "depth": DEPTH,
            "seed": seed,
        },
        contenders=results,
        checks=checks,
        targets=[Target("counterfactual / session_scoring time", ratio, TARGET_RATIO)],
        notes=[
            "score_benchmark is the asset's whole scoring step: logged-order columns, replay"
            " agreement, coverage and the bound; with counterfactual also the corrected metrics;"
            " then benchmark_results (with counterfactual, both estimators' results)"
        ],
    )
