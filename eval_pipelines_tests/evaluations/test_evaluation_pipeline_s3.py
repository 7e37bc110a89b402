"""The evaluation's steps with a data root on S3 (a loopback moto server), as plain functions and as
Dagster assets on a real instance: the same queries, rankings, per-query metrics and summary as the
same evaluation on a local root, and the report written as one object into its partition."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from dagster import DagsterInstance, materialize

from eval_pipelines.assets.evaluations import evaluation_assets
from eval_pipelines.assets.reports import benchmark_report, evaluation_report
from eval_pipelines.core.datasets import load_dataset
from eval_pipelines.core.evaluations import pipeline
from eval_pipelines.core.evaluations.request import parse_evaluation_request
from eval_pipelines.core.evaluations.submit import accept_request, evaluation_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.reports.html.build import build_report
from eval_pipelines.core.table_names import QUERIES, QUERY_METRICS, RUNS
from eval_pipelines.partitions import benchmark_partitions, evaluation_partitions
from eval_pipelines.resources import DataDirResource
from eval_pipelines_tests.cli.conftest import run_cli
from eval_pipelines_tests.services import S3, comparable, upload_world

REQUEST = {
    "retriever_id": "demo_better",
    "dataset_name": "demo-judgments",
    "evaluation_config": {"k_values": [1, 5, 10], "metrics": ["precision", "ndcg", "map", "mrr"]},
}
# What differs between two runs of the same queries: the execution each call was kept as, and time.
VARYING_COLUMNS = ("evaluation_id", "execution_id", "latency_ms")


def _steps(paths: DataPaths) -> tuple[pa.Table, pa.Table, pa.Table, dict[str, Any]]:
    request = parse_evaluation_request(REQUEST, paths)
    dataset = load_dataset(paths, request.dataset_name)
    planned = pipeline.plan_queries(dataset)
    runs = pipeline.run_queries(paths, "eval_s3steps", request.retriever_id, planned)
    metrics = pipeline.score_queries(request, dataset, runs)
    return planned, runs, metrics, pipeline.summarize(request, planned, runs, metrics)


def _stable(table: pa.Table) -> pa.Table:
    kept = [name for name in table.column_names if name not in VARYING_COLUMNS]
    return table.select(kept).sort_by([(kept[0], "ascending")])


def test_the_steps_on_s3_give_the_local_results(
    world_copy: DataPaths, s3_root: str, s3_service: S3
) -> None:
    remote = upload_world(world_copy, s3_root)
    local_planned, local_runs, local_metrics, local_summary = _steps(world_copy)
    planned, runs, metrics, summary = _steps(remote)
    assert summary == local_summary
    assert summary["evaluated_queries"] > 0
    assert planned.equals(local_planned)
    assert _stable(runs).equals(_stable(local_runs))
    assert metrics.equals(local_metrics)
    bucket, _, prefix = s3_root.removeprefix("s3://").partition("/")
    assert s3_service.keys(bucket, f"{prefix}/executions/demo_better/"), "calls kept on S3"


def _same_record(record: dict[str, Any]) -> Any:
    return comparable({k: v for k, v in record.items() if k not in ("evaluation_id", "updated_at")})


def _materialize(
    instance: DagsterInstance, assets: list, partitions: Any, partition: str, root: str
) -> None:
    instance.add_dynamic_partitions(partitions.name, [partition])
    outcome = materialize(
        assets,
        partition_key=partition,
        instance=instance,
        resources={"data_dir": DataDirResource(path=root)},
    )
    assert outcome.success
    assert all(c.passed for c in outcome.get_asset_check_evaluations())


def test_the_assets_on_s3_complete_the_record_and_write_the_report(
    world_copy: DataPaths, s3_root: str, s3_service: S3, instance: DagsterInstance
) -> None:
    bench = run_cli(
        world_copy.root,
        *("benchmark", "create", "--name", "s3 assets", "--baseline", "demo_prod"),
        *("--candidate", "demo_better", "--sessions", "60", "--wait", "--json"),
    )
    assert bench.returncode == 0, bench.stderr[-3000:]
    for report in world_copy.root.glob("benchmarks/*/report.html"):
        report.unlink()
    remote = upload_world(world_copy, s3_root)
    records = {}
    for paths in (world_copy, remote):
        accepted = accept_request(paths, parse_evaluation_request(REQUEST, paths))
        evaluation_id = accepted["evaluation_id"]
        assets = [*evaluation_assets, evaluation_report]
        _materialize(instance, assets, evaluation_partitions, evaluation_id, str(paths.root))
        store = evaluation_store(paths)
        records[paths.is_remote] = (evaluation_id, store.get(evaluation_id), store)
    (local_id, local, local_store), (remote_id, record, store) = records[False], records[True]
    assert record["status"] == "completed"
    assert _same_record(record) == _same_record(local)
    for name in (QUERIES, RUNS, QUERY_METRICS):
        assert _stable(store.read_table(remote_id, name)).equals(
            _stable(local_store.read_table(local_id, name))
        ), name
    report = store.folder(remote_id) / "report.html"
    assert report.read_text(encoding="utf-8") == build_report(remote, remote_id).html

    benchmark_id = json.loads(bench.stdout)["benchmark_id"]
    bucket, _, prefix = s3_root.removeprefix("s3://").partition("/")
    before = set(s3_service.keys(bucket))
    _materialize(instance, [benchmark_report], benchmark_partitions, benchmark_id, str(remote.root))
    assert set(s3_service.keys(bucket)) - before == {
        f"{prefix}/benchmarks/{benchmark_id}/report.html"
    }
    report = remote.root / "benchmarks" / benchmark_id / "report.html"
    assert report.read_text(encoding="utf-8") == build_report(remote, benchmark_id).html
