"""The report assets on real Dagster instances: the demo's own runs (the CLI's in-process runner,
as `--wait` and `rerun` use) materialize benchmark_report and evaluation_report with the written
file's path, size and plot count; a report that fails leaves the completed record as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, materialize
from dagster._core.instance.ref import InstanceRef

from eval_pipelines.assets.reports import benchmark_report
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.kinds import BENCHMARKS
from eval_pipelines.resources import DataDirResource
from eval_pipelines.run_failures import record_run_end
from eval_pipelines_tests.cli.conftest import CliResult


def _completed(data_dir: Path, kind: str) -> list[dict[str, Any]]:
    records = [json.loads(p.read_text())["record"] for p in (data_dir / kind).glob("*/record.json")]
    return [r for r in records if r["status"] == "completed"]


def _demo_benchmark(data_dir: Path) -> dict[str, Any]:
    """The demo's own benchmark: other tests share this world and may add ones of that name."""
    return min(
        (
            r
            for r in _completed(data_dir, "benchmarks")
            if r["benchmark_name"] == "demo: production vs candidates"
        ),
        key=lambda r: r["created_at"],
    )


def _metadata(instance: DagsterInstance, asset: str, partition: str) -> dict[str, Any]:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    assert records, f"{asset} has no materialization of partition {partition}"
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def test_the_run_that_completes_a_record_also_writes_its_report(
    small_demo: tuple[Path, CliResult],
) -> None:
    data_dir = small_demo[0]
    benchmark = _demo_benchmark(data_dir)
    evaluation = min(_completed(data_dir, "evaluations"), key=lambda r: r["created_at"])
    home = DataPaths(data_dir).dagster_home
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        found = {
            "benchmarks": _metadata(instance, "benchmark_report", benchmark["benchmark_id"]),
            "evaluations": _metadata(instance, "evaluation_report", evaluation["evaluation_id"]),
        }
    for kind, record_id in (
        ("benchmarks", benchmark["benchmark_id"]),
        ("evaluations", evaluation["evaluation_id"]),
    ):
        metadata = found[kind]
        path = data_dir / kind / record_id / "report.html"
        assert Path(metadata["path"]) == path and path.is_file()
        html = path.read_text(encoding="utf-8")
        assert metadata["size_bytes"] == len(html.encode("utf-8"))
        assert metadata["plots"] == html.count('<figure class="plot"') > 0
    preview = found["benchmarks"]["preview"]
    assert preview.startswith("![NDCG@10 delta per candidate](data:image/png;base64,")
    for candidate in benchmark["candidate_retriever_ids"]:
        assert f"| {candidate} |" in preview


def test_a_report_that_fails_leaves_the_completed_record_as_it_was(
    small_demo: tuple[Path, CliResult],
    instance: DagsterInstance,
    tmp_path: Path,
) -> None:
    """A report materialized again from the UI, over a partition whose scores are gone."""
    source = small_demo[0]
    record_id = _demo_benchmark(source)["benchmark_id"]
    paths = DataPaths(tmp_path / "data")
    folder = paths.root / "benchmarks" / record_id
    shutil.copytree(source / "benchmarks" / record_id, folder)
    (folder / "report.html").unlink(missing_ok=True)
    (folder / "session_scores.parquet").unlink()
    before = (folder / "record.json").read_bytes()
    instance.add_dynamic_partitions(BENCHMARKS.partitions.name, [record_id])
    result = materialize(
        [benchmark_report],
        partition_key=record_id,
        instance=instance,
        resources={"data_dir": DataDirResource(path=str(paths.root))},
        raise_on_error=False,
    )
    assert not result.success
    assert record_run_end(instance, paths, instance.get_run_by_id(result.run_id)) is None
    assert (folder / "record.json").read_bytes() == before
    assert not (folder / "report.html").exists()
