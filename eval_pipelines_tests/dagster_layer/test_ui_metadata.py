"""What the Dagster UI shows of a benchmark or an evaluation, read back from a real instance's event
log after the request sensor's run: the verdict table as typed table metadata, the request's name on
the run and on every step, and an error check when a pipeline failed on every session or query."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    SensorResult,
    build_sensor_context,
    materialize,
)
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.dagster_run import DagsterRun

from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.benchmarks.submit import accept_request, benchmark_store
from eval_pipelines.core.datasets import import_dataset
from eval_pipelines.core.evaluations.request import parse_evaluation_request
from eval_pipelines.core.evaluations.submit import accept_request as accept_evaluation
from eval_pipelines.core.evaluations.submit import evaluation_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.reports.verdict_table import (
    EVALUATION_COLUMNS,
    VERDICT_COLUMNS,
    evaluation_rows,
    verdict_rows,
)
from eval_pipelines.kinds import BENCHMARKS, EVALUATIONS, RequestKind
from eval_pipelines.resources import DataDirResource
from eval_pipelines.sensors.requests import request_sensor
from eval_pipelines_tests.cli.conftest import run_cli
from eval_pipelines_tests.loopback import free_port
from eval_pipelines_tests.search_stub import search_stub

NAME = "nightly prod vs better ✓"
BENCHMARK_STEPS = (
    "benchmark_sessions",
    "benchmark_replays",
    "benchmark_session_scores",
    "benchmark_comparison",
)
EVALUATION_STEPS = ("evaluation_queries", "evaluation_runs", "evaluation_query_metrics")
EVALUATION_STEPS += ("evaluation_summary",)
DAGSTER_TYPES = {"str": "string", "int": "int", "float": "float", "bool": "bool"}


def run_by_sensor(instance: DagsterInstance, paths: DataPaths, kind: RequestKind) -> DagsterRun:
    """Evaluate the kind's request sensor and launch its one run as the daemon would: the run
    request's partition and tags, on the instance."""
    result = request_sensor(kind)(
        build_sensor_context(
            instance=instance, resources={"data_dir": DataDirResource(path=str(paths.root))}
        )
    )
    assert isinstance(result, SensorResult)
    for add in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(add.partitions_def_name, list(add.partition_keys))
    [run] = result.run_requests
    return materialize(
        kind.assets,
        partition_key=run.partition_key,
        instance=instance,
        resources={"data_dir": DataDirResource(path=str(paths.root))},
        tags=run.tags,
        raise_on_error=False,
    ).dagster_run


def stored_run(instance: DagsterInstance, run: DagsterRun) -> DagsterRun:
    stored = instance.get_run_by_id(run.run_id)
    assert stored is not None
    return stored


def materialized_metadata(instance: DagsterInstance, asset: str, partition: str) -> dict[str, Any]:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    assert records, f"{asset} has no materialization of partition {partition}"
    materialization = records[0].asset_materialization
    assert materialization is not None
    return dict(materialization.metadata)


def check_evaluations(instance: DagsterInstance, run_id: str) -> dict[str, Any]:
    """Each check's evaluation in the run, by check name, from the event log."""
    events = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    found = {}
    for event in events:
        evaluation = event.dagster_event.event_specific_data
        found[evaluation.check_name] = evaluation
    return found


def table_columns(value: Any) -> list[tuple[str, str, str | None]]:
    return [(c.name, c.type, c.description) for c in value.schema.columns]


def table_rows(value: Any) -> list[dict[str, Any]]:
    return [dict(record.data) for record in value.records]


def write_dead_retriever(paths: DataPaths, retriever_id: str) -> None:
    """An HTTP retriever at a loopback port nothing listens on: every call is refused."""
    config = {
        "id": retriever_id,
        "kind": "http",
        "http": {"url": f"http://127.0.0.1:{free_port()}/search", "max_retries": 0},
    }
    (paths.retrievers_dir / f"{retriever_id}.yaml").write_text(yaml.safe_dump(config))


def benchmark_request(baseline: str, candidate: str) -> dict[str, Any]:
    return {
        "benchmark_name": NAME,
        "baseline_retriever_id": baseline,
        "candidate_retriever_ids": [candidate],
        "session_count": 50,
    }


