"""Proof on the demo world: the benchmark reaches the verdicts the simulated truth dictates."""

from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance

from eval_pipelines.cli.run_in_process import run_benchmark_here
from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.schemas import validation_errors


@pytest.fixture(scope="module")
def demo_record(
    full_demo_world: tuple[DataPaths, dict], tmp_path_factory: pytest.TempPathFactory
) -> dict:
    paths, _ = full_demo_world
    request = parse_request(
        {
            "benchmark_name": "verdicts",
            "baseline_retriever_id": "demo_prod",
            "candidate_retriever_ids": ["demo_better", "demo_worse", "demo_prod_copy"],
            "session_count": 1000,
        },
        paths,
    )
    home = tmp_path_factory.mktemp("dagster-home")
    with DagsterInstance.local_temp(str(home)) as instance:
        return run_benchmark_here(
            paths, request, "bench_verdicts", lambda _: None, instance=instance
        )


def comparisons(record: dict) -> dict[str, dict]:
    return {c["candidate_retriever_id"]: c for c in record["comparison"]["comparisons"]}


def test_the_record_is_complete_and_valid(demo_record: dict) -> None:
    assert demo_record["status"] == "completed", demo_record["error_message"]
    assert validation_errors("get_benchmark.openapi", "BenchmarkResponse", demo_record) == []
    assert demo_record["session_count"] == 1000
    assert [r["retriever_id"] for r in demo_record["results"]] == [
        "demo_prod",
        "demo_better",
        "demo_worse",
        "demo_prod_copy",
    ]


def test_truly_better_wins_significantly_and_is_recommended(demo_record: dict) -> None:
    better = comparisons(demo_record)["demo_better"]
    assert better["ndcg_delta"]["10"] > 0
    assert better["p_value"] < 0.01
    assert better["confidence_interval"][0] > 0
    assert demo_record["comparison"]["recommendation"].startswith("Promote demo_better")


def test_truly_worse_loses(demo_record: dict) -> None:
    worse = comparisons(demo_record)["demo_worse"]
    assert worse["ndcg_delta"]["10"] < 0
    assert worse["p_value"] < 0.01
    assert worse["taxonomy_wins"] == []


def test_the_aa_copy_is_not_significant_and_every_session_ties(
    demo_record: dict, full_demo_world: tuple[DataPaths, dict]
) -> None:
    copy = comparisons(demo_record)["demo_prod_copy"]
    assert copy["p_value"] > 0.05
    low, high = copy["confidence_interval"]
    assert low <= 0.0 <= high
    assert copy["taxonomy_wins"] == copy["taxonomy_losses"] == []
    paths, _ = full_demo_world
    scores = pq.read_table(
        Path(paths.root) / "benchmarks" / "bench_verdicts" / "session_scores.parquet"
    )

    def ndcg10(pipeline: str) -> dict[str, float]:
        rows = scores.filter(pc.equal(scores.column("retriever_id"), pipeline))
        return dict(
            zip(
                rows.column("execution_id").to_pylist(),
                rows.column("ndcg_at_10").to_pylist(),
                strict=True,
            )
        )

    baseline, twin = ndcg10("demo_prod"), ndcg10("demo_prod_copy")
    assert len(baseline) == 1000
    assert {eid: twin[eid] - value for eid, value in baseline.items()} == dict.fromkeys(
        baseline, 0.0
    )
    copy_metrics = next(r for r in demo_record["results"] if r["retriever_id"] == "demo_prod_copy")[
        "metrics"
    ]
    assert copy_metrics["sessions_improved"] == copy_metrics["sessions_degraded"] == 0
