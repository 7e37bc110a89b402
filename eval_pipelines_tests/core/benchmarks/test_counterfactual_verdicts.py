"""Verdicts under the counterfactual estimator, through the benchmark's scoring and comparison:
documents nobody saw make a candidate not testable or keep it from being called worse, and a
correction the logs cannot support is said, not guessed."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from eval_pipelines.core.benchmarks.comparison import PipelineInfo, benchmark_results
from eval_pipelines.core.benchmarks.estimators import choose_estimator
from eval_pipelines.core.benchmarks.request import BenchmarkRequest
from eval_pipelines.core.benchmarks.scoring import score_benchmark

QUERIES, SESSIONS_PER_QUERY, DEPTH = 80, 5, 24
EXAMINATION = 0.95 * 0.8 ** (np.arange(DEPTH) // 4)
RELATIVE = EXAMINATION / EXAMINATION[0]
AVAILABLE = {
    "model_id": "pbm-test",
    "available": True,
    "reason": None,
    "propensities": [{"position": p + 1, "propensity": float(v)} for p, v in enumerate(RELATIVE)],
    "fit": {"depth": DEPTH},
}
UNAVAILABLE = {
    "model_id": "pbm-fixed",
    "available": False,
    "reason": "0 of 1,920 (query, document) pairs were served at more than one position",
    "propensities": [],
    "fit": {"depth": 0},
}


def page(query: int) -> list[str]:
    return [f"q{query}-d{j}" for j in range(DEPTH)]


@pytest.fixture(scope="module")
def logs() -> dict[str, pa.Table]:
    """Sessions of fixed pages clicked by a position-based model; relevance falls with the slot."""
    rng = np.random.default_rng(3)
    relevance = np.where(np.arange(DEPTH) < 6, 0.5, 0.05)
    sessions, interactions = [], []
    for s in range(QUERIES * SESSIONS_PER_QUERY):
        query = s % QUERIES
        served = page(query)
        sessions.append(
            {
                "execution_id": f"e{s}",
                "query_text": f"query {query}",
                "query_input": json.dumps({"text": f"query {query}"}),
                "logged_documents": served,
                "taxonomy_node_id": None,
            }
        )
        for p in np.flatnonzero(rng.random(DEPTH) < EXAMINATION * relevance):
            interactions.append(
                {
                    "execution_id": f"e{s}",
                    "document_id": served[p],
                    "interaction_type": "click",
                    "position": int(p),
                }
            )
    table = pa.Table.from_pylist(sessions)
    acted = pa.Table.from_pylist(interactions)
    shown = {(f"query {q}", d) for q in range(QUERIES) for d in page(q)}
    exposure = {key: 0.0 for key in shown}
    gain = {key: 0.0 for key in shown}
    for row in sessions:
        for p, d in enumerate(row["logged_documents"]):
            exposure[(row["query_text"], d)] += RELATIVE[p]
    for row in interactions:
        query = f"query {int(row['execution_id'][1:]) % QUERIES}"
        gain[(query, row["document_id"])] += 1.0
    evidence = pa.table(
        {
            "query_key": [k[0] for k in exposure],
            "document_id": [k[1] for k in exposure],
            "exposure": list(exposure.values()),
            "gain_sum": [gain[k] for k in exposure],
            "interacted_sessions": [int(gain[k]) for k in exposure],
        }
    )
    return {"sessions": table, "interactions": acted, "evidence": evidence}


CANDIDATES = {
    "two_unseen": lambda q: ["new-1", "new-2", *page(q)[:22]],
    "one_unseen": lambda q: ["new-1", *page(q)[:23]],
    "reversed_top": lambda q: [*page(q)[11::-1], *page(q)[12:]],
}


def benchmark(logs: dict[str, pa.Table], estimator: str, click_model: dict[str, Any]) -> dict:
    request = BenchmarkRequest.model_validate(
        {
            "benchmark_name": "cf",
            "baseline_retriever_id": "prod",
            "candidate_retriever_ids": list(CANDIDATES),
            "estimator": estimator,
        }
    )
    sessions = logs["sessions"]
    queries = [int(t.split()[1]) for t in sessions.column("query_text").to_pylist()]
    rows = []
    for name, make in {"prod": page, **CANDIDATES}.items():
        for execution_id, query in zip(
            sessions.column("execution_id").to_pylist(), queries, strict=True
        ):
            rows.append(
                {
                    "benchmark_id": "b",
                    "execution_id": execution_id,
                    "retriever_id": name,
                    "ranking": make(query),
                    "status": "completed",
                    "error_type": None,
                    "latency_ms": 1.0,
                    "stage_latencies": None,
                }
            )
    replays = pa.Table.from_pylist(rows).cast(
        pa.schema(
            [
                ("benchmark_id", pa.string()),
                ("execution_id", pa.string()),
                ("retriever_id", pa.string()),
                ("ranking", pa.list_(pa.string())),
                ("status", pa.string()),
                ("error_type", pa.string()),
                ("latency_ms", pa.float64()),
                ("stage_latencies", pa.map_(pa.string(), pa.float64())),
            ]
        )
    )
    choice = request.estimator_choice(click_model)
    scores = score_benchmark(
        request, sessions, logs["interactions"], replays, choice, logs["evidence"]
    )
    pipelines = [PipelineInfo(n, n, n) for n in request.retriever_ids]
    results, comparison = benchmark_results(
        scores, pipelines, settings=request.inference_settings, choice=choice
    )
    return {"results": results, "comparison": comparison, "scores": scores}


def verdicts(outcome: dict) -> dict[str, dict]:
    return {c["candidate_retriever_id"]: c for c in outcome["comparison"]["comparisons"]}


def test_documents_nobody_saw_never_make_a_candidate_worse(logs: dict[str, pa.Table]) -> None:
    outcome = benchmark(logs, "auto", AVAILABLE)
    found = verdicts(outcome)
    assert outcome["comparison"]["estimator"]["used"] == "counterfactual"
    two = found["two_unseen"]
    assert two["verdict"] == "not_testable"
    assert two["coverage"]["candidate"]["ever_shown_at_10"] == pytest.approx(0.8)
    assert "20% of its top 10 was never shown for these queries" in two["verdict_reasons"][0]
    assert "run an evaluation with judgments" in two["verdict_reasons"][0]
    one = found["one_unseen"]
    assert one["coverage"]["candidate"]["ever_shown_at_10"] == pytest.approx(0.9)
    # Pushing every shown document down one rank loses NDCG@10 significantly, but the unseen
    # document at rank 1 might be the best of all: no verdict of worse rests on it.
    assert one["effect"]["delta"] < 0 and one["p_value"] < 0.01
    assert one["verdict"] == "no_detectable_difference"
    assert one["if_unseen_best"]["delta"] > 0
    assert any(
        r.startswith("worse only if its never-shown documents") for r in one["verdict_reasons"]
    )
    assert found["reversed_top"]["verdict"] == "worse"  # all shown: the evidence is there
    baseline = outcome["results"][0]
    assert baseline["coverage"]["ever_shown_at_10"] == 1.0
    assert baseline["coverage"]["shown_to_user_at_10"] == 1.0
    assert "metrics_logged_order" in baseline
    assert baseline["metrics"]["mean_rank_interacted"] > 0


def test_the_logged_order_estimator_is_used_with_the_reason_when_the_logs_cannot_support_the_correction(
    logs: dict[str, pa.Table],
) -> None:
    outcome = benchmark(logs, "auto", UNAVAILABLE)
    estimator = outcome["comparison"]["estimator"]
    assert estimator["used"] == "logged_order"
    assert estimator["reason"] == (
        f"the position-bias correction is unavailable: {UNAVAILABLE['reason']}"
    )
    assert not any(c.startswith("cf_") for c in outcome["scores"].column_names)
    assert verdicts(outcome)["two_unseen"]["verdict"] == "not_testable"


def test_a_required_correction_the_logs_cannot_support_leaves_every_candidate_not_testable(
    logs: dict[str, pa.Table],
) -> None:
    outcome = benchmark(logs, "counterfactual", UNAVAILABLE)
    for item in verdicts(outcome).values():
        assert item["verdict"] == "not_testable"
        assert item["verdict_reasons"] == [
            "the counterfactual estimator was requested, but the position-bias correction is"
            f" unavailable: {UNAVAILABLE['reason']}"
        ]
    assert outcome["comparison"]["recommendation"].startswith("No verdict")


def test_choosing_an_estimator() -> None:
    assert choose_estimator("auto", AVAILABLE).used == "counterfactual"
    chosen = choose_estimator("logged_order", AVAILABLE)
    assert (chosen.used, chosen.blocked) == ("logged_order", None)
    assert choose_estimator("auto", None).reason == (
        "the position-bias correction is unavailable: no click model could be fitted on the logs"
    )
    with pytest.raises(ValueError, match="estimator: 'ips' is not one of"):
        choose_estimator("ips", AVAILABLE)


def test_the_record_counts_the_weights_and_those_the_clip_capped(
    logs: dict[str, pa.Table],
) -> None:
    deep = [dict(row) for row in AVAILABLE["propensities"]]
    deep[-1]["propensity"] = 0.01  # the last position below the default clip of 0.05
    outcome = benchmark(logs, "counterfactual", {**AVAILABLE, "propensities": deep})
    estimator = outcome["comparison"]["estimator"]
    acted = logs["interactions"]
    pairs = set(
        zip(
            acted.column("execution_id").to_pylist(),
            acted.column("document_id").to_pylist(),
            strict=True,
        )
    )
    last = {
        (e, d)
        for e, d, p in zip(
            acted.column("execution_id").to_pylist(),
            acted.column("document_id").to_pylist(),
            acted.column("position").to_pylist(),
            strict=True,
        )
        if p == DEPTH - 1
    }
    assert last, "the simulated users clicked the last position at least once"
    assert estimator["weights"] == len(pairs)
    assert estimator["weights_clipped"] == len(last)
    assert estimator["propensity_clip"] == 0.05
    assert (
        benchmark(logs, "counterfactual", AVAILABLE)["comparison"]["estimator"]["weights_clipped"]
        == 0
    )
