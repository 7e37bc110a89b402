"""The click model with its data root on S3 (a real moto server on loopback): the asset on a real
Dagster instance fits once per log snapshot and reads its stored model back, the same model as a
local root's; the log parts it reads are local copies kept by name and ETag."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from eval_pipelines.assets.click_model import click_model
from eval_pipelines.core.click_model import fit_click_model, log_snapshot_id
from eval_pipelines.core.logs.parts import local_parts
from eval_pipelines.core.paths import DataPaths, data_root
from eval_pipelines.core.storage import write_parquet_atomic
from eval_pipelines.core.warehouse import UnreadableTableError
from eval_pipelines.resources import DataDirResource
from eval_pipelines_tests.core.click_model.pbm_logs import write_logs


def _materialize(instance: DagsterInstance, root: str) -> dict[str, object]:
    result = materialize(
        [click_model], instance=instance, resources={"data_dir": DataDirResource(path=root)}
    )
    assert result.success
    event = instance.get_latest_materialization_event(AssetKey("click_model"))
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def test_the_asset_on_s3_fits_once_and_equals_a_local_fit(
    s3_root: str, instance: DagsterInstance, tmp_path: Path
) -> None:
    remote = DataPaths(data_root(s3_root, "test"))
    local = DataPaths(tmp_path / "local")
    for paths in (remote, local):
        write_logs(paths, tmp_path / f"raw-{paths.is_remote}", searches=1500)
    snapshot = log_snapshot_id(remote)
    assert snapshot == log_snapshot_id(local)

    first = _materialize(instance, s3_root)
    assert first["model_id"] == f"pbm-{snapshot[:12]}" and first["available"] is True
    assert (remote.root / "click_models" / snapshot / "model.json").is_file()
    again = _materialize(instance, s3_root)
    assert again == first  # read back from S3: the stored fit, its wall time included

    local_model = fit_click_model(local)
    assert local_model.propensities.equals(fit_click_model(remote).propensities)
    assert first["depth"] == local_model.depth


def test_log_parts_are_fetched_once_and_again_when_their_object_changes(
    s3_root: str, tmp_path: Path
) -> None:
    remote = DataPaths(data_root(s3_root, "test"))
    write_logs(remote, tmp_path / "raw", searches=200)
    parts = local_parts(remote, "executions")
    names = [part.name for part in remote.log_table_dir("executions").iterdir()]
    assert [part.parent.name for part in parts] == sorted(names)
    assert all(part.is_relative_to(remote.local_cache) for part in parts)
    fetched = {part: part.stat().st_mtime_ns for part in parts}
    assert local_parts(remote, "executions") == parts
    assert {part: part.stat().st_mtime_ns for part in parts} == fetched  # not fetched again

    rewritten = remote.log_table_dir("executions") / parts[0].parent.name
    write_parquet_atomic(pa.table({"execution_id": ["other"]}), rewritten)
    copies = local_parts(remote, "executions")
    assert copies[0] != parts[0] and copies[1:] == parts[1:]
    assert pq.read_table(copies[0]).column("execution_id").to_pylist() == ["other"]


def test_an_unreadable_part_on_s3_is_named_by_its_object(s3_root: str, tmp_path: Path) -> None:
    remote = DataPaths(data_root(s3_root, "test"))
    write_logs(remote, tmp_path / "raw", searches=200)
    junk = remote.log_table_dir("executions") / "part-2026-01-01-junk.parquet"
    junk.fs.pipe_file(junk.path, b"not parquet at all")
    with pytest.raises(UnreadableTableError, match=re.escape(f"{junk}: ")):
        fit_click_model(remote)
