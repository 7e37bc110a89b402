"""Sample health: what the benchmark's asset checks report, from the functions behind them and from
a real materialization on the small demo world."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance

from eval_pipelines.cli.run_in_process import run_benchmark_here
from eval_pipelines.core.benchmarks.health import (
    baseline_agreement,
    failure_rates,
    query_clusters,
    replay_coverage,
)
from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.paths import DataPaths


def sessions() -> pa.Table:
    return pa.table(
        {
            "execution_id": ["e1", "e2", "e3"],
            "logged_documents": [["a", "b"], ["c", "d"], ["e"]],
        }
    )


def replays(rows: list[tuple[str, str, str, list[str]]]) -> pa.Table:
    return pa.table(
        {
            "execution_id": [r[0] for r in rows],
            "retriever_id": [r[1] for r in rows],
            "status": [r[2] for r in rows],
            "ranking": [r[3] for r in rows],
        }
    )


def test_replay_coverage_names_missing_repeated_and_stray_rows() -> None:
    whole = [(e, p, "completed", []) for e in ("e1", "e2", "e3") for p in ("base", "cand")]
    assert replay_coverage(sessions(), replays(whole), ["base", "cand"]).passed
    broken = [*whole[:-1], ("e1", "cand", "completed", []), ("e9", "base", "completed", [])]
    broken.append(("e1", "other", "completed", []))
    finding = replay_coverage(sessions(), replays(broken), ["base", "cand"])
    assert not finding.passed
    assert finding.metadata["problems"] == {
        "base": {"missing": 0, "unknown": 1, "repeated": 0},
        "cand": {"missing": 1, "unknown": 0, "repeated": 1},
        "(other pipelines)": {"rows": 1},
    }
    assert finding.description.startswith("replays do not pair up with the sample: ")


def test_baseline_agreement_warns_below_seventy_percent() -> None:
    faithful = replays(
        [
            ("e1", "base", "completed", ["a", "b"]),
            ("e2", "base", "completed", ["c", "d"]),
            ("e3", "base", "failed", []),
        ]
    )
    assert baseline_agreement(sessions(), faithful, "base").metadata["mean_overlap_at_10"] == 1.0
    drifted = replays(
        [("e1", "base", "completed", ["a", "x"]), ("e2", "base", "completed", ["y", "z"])]
    )
    finding = baseline_agreement(sessions(), drifted, "base")
    assert not finding.passed
    assert finding.metadata == {"mean_overlap_at_10": 0.25, "sessions_below_half": 1, "sessions": 2}
    assert "keeps 25% of the logged top 10" in finding.description


def comparison(candidate_rate: float, clusters: int) -> dict:
    return {
        "comparisons": [
            {
                "candidate_retriever_id": "cand",
                "failures": {
                    "candidate_rate": candidate_rate,
                    "baseline_rate": 0.0,
                    "tolerance": 0.02,
                },
                "inference": {"clusters": clusters},
            }
        ]
    }


def test_failure_rates_and_query_clusters() -> None:
    assert failure_rates(comparison(0.01, 50)).passed
    over = failure_rates(comparison(0.12, 50))
    assert not over.passed and "cand 12.0% vs 0.0%" in over.description
    assert query_clusters(comparison(0.0, 10), 10).passed
    short = query_clusters(comparison(0.0, 3), 10)
    assert not short.passed and "cand 3" in short.description


@pytest.mark.parametrize(("baseline", "drifted"), [("demo_prod", False), ("demo_worse", True)])
def test_a_baseline_that_no_longer_reproduces_the_logs_is_flagged(
    world_copy: DataPaths, instance: DagsterInstance, baseline: str, drifted: bool
) -> None:
    """The sessions demo_prod served: replayed, it keeps their top 10 (all but what exploration
    shuffled); demo_worse as a baseline keeps under half, and the check and the record both say so."""
    candidate = "demo_better"
    request = parse_request(
        {
            "benchmark_name": "drift",
            "baseline_retriever_id": baseline,
            "candidate_retriever_ids": [candidate],
            "session_count": 200,
            "session_filter": {"retriever_ids": ["demo_prod"]},
        },
        world_copy,
    )
    record = run_benchmark_here(world_copy, request, "bench_drift", lambda _: None, instance)
    assert record["status"] == "completed", record["error_message"]
    check = instance.get_latest_asset_check_evaluation_record(
        AssetCheckKey(AssetKey("benchmark_replays"), "baseline_reproduces_logged_rankings")
    )
    evaluation = check.event.dagster_event.asset_check_evaluation_data
    assert evaluation.passed is not drifted
    overlap = evaluation.metadata["mean_overlap_at_10"].value
    # 5% of demo_prod's searches shuffled their top 12, which moves at most 2 of the top 10 out:
    # overlap >= 1 - 0.2 x the explored share, >= 0.98 unless over 10% of the 200 were (P < 0.002).
    assert (overlap < 0.5) if drifted else (0.98 <= overlap <= 1.0)
    agreement = record["results"][0]["replay_agreement"]["logged_overlap_at_10"]
    assert agreement == pytest.approx(overlap)
    warned = [w for w in record["warnings"] if "replayed today keeps only" in w]
    assert len(warned) == (1 if drifted else 0), json.dumps(record["warnings"])
    coverage = instance.get_latest_asset_check_evaluation_record(
        AssetCheckKey(AssetKey("benchmark_replays"), "every_session_replayed_by_every_pipeline")
    )
    assert coverage.event.dagster_event.asset_check_evaluation_data.passed
