"""Progress through the real CLI: done/total lines on stderr, stdout unchanged and parseable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.progress import INTERVAL_ENV
from eval_pipelines_tests.cli.conftest import run_cli
from eval_pipelines_tests.cli.test_ingest_cli import GOOD_EXECUTION, write_jsonl

RATE_AND_ETA = re.compile(r"(, [\d,.]+/s)?(, ETA \d+:\d\d:\d\d)?$")


@pytest.fixture(autouse=True)
def every_update_is_due(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(INTERVAL_ENV, "0")


def test_evaluation_run_wait_reports_progress_on_stderr_only(world_copy: DataPaths) -> None:
    result = run_cli(
        world_copy.root, "evaluation", "run", "demo_prod", "--dataset", "demo-judgments", "--wait"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads(result.stdout)
    assert record["status"] == "completed" and record["evaluated_queries"] == 100
    label = f"evaluate demo_prod ({record['evaluation_id']}): "
    lines = [line for line in result.stderr.splitlines() if line.startswith(label)]
    assert lines[0] == label + "0/100 queries (0%)"
    assert lines[-1].startswith(label + "100/100 queries (100%), done in ")
    assert " - dagster - " not in result.stderr, "Dagster's own log stays quiet"
    assert label not in result.stdout


def test_ingest_reports_records_and_input_read_on_stderr(tmp_path: Path) -> None:
    rows = [{**GOOD_EXECUTION, "execution_id": f"exec_{i}"} for i in range(300)]
    executions = write_jsonl(tmp_path / "executions.jsonl", rows)
    result = run_cli(tmp_path / "data", "ingest", "executions", str(executions), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ingested"] == 300
    lines = [line for line in result.stderr.splitlines() if line.startswith("ingest executions: ")]
    assert lines[0] == "ingest executions: 0 records, 0% of the input read"
    assert (
        RATE_AND_ETA.sub("", lines[1]) == "ingest executions: 300 records, 100% of the input read"
    )
    assert lines[-1].startswith(
        "ingest executions: 300 records, 100% of the input read,"
        " checking across rows and storing next, done in "
    )


def test_a_bad_interval_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(INTERVAL_ENV, "soon")
    executions = write_jsonl(tmp_path / "executions.jsonl", [GOOD_EXECUTION])
    result = run_cli(tmp_path / "data", "ingest", "executions", str(executions))
    assert result.returncode == 2
    assert f"{INTERVAL_ENV}: expected a number of seconds >= 0, got 'soon'" in result.stderr
    assert not (tmp_path / "data" / "logs").exists()
