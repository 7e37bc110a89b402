"""The code location loads, and the demo world builds through Dagster on a real instance."""

import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, DagsterInstance, materialize

from eval_pipelines.assets.demo import demo_assets
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.warehouse import query
from eval_pipelines.definitions import defs
from eval_pipelines.resources import DataDirResource, DemoWorldResource

PROJECT = Path(__file__).resolve().parents[2]


def test_definitions_validate_through_the_dagster_cli(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "EVAL_PIPELINES_DATA": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path),
    }
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Validation successful" in result.stdout + result.stderr


def test_demo_group_and_job_are_defined() -> None:
    repo = defs.get_repository_def()
    demo_keys = {a.key for a in demo_assets}
    assert {AssetKey(n) for n in ("demo_catalog", "demo_logs", "demo_judgments")} <= demo_keys
    assert all(repo.assets_defs_by_key[k].group_names_by_key[k] == "demo" for k in demo_keys)
    assert defs.resolve_job_def("build_demo_world").name == "build_demo_world"


def test_demo_assets_materialize_on_a_real_instance(
    tmp_path: Path, instance: DagsterInstance
) -> None:
    """Builds its own world on purpose: building it through the assets is what is tested."""
    paths = DataPaths(tmp_path / "data")
    result = materialize(
        demo_assets,
        instance=instance,
        resources={
            "data_dir": DataDirResource(path=str(paths.root)),
            "demo_world": DemoWorldResource(size="small"),
        },
    )
    assert result.success
    for asset_def in demo_assets:
        event = instance.get_latest_materialization_event(asset_def.key)
        assert event is not None, asset_def.key
        assert event.asset_materialization.metadata, f"{asset_def.key} has no metadata"

    assert sorted(p.stem for p in paths.retrievers_dir.glob("*.yaml")) == [
        "demo_better",
        "demo_http",
        "demo_prod",
        "demo_prod_copy",
        "demo_worse",
    ]
    counts = query(
        paths,
        "SELECT (SELECT count(*) FROM logged_executions) AS executions, "
        "(SELECT count(*) FROM interactions) AS interactions, "
        "(SELECT count(*) FROM collection_products) AS products",
    ).to_pylist()[0]
    assert counts["executions"] > 0
    assert counts["interactions"] > 0
    assert counts["products"] > 0
