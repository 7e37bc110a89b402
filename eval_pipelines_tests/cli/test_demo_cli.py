"""`eval-pipelines demo`, `retrievers list` and `execution get`, run as a user would."""

import json
import re
import shutil
from pathlib import Path

from eval_pipelines_tests.cli.conftest import CliResult, run_cli
from eval_pipelines_tests.schemas import validation_errors

DEMO_IDS = ["demo_better", "demo_http", "demo_prod", "demo_prod_copy", "demo_worse"]


def example_execution(demo_output: str, retriever_id: str) -> str:
    row = next(line for line in demo_output.splitlines() if line.startswith(retriever_id + " "))
    return row.split()[-1]


def test_demo_builds_the_world_and_replays_every_retriever(
    small_demo: tuple[Path, CliResult],
) -> None:
    data_dir, result = small_demo
    assert "Building the demo world" in result.stderr
    for retriever_id in DEMO_IDS:
        row = next(
            line for line in result.stdout.splitlines() if line.startswith(retriever_id + " ")
        )
        assert " 200/200 " in row, row
    assert re.search(
        r"Demo world: [\d,]+ products, [\d,]+ logged searches, [\d,]+ interactions", result.stdout
    )
    assert (data_dir / "dagster_home" / "dagster.yaml").is_file()


def test_demo_reuses_an_existing_world(small_demo: tuple[Path, CliResult]) -> None:
    data_dir, _ = small_demo
    again = run_cli(data_dir, "demo")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Demo world found" in again.stderr
    assert "Building" not in again.stderr


def test_retrievers_list_shows_hashes_and_the_aa_control(
    small_demo: tuple[Path, CliResult],
) -> None:
    data_dir, _ = small_demo
    result = run_cli(data_dir, "retrievers", "list", "--json")
    assert result.returncode == 0, result.stderr
    listed = {r["id"]: r for r in json.loads(result.stdout)}
    assert sorted(listed) == DEMO_IDS
    assert listed["demo_prod"]["pipeline_hash"] == listed["demo_prod_copy"]["pipeline_hash"]
    assert listed["demo_prod"]["pipeline_hash"] != listed["demo_better"]["pipeline_hash"]
    assert listed["demo_http"]["kind"] == "http"
    table = run_cli(data_dir, "retrievers", "list")
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == ["id", "kind", "name", "target", "pipeline_hash"]


def test_execution_get_prints_a_valid_execution_detail(small_demo: tuple[Path, CliResult]) -> None:
    data_dir, demo_run = small_demo
    for retriever_id in ("demo_better", "demo_http"):
        execution_id = example_execution(demo_run.stdout, retriever_id)
        result = run_cli(data_dir, "execution", "get", retriever_id, execution_id)
        assert result.returncode == 0, result.stderr
        detail = json.loads(result.stdout)
        assert validation_errors("get_execution.openapi", "ExecutionDetail", detail) == []
        assert detail["execution_id"] == execution_id
        assert detail["retriever_id"] == retriever_id
        assert detail["status"] == "completed"
        assert detail["documents"] and all("document_id" in d for d in detail["documents"])
        assert detail["stage_statistics"]["stages"]


def test_execution_get_rejects_unknown_and_unsafe_ids(small_demo: tuple[Path, CliResult]) -> None:
    data_dir, _ = small_demo
    missing = run_cli(data_dir, "execution", "get", "demo_prod", "exec_does_not_exist")
    assert missing.returncode == 2
    assert "exec_does_not_exist" in missing.stderr
    unsafe = run_cli(data_dir, "execution", "get", "../demo_prod", "exec_x")
    assert unsafe.returncode == 2
    assert "retriever_id" in unsafe.stderr


def test_a_bad_retriever_file_is_named_with_its_field(
    small_demo: tuple[Path, CliResult], tmp_path: Path
) -> None:
    data_dir, _ = small_demo
    copy = tmp_path / "data"
    shutil.copytree(data_dir / "retrievers", copy / "retrievers")
    shutil.copytree(
        data_dir / "collections" / "products",
        copy / "collections" / "products",
        ignore=shutil.ignore_patterns("bm25"),
    )
    bad = copy / "retrievers" / "broken.yaml"
    bad.write_text(
        "id: broken\nkind: pipeline\ncollection: products\nstages:\n  - stage_id: teleport\n"
    )
    result = run_cli(copy, "retrievers", "list")
    assert result.returncode == 2
    assert "broken.yaml" in result.stderr
    assert "teleport" in result.stderr
    assert "demo_prod" in result.stdout