def test_the_comparison_shows_every_candidates_verdict_row_as_a_typed_table(
    world_copy: DataPaths, instance: DagsterInstance
) -> None:
    request = benchmark_request("demo_prod", "demo_better")
    request["candidate_retriever_ids"].append("demo_worse")
    benchmark_id = accept_request(world_copy, parse_request(request, world_copy))["benchmark_id"]
    run = run_by_sensor(instance, world_copy, BENCHMARKS)
    record = benchmark_store(world_copy).get(benchmark_id)
    assert record["status"] == "completed"

    comparison = materialized_metadata(instance, "benchmark_comparison", benchmark_id)
    report = materialized_metadata(instance, "benchmark_report", benchmark_id)
    assert comparison["report"].value == report["path"].value
    assert Path(report["path"].value).read_text().startswith("<!DOCTYPE html>")
    table = comparison["verdict_table"]
    assert table_columns(table) == [
        (c.name, DAGSTER_TYPES[c.type], c.description) for c in VERDICT_COLUMNS
    ]
    rows = table_rows(table)
    # Every candidate, recommended or not, at each metric and k of its record.
    for item in record["comparison"]["comparisons"]:
        candidate = item["candidate_retriever_id"]
        mine = {(r["metric"], r["k"]): r for r in rows if r["candidate_retriever_id"] == candidate}
        assert {k for m, k in mine if m == "ndcg"} == {int(k) for k in item["ndcg_delta"]}
        for k, delta in item["ndcg_delta"].items():
            if int(k) != 10:  # the tested row holds the test's own delta (verdict_table.py)
                assert mine["ndcg", int(k)]["delta"] == delta
        for k, delta in item["recall_delta"].items():
            assert mine["recall", int(k)]["delta"] == delta
        tested = mine["ndcg", 10]
        assert tested["tested"] is True
        assert [tested["ci_low"], tested["ci_high"]] == item["confidence_interval"]
        assert tested["p_value"] == item["p_value"]
        assert tested["p_value_holm"] == item["p_value_adjusted"]
        assert tested["effect_size"] == item["effect"]["standardized"]
        assert tested["mde"] == item["effect"]["minimum_detectable_effect"]
        assert tested["verdict"] == item["verdict"]
        assert tested["reasons"] == "; ".join(item["verdict_reasons"])
        assert tested["failure_rate"] == item["failures"]["candidate_rate"]
    assert {r["candidate_retriever_id"] for r in rows} == {"demo_better", "demo_worse"}
    assert rows == verdict_rows(record)
    checks = check_evaluations(instance, run.run_id)
    assert checks["every_pipeline_answered_a_session"].passed


def test_the_benchmarks_name_is_on_its_run_and_on_every_steps_materialization(
    world_copy: DataPaths, instance: DagsterInstance
) -> None:
    request = parse_request(benchmark_request("demo_prod", "demo_better"), world_copy)
    benchmark_id = accept_request(world_copy, request)["benchmark_id"]
    run = stored_run(instance, run_by_sensor(instance, world_copy, BENCHMARKS))

    assert run.tags["eval_pipelines/benchmark_name"] == NAME
    assert run.tags["eval_pipelines/kind"] == "benchmarks"
    assert run.tags["dagster/partition"] == benchmark_id  # the key itself is unchanged
    assert instance.get_dynamic_partitions("benchmark") == [benchmark_id]
    for step in BENCHMARK_STEPS:
        metadata = materialized_metadata(instance, step, benchmark_id)
        assert metadata["benchmark_name"].value == NAME, step


def test_a_baseline_that_failed_on_every_session_turns_a_check_red_naming_it(
    world_copy: DataPaths, instance: DagsterInstance
) -> None:
    write_dead_retriever(world_copy, "dead_baseline")
    request = parse_request(benchmark_request("dead_baseline", "demo_better"), world_copy)
    accept_request(world_copy, request)
    run = run_by_sensor(instance, world_copy, BENCHMARKS)

    check = check_evaluations(instance, run.run_id)["every_pipeline_answered_a_session"]
    assert not check.passed
    assert check.severity == AssetCheckSeverity.ERROR
    assert "dead_baseline (50 of 50 sessions failed)" in check.description
    assert "demo_better" not in check.description
    calls = check.metadata["calls"].value
    assert calls["dead_baseline"] == {"sessions": 50, "answered": 0}
    assert calls["demo_better"]["answered"] > 0


