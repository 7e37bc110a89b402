"""The panel of candidates whose truth is known (core/demo/panel.py), benchmarked again and again on
the small demo world under both estimators: the rates the README reports, at test size, and the
estimator choice through the real CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dagster import AssetCheckSeverity, DagsterEventType, DagsterInstance, materialize

from eval_pipelines.assets.benchmarks import benchmark_assets
from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.benchmarks.submit import accept_request
from eval_pipelines.core.demo import DemoLogStructure
from eval_pipelines.core.demo.panel import BETTER, EQUAL, NOT_JUDGEABLE, SAME, WORSE
from eval_pipelines.core.demo.panel_runs import run_panel
from eval_pipelines.core.demo.world import DemoScale, simulate_logs
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.resources import DataDirResource
from eval_pipelines_tests.cli.conftest import run_cli

REPETITIONS = 6


@pytest.fixture(scope="module")
def panel(module_world_copy: DataPaths) -> dict:
    return run_panel(module_world_copy, REPETITIONS, 600)


def rate(candidates: list[dict], truth: str, estimator: str, verdicts: set[str]) -> float:
    chosen = [c for c in candidates if c["truth"] == truth]
    hits = sum(
        n
        for c in chosen
        for v, n in c["estimators"][estimator]["verdicts"].items()
        if v in verdicts
    )
    return hits / (len(chosen) * REPETITIONS)


def test_the_counterfactual_estimator_judges_the_panel_as_its_truth(panel: dict) -> None:
    candidates = panel["candidates"]
    by_name = {c["name"]: c for c in candidates}
    assert by_name["equal_top24"]["true_ndcg_at_10_delta"] == 0.0
    assert by_name["better_rarely_shown"]["true_ndcg_at_10_delta"] > 0.02
    assert rate(candidates, EQUAL, "counterfactual", {"better", "worse"}) <= 0.08
    assert rate(candidates, BETTER, "counterfactual", {"better"}) >= 0.8
    assert rate(candidates, NOT_JUDGEABLE, "counterfactual", {"worse", "better"}) == 0.0
    never_shown = by_name["better_never_shown"]["estimators"]["counterfactual"]["verdicts"]
    assert never_shown == {"not_testable": REPETITIONS}
    assert by_name["better_one_never_shown"]["ever_shown_at_10"] >= 0.9  # tested, never worse
    assert rate(candidates, WORSE, "counterfactual", {"better"}) == 0.0
    assert rate(candidates, WORSE, "counterfactual", {"worse"}) == 1.0
    assert rate(candidates, SAME, "counterfactual", {"no_detectable_difference"}) == 1.0


def test_the_logged_order_estimator_is_biased_toward_copying_the_logged_page(panel: dict) -> None:
    """The same panel under today's estimator: equal reorderings called worse, rarely shown better
    documents not credited; this is what the correction is for."""
    candidates = panel["candidates"]
    by_name = {c["name"]: c["estimators"]["logged_order"]["verdicts"] for c in candidates}
    assert by_name["equal_top24"].get("worse", 0) == REPETITIONS
    assert by_name["better_rarely_shown"].get("better", 0) == 0
    assert rate(candidates, EQUAL, "logged_order", {"better", "worse"}) > 0.25


def test_the_estimator_and_coverage_threshold_come_from_the_command_line(
    module_world_copy: DataPaths,
) -> None:
    result = run_cli(
        module_world_copy.root,
        "benchmark",
        "create",
        "--wait",
        "--name",
        "flags",
        "--baseline",
        "demo_prod",
        "--candidate",
        "demo_better",
        "--sessions",
        "200",
        "--estimator",
        "logged_order",
        "--min-coverage",
        "0.5",
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["settings"]["estimator"] == "logged_order"
    assert record["settings"]["min_coverage"] == 0.5
    estimator = record["comparison"]["estimator"]
    assert estimator["used"] == "logged_order"
    assert estimator["reason"].startswith("requested")
    assert estimator["click_model_id"].startswith("pbm-")
    (comparison,) = record["comparison"]["comparisons"]
    assert comparison["estimator"] == "logged_order"
    assert comparison["coverage"]["candidate"]["ever_shown_at_10"] > 0.5


def materialized_checks(
    paths: DataPaths, instance: DagsterInstance, candidates: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The comparison asset's check evaluations and its metadata, from a real benchmark run."""
    request = parse_request(
        {
            "benchmark_name": "checks",
            "baseline_retriever_id": "demo_prod",
            "candidate_retriever_ids": candidates,
            "session_count": 300,
            "session_filter": {"retriever_ids": ["demo_prod"]},
        },
        paths,
    )
    benchmark_id = accept_request(paths, request)["benchmark_id"]
    instance.add_dynamic_partitions("benchmark", [benchmark_id])
    result = materialize(
        benchmark_assets,
        partition_key=benchmark_id,
        instance=instance,
        resources={"data_dir": DataDirResource(path=str(paths.root))},
    )
    checks = {
        entry.dagster_event.event_specific_data.check_name: entry.dagster_event.event_specific_data
        for entry in instance.all_logs(
            result.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
        )
    }
    (materialization,) = [m for m in result.asset_materializations_for_node("benchmark_comparison")]
    return checks, {k: v.value for k, v in materialization.metadata.items()}


def test_the_comparison_checks_say_what_the_verdicts_could_not_see(
    world_copy: DataPaths, instance: DagsterInstance
) -> None:
    checks, metadata = materialized_checks(world_copy, instance, ["demo_better", "demo_worse"])
    assert checks["position_bias_corrected"].passed
    covered = checks["candidates_covered_by_the_logs"]
    assert not covered.passed
    assert covered.severity == AssetCheckSeverity.WARN
    assert covered.description.startswith("mostly never shown for these queries")
    assert "demo_worse" in covered.description and "demo_better" not in covered.description
    assert metadata["estimator"]["used"] == "counterfactual"
    assert metadata["estimator"]["click_model_id"].startswith("pbm-")
    assert metadata["verdicts"]["demo_worse"]["verdict"] == "not_testable"
    assert metadata["verdicts"]["demo_better"]["coverage"]["ever_shown_at_10"] >= 0.9

    # The same world with one fixed page per query: no correction, and the check says why.
    simulate_logs(world_copy, scale=DemoScale.small(), structure=DemoLogStructure.fixed())
    checks, metadata = materialized_checks(world_copy, instance, ["demo_better"])
    corrected = checks["position_bias_corrected"]
    assert not corrected.passed
    assert "judged in the logged order" in corrected.description
    assert "examination cannot be separated from relevance" in corrected.description
    assert metadata["estimator"]["used"] == "logged_order"
