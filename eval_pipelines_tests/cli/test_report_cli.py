"""`eval-pipelines report` as a user runs it, in a real subprocess over a copy of the small demo:
the report written where asked (or into the partition) with its path on stdout, the same bytes as
the in-process build, and exit 2 with nothing written for every id it cannot report on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.reports.html.build import build_report
from eval_pipelines_tests.cli.conftest import CliResult, run_cli, run_cli_at_once


def _records(data_dir: Path, kind: str) -> dict[str, dict[str, Any]]:
    return {
        path.parent.name: json.loads(path.read_text())["record"]
        for path in sorted((data_dir / kind).glob("*/record.json"))
    }


def _earliest(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The demo's own record: other tests share this world and may add records like it."""
    return min((r for r in records if r["status"] == "completed"), key=lambda r: r["created_at"])


@pytest.fixture(scope="module")
def world(small_demo: tuple[Path, CliResult], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A private copy (reports are written into partitions), with the demo's ids."""
    data_dir = tmp_path_factory.mktemp("report-cli") / "data"
    shutil.copytree(small_demo[0], data_dir, ignore=shutil.ignore_patterns("report.html"))
    records = _records(data_dir, "benchmarks").values()
    benchmark = _earliest(
        [r for r in records if r["benchmark_name"] == "demo: production vs candidates"]
    )
    evaluations = list(_records(data_dir, "evaluations").values())
    evaluations = {
        retriever: _earliest([r for r in evaluations if r["retriever_id"] == retriever])[
            "evaluation_id"
        ]
        for retriever in ("demo_better", "demo_prod")
    }
    return {"data_dir": data_dir, "benchmark": benchmark["benchmark_id"], **evaluations}


def _reports(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob("*/*/report.html"))


def test_a_benchmark_report_is_written_into_its_partition_and_its_path_printed(world: dict) -> None:
    data_dir = world["data_dir"]
    result = run_cli(data_dir, "report", world["benchmark"])
    assert result.returncode == 0, result.stderr[-3000:]
    path = data_dir / "benchmarks" / world["benchmark"] / "report.html"
    assert result.stdout == f"{path}\n"
    expected = build_report(DataPaths(data_dir), world["benchmark"]).html
    assert path.read_text(encoding="utf-8") == expected  # another process, the same bytes


def test_an_evaluation_report_against_a_baseline_goes_to_output(
    world: dict, tmp_path: Path
) -> None:
    output = tmp_path / "better-vs-prod.html"
    result = run_cli(
        world["data_dir"],
        "report",
        world["demo_better"],
        "--against",
        world["demo_prod"],
        "--output",
        str(output),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == f"{output}\n"
    html = output.read_text(encoding="utf-8")
    assert 'data-plot="query-scatter"' in html and 'id="drill-down"' in html
    assert not (world["data_dir"] / "evaluations" / world["demo_better"] / "report.html").exists()


def _run_all(data_dir: Path, cases: dict[str, list[str]]) -> dict[str, CliResult]:
    """`eval-pipelines report` for every case at once."""
    return run_cli_at_once(data_dir, {name: ["report", *args] for name, args in cases.items()})


def _pending_benchmark(data_dir: Path) -> str:
    created = run_cli(
        data_dir,
        "benchmark",
        "create",
        "--name",
        "queued",
        "--baseline",
        "demo_prod",
        "--candidate",
        "demo_better",
        "--sessions",
        "20",
    )
    assert created.returncode == 0, created.stderr
    return json.loads(created.stdout)["benchmark_id"]


def test_every_id_it_cannot_report_on_exits_2_naming_why_and_writes_nothing(
    world: dict, tmp_path: Path
) -> None:
    data_dir = world["data_dir"]
    pending = _pending_benchmark(data_dir)
    before = _reports(data_dir)
    output = tmp_path / "never.html"
    cases = {
        "unknown": (["no-such-id"], "id: no benchmark or evaluation 'no-such-id'"),
        "invalid id": (["../etc"], "id: '../etc' is not a valid id"),
        "pending": ([pending], f"{pending} is pending, not completed"),
        "against for a benchmark": (
            [world["benchmark"], "--against", world["demo_prod"]],
            f"--against: {world['benchmark']} is a benchmark",
        ),
        "against a benchmark": (
            [world["demo_better"], "--against", world["benchmark"]],
            f"--against: {world['benchmark']} is a benchmark; name a completed evaluation",
        ),
        "against unknown": (
            [world["demo_better"], "--against", "no-such-eval"],
            "--against: no benchmark or evaluation 'no-such-eval'",
        ),
        "output folder missing": (
            [world["benchmark"], "--output", str(tmp_path / "absent" / "r.html")],
            f"--output: the folder {tmp_path / 'absent'} does not exist",
        ),
        "output is a folder": (
            [world["benchmark"], "--output", str(tmp_path)],
            f"--output: {tmp_path} is a directory",
        ),
    }
    results = _run_all(
        data_dir,
        {
            name: args if "--output" in args else [*args, "--output", str(output)]
            for name, (args, _) in cases.items()
        },
    )
    for name, (_, message) in cases.items():
        result = results[name]
        assert (result.returncode, result.stdout) == (2, ""), (name, result.stderr)
        assert message in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr, name
    assert not output.exists()
    assert _reports(data_dir) == before