@pytest.fixture
def search_url() -> Iterator[str]:
    with search_stub(lambda text: [("d1", 2.0), ("d2", 1.0)]) as url:
        yield url


@pytest.fixture
def tiny_world(tmp_path: Path, search_url: str) -> DataPaths:
    """A dataset of three queries, a retriever answering them and one that is down."""
    paths = DataPaths(tmp_path / "data")
    paths.retrievers_dir.mkdir(parents=True)
    config = {"id": "api", "kind": "http", "http": {"url": search_url, "max_retries": 0}}
    (paths.retrievers_dir / "api.yaml").write_text(yaml.safe_dump(config))
    write_dead_retriever(paths, "dead")
    source = tmp_path / "truth.jsonl"
    queries = [
        {"query_id": f"q{i}", "query_input": {"text": f"sofa {i}"}, "relevant_documents": ["d1"]}
        for i in range(3)
    ]
    source.write_text("".join(json.dumps(q) + "\n" for q in queries))
    import_dataset(paths, "tiny", [source])
    return paths


def test_an_evaluation_shows_its_metrics_table_and_its_labels(
    tiny_world: DataPaths, instance: DagsterInstance
) -> None:
    request = parse_evaluation_request({"retriever_id": "api", "dataset_name": "tiny"}, tiny_world)
    evaluation_id = accept_evaluation(tiny_world, request)["evaluation_id"]
    run = stored_run(instance, run_by_sensor(instance, tiny_world, EVALUATIONS))
    record = evaluation_store(tiny_world).get(evaluation_id)
    assert record["status"] == "completed"

    assert run.tags["eval_pipelines/retriever_id"] == "api"
    assert run.tags["eval_pipelines/dataset_name"] == "tiny"
    for step in EVALUATION_STEPS:
        metadata = materialized_metadata(instance, step, evaluation_id)
        assert metadata["retriever_id"].value == "api", step
        assert metadata["dataset_name"].value == "tiny", step
    table = materialized_metadata(instance, "evaluation_summary", evaluation_id)["metrics_table"]
    assert table_columns(table) == [
        (c.name, DAGSTER_TYPES[c.type], c.description) for c in EVALUATION_COLUMNS
    ]
    expected = [
        {"retriever_id": "api", "measure": measure, "k": int(k), "value": value}
        for k, values in sorted(record["metrics_by_k"].items(), key=lambda item: int(item[0]))
        for measure, value in values.items()
    ]
    assert table_rows(table) == expected == evaluation_rows(record)
    assert check_evaluations(instance, run.run_id)["retriever_answered_a_query"].passed


def test_a_retriever_that_failed_on_every_query_turns_a_check_red_naming_it(
    tiny_world: DataPaths, instance: DagsterInstance
) -> None:
    request = parse_evaluation_request({"retriever_id": "dead", "dataset_name": "tiny"}, tiny_world)
    accept_evaluation(tiny_world, request)
    run = run_by_sensor(instance, tiny_world, EVALUATIONS)

    check = check_evaluations(instance, run.run_id)["retriever_answered_a_query"]
    assert not check.passed
    assert check.severity == AssetCheckSeverity.ERROR
    assert "dead (3 of 3 queries failed)" in check.description


def test_a_cli_wait_run_carries_the_benchmarks_name_too(world_copy: DataPaths) -> None:
    created = run_cli(
        world_copy.root,
        "benchmark",
        "create",
        "--name",
        NAME,
        "--baseline",
        "demo_prod",
        "--candidate",
        "demo_better",
        "--sessions",
        "30",
        "--wait",
    )
    assert created.returncode in (0, 3), created.stderr[-3000:]
    benchmark_id = json.loads(created.stdout)["benchmark_id"]
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(world_copy.dagster_home))) as instance:
        [run] = instance.get_runs()
        assert run.tags["eval_pipelines/benchmark_name"] == NAME
        assert run.tags["dagster/partition"] == benchmark_id
        metadata = materialized_metadata(instance, "benchmark_comparison", benchmark_id)
        assert metadata["benchmark_name"].value == NAME
