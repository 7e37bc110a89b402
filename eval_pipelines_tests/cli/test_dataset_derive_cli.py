"""`eval-pipelines dataset derive NAME --from-logs` in a real subprocess: flags checked, the refusal
when the logs cannot correct for position, and a derived dataset an evaluation runs on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.cli.conftest import CliResult, run_cli
from eval_pipelines_tests.conftest import copy_world
from eval_pipelines_tests.core.datasets.fixed_page_logs import write_fixed_page_logs


@pytest.fixture
def fixed_page_data(tmp_path: Path) -> Path:
    paths = DataPaths(tmp_path / "data")
    write_fixed_page_logs(paths, tmp_path)
    return paths.root


def _no_dataset_written(data_dir: Path) -> None:
    datasets = data_dir / "datasets"
    assert not datasets.exists() or list(datasets.iterdir()) == []


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (["--min-impressions", "0"], "--min-impressions: must be >= 1, got 0"),
        (
            ["--min-impressions", "twenty"],
            "--min-impressions: expected a whole number, got 'twenty'",
        ),
        (["--grade-thresholds", "0.3,0.1"], "--grade-thresholds: must be strictly increasing"),
        (["--grade-thresholds", "0.1,,0.3"], "--grade-thresholds: '' is not a number"),
        (["--grade-thresholds", "-1"], "--grade-thresholds: -1.0 must be finite and > 0"),
        (["--min-exposure", "-1"], "--min-exposure: expected a finite number >= 0, got '-1'"),
        (["--min-exposure", "nan"], "--min-exposure: expected a finite number >= 0, got 'nan'"),
        (["--min-exposure", "lots"], "--min-exposure: expected a number, got 'lots'"),
        (
            ["--min-impressions", "31", "--allow-uncorrected"],
            "--min-impressions, --min-exposure: no (query, document) pair was served 31 times with"
            " an exposure of 10 (the most any pair was served is 30, the largest exposure 30);"
            " lower them",
        ),
        (
            ["--min-exposure", "30.5", "--allow-uncorrected"],
            "--min-impressions, --min-exposure: no (query, document) pair was served 10 times with"
            " an exposure of 30.5 (the most any pair was served is 30, the largest exposure 30);"
            " lower them",
        ),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    fixed_page_data: Path, flags: list[str], problem: str
) -> None:
    result = run_cli(fixed_page_data, "dataset", "derive", "d", "--from-logs", *flags)
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert problem in result.stderr
    _no_dataset_written(fixed_page_data)


def test_from_logs_is_required_and_logs_must_exist(tmp_path: Path) -> None:
    missing_source = run_cli(tmp_path / "data", "dataset", "derive", "d")
    assert missing_source.returncode == 2 and "--from-logs" in missing_source.stderr
    no_logs = run_cli(tmp_path / "data", "dataset", "derive", "d", "--from-logs")
    assert no_logs.returncode == 2
    assert "no logged executions were ingested" in no_logs.stderr
    _no_dataset_written(tmp_path / "data")


def test_refuses_without_correction_unless_allowed_and_says_so(fixed_page_data: Path) -> None:
    refused = run_cli(fixed_page_data, "dataset", "derive", "d", "--from-logs")
    assert (refused.returncode, refused.stdout) == (2, ""), refused.stderr
    assert "cannot correct for position" in refused.stderr
    assert "--allow-uncorrected" in refused.stderr
    _no_dataset_written(fixed_page_data)

    allowed = run_cli(
        fixed_page_data, "dataset", "derive", "d", "--from-logs", "--allow-uncorrected"
    )
    assert allowed.returncode == 0, allowed.stderr
    summary = json.loads(allowed.stdout)
    facts = summary["derivation"]
    assert (summary["format"], summary["query_count"], summary["judgment_count"]) == ("logs", 1, 5)
    assert facts["corrected"] is False and facts["click_model_id"].startswith("pbm-")
    assert (
        f"1 queries, 5 judgments (3 with grade >= 1), NOT corrected for position, from click model"
        f" {facts['click_model_id']} (log snapshot {facts['snapshot_id']}); 5 of 10 pairs had"
        " fewer than 10 impressions (5) or an exposure below 10.0 (another 0) and 1 queries had"
        " no pair with enough"
    ) in allowed.stderr

    again = run_cli(fixed_page_data, "dataset", "derive", "d", "--from-logs", "--allow-uncorrected")
    assert again.returncode == 2 and "dataset d exists; use --replace" in again.stderr
    listed = run_cli(fixed_page_data, "dataset", "list")
    assert f"{facts['click_model_id']} UNCORRECTED, impressions >= 10" in listed.stdout
    assert "exposure >= 10.0" in listed.stdout


def test_derived_dataset_runs_an_evaluation(
    small_demo: tuple[Path, CliResult], tmp_path: Path
) -> None:
    data_dir = copy_world(DataPaths(small_demo[0]), tmp_path).root
    derived = run_cli(data_dir, "dataset", "derive", "from-logs", "--from-logs")
    assert derived.returncode == 0, derived.stderr
    summary = json.loads(derived.stdout)
    assert summary["derivation"]["corrected"] is True
    assert summary["query_count"] > 0 and summary["relevant_count"] > 0
    assert f"from click model {summary['derivation']['click_model_id']}" in derived.stderr

    run = run_cli(
        data_dir, "evaluation", "run", "demo_prod", "--dataset", "from-logs", "--k", "10", "--wait"
    )
    assert run.returncode == 0, run.stderr[-2000:]
    record = json.loads(run.stdout)
    assert record["status"] == "completed"
    assert 0.0 < record["metrics_by_k"]["10"]["ndcg"] <= 1.0
