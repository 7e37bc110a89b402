"""The panel of known-truth candidates benchmarked again and again, under each estimator: how often
each verdict comes out for each truth, next to the true NDCG@10 delta.

Each repetition samples a fresh set of logged sessions (its own seed) served by demo_prod, and scores
the panel's rankings through the benchmark's own scoring and comparison (no replay: the rankings are
known), so what is measured is the estimator and the verdict rule, as a user's benchmark runs them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from eval_pipelines.core.benchmarks.comparison import PipelineInfo, benchmark_results
from eval_pipelines.core.benchmarks.estimators import COUNTERFACTUAL, LOGGED_ORDER
from eval_pipelines.core.benchmarks.request import BenchmarkRequest
from eval_pipelines.core.benchmarks.sampling import SessionFilter, SessionSample, sample_sessions
from eval_pipelines.core.benchmarks.scoring import score_benchmark
from eval_pipelines.core.click_model import load_or_fit, query_document_evidence
from eval_pipelines.core.demo.panel import (
    PanelCandidate,
    build_panel,
    engine_rankings,
    prod_rankings,
    query_truths,
    true_ndcg_at_10,
)
from eval_pipelines.core.demo.retrievers import BETTER, PROD, WORSE
from eval_pipelines.core.paths import DataPaths

ESTIMATORS: tuple[str, ...] = (COUNTERFACTUAL, LOGGED_ORDER)


def _replays(sessions: pa.Table, pipelines: Sequence[tuple[str, dict[str, list[str]]]]) -> pa.Table:
    texts = sessions.column("query_text").to_pylist()
    execution_ids = sessions.column("execution_id")
    n = len(texts)
    parts = []
    for retriever_id, rankings in pipelines:
        parts.append(
            pa.table(
                {
                    "benchmark_id": pa.array(["panel"] * n),
                    "execution_id": execution_ids,
                    "retriever_id": pa.array([retriever_id] * n),
                    "ranking": pa.array([rankings[t] for t in texts], pa.list_(pa.string())),
                    "status": pa.array(["completed"] * n),
                    "error_type": pa.array([None] * n, pa.string()),
                    "latency_ms": pa.array(np.zeros(n)),
                    "stage_latencies": pa.array([None] * n, pa.map_(pa.string(), pa.float64())),
                }
            )
        )
    return pa.concat_tables(parts)


def run_panel(
    paths: DataPaths,
    repetitions: int,
    session_count: int,
    estimators: Sequence[str] = ESTIMATORS,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every candidate's verdict counts per estimator over `repetitions` benchmarks (seeds 0..r-1)."""
    model = load_or_fit(paths)
    request_of = {
        e: BenchmarkRequest.model_validate(
            {
                "benchmark_name": "panel",
                "baseline_retriever_id": PROD,
                "candidate_retriever_ids": ["placeholder"],
                "estimator": e,
            }
        )
        for e in estimators
    }
    some = next(iter(request_of.values()))
    sampling = SessionFilter(retriever_ids=(PROD,), counted_types=some.counted_types)
    samples = [sample_sessions(paths, sampling, session_count, seed) for seed in range(repetitions)]
    texts = sorted({t for s in samples for t in s.sessions.column("query_text").to_pylist()})
    evidence = query_document_evidence(
        paths, model, some.weights, some.counted_types, pa.array(texts), some.propensity_clip
    )
    prod = prod_rankings(paths, texts)
    truths = query_truths(paths, texts, evidence)
    engines = {name: engine_rankings(paths, name, texts) for name in (BETTER, WORSE)}
    panel = build_panel(prod, truths, engines)
    counts: dict[str, dict[str, Counter[str]]] = {
        c.name: {e: Counter() for e in estimators} for c in panel
    }
    deltas: dict[str, dict[str, list[float]]] = {c.name: {e: [] for e in estimators} for c in panel}
    coverage: dict[str, list[float]] = {c.name: [] for c in panel}
    truth_delta: dict[str, list[float]] = {c.name: [] for c in panel}
    for seed, sample in enumerate(samples):
        _truth_deltas(sample, panel, prod, truths, truth_delta)
        for estimator, request in request_of.items():
            comparisons = _benchmark(
                sample, panel, prod, request, seed, model.to_dict(timing=False), evidence
            )
            for candidate, item in zip(panel, comparisons, strict=True):
                counts[candidate.name][estimator][item["verdict"]] += 1
                deltas[candidate.name][estimator].append(item["effect"]["delta"])
                if estimator == estimators[0]:
                    coverage[candidate.name].append(
                        item["coverage"]["candidate"]["ever_shown_at_10"]
                    )
        if progress:
            progress(f"panel: benchmark {seed + 1}/{repetitions} done")
    return {
        "repetitions": repetitions,
        "sessions": session_count,
        "click_model": {k: v for k, v in model.to_dict().items() if k != "propensities"},
        "candidates": [
            {
                "name": c.name,
                "truth": c.truth,
                "true_ndcg_at_10_delta": float(np.mean(truth_delta[c.name])),
                "ever_shown_at_10": float(np.mean(coverage[c.name])),
                "estimators": {
                    e: {
                        "verdicts": dict(sorted(counts[c.name][e].items())),
                        "mean_delta": float(np.mean(deltas[c.name][e])),
                    }
                    for e in estimators
                },
            }
            for c in panel
        ],
    }


def _truth_deltas(
    sample: SessionSample,
    panel: Sequence[PanelCandidate],
    prod: dict[str, list[str]],
    truths: dict,
    into: dict[str, list[float]],
) -> None:
    texts = sample.sessions.column("query_text").to_pylist()
    base = np.array([true_ndcg_at_10(prod[t], truths[t]) for t in texts])
    for candidate in panel:
        own = np.array([true_ndcg_at_10(candidate.rankings[t], truths[t]) for t in texts])
        into[candidate.name].append(float((own - base).mean()))


def _benchmark(
    sample: SessionSample,
    panel: Sequence[PanelCandidate],
    prod: dict[str, list[str]],
    template: BenchmarkRequest,
    seed: int,
    click_model: dict[str, Any],
    evidence: pa.Table,
) -> list[dict[str, Any]]:
    names = [c.name for c in panel]
    request = template.model_copy(update={"candidate_retriever_ids": names, "seed": seed})
    replays = _replays(sample.sessions, [(PROD, prod), *((c.name, c.rankings) for c in panel)])
    choice = request.estimator_choice(click_model)
    interactions = sample.interactions
    scores = score_benchmark(request, sample.sessions, interactions, replays, choice, evidence)
    pipelines = [PipelineInfo(n, n, n) for n in (PROD, *names)]
    _, comparison = benchmark_results(
        scores, pipelines, request.epsilon, request.inference_settings, choice=choice
    )
    return comparison["comparisons"]
