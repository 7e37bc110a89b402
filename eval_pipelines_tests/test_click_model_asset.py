"""The click_model asset through a real Dagster instance: the model stored, its checks recorded."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetCheckKey, AssetCheckSeverity, AssetKey, DagsterInstance, materialize

from eval_pipelines.assets.click_model import click_model
from eval_pipelines.core.click_model import log_snapshot_id
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.resources import DataDirResource
from eval_pipelines_tests.core.click_model.pbm_logs import write_logs

CHECKS = (
    "fit_converged",
    "propensities_non_increasing",
    "randomized_estimate_agrees",
    "correction_available",
)


def _materialize(instance: DagsterInstance, paths: DataPaths) -> dict[str, object]:
    result = materialize(
        [click_model],
        instance=instance,
        resources={"data_dir": DataDirResource(path=str(paths.root))},
    )
    assert result.success
    return {
        name: instance.get_latest_asset_check_evaluation_record(
            AssetCheckKey(AssetKey("click_model"), name)
        ).event.dagster_event.asset_check_evaluation_data
        for name in CHECKS
    }


def test_randomized_logs_give_an_available_model_that_passes_every_check(
    tmp_path: Path, instance: DagsterInstance
) -> None:
    paths = DataPaths(tmp_path / "data")
    write_logs(paths, tmp_path / "raw", searches=3000)
    checks = _materialize(instance, paths)
    assert {name: c.passed for name, c in checks.items()} == dict.fromkeys(CHECKS, True)
    materialization = instance.get_latest_materialization_event(AssetKey("click_model"))
    metadata = materialization.asset_materialization.metadata
    snapshot = log_snapshot_id(paths)
    assert metadata["model_id"].value == f"pbm-{snapshot[:12]}"
    assert metadata["available"].value is True
    assert metadata["depth"].value == 12
    assert (paths.root / "click_models" / snapshot / "model.json").is_file()


def test_fixed_pages_warn_that_the_correction_is_unavailable(
    tmp_path: Path, instance: DagsterInstance
) -> None:
    paths = DataPaths(tmp_path / "data")
    write_logs(paths, tmp_path / "raw", searches=1000, randomized_share=0.0)
    checks = _materialize(instance, paths)
    available = checks["correction_available"]
    assert not available.passed
    assert available.severity == AssetCheckSeverity.WARN
    assert "0 of 480 (query, document) pairs were served at more than one position" in (
        available.description
    )
    assert checks["fit_converged"].passed
