"""`eval-pipelines click-model show` in a subprocess: the curve, its evidence, and plain words when the
correction is unavailable."""

from __future__ import annotations

import json
from pathlib import Path

from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.cli.conftest import run_cli
from eval_pipelines_tests.core.click_model.pbm_logs import THETA, write_logs


def test_show_prints_the_curve_and_json_of_the_same_model(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "data")
    write_logs(paths, tmp_path / "raw", searches=3000)
    human = run_cli(paths.root, "click-model", "show")
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert lines[0].startswith("click model pbm-")
    assert "searches 3,000" in lines[1]
    header = next(line for line in lines if line.startswith("position"))
    assert header.split() == [
        "position", "propensity", "95%", "CI", "impressions", "clicks", "varied", "randomized",
        "randomized", "estimate", "randomized", "95%", "CI",
    ]  # fmt: skip
    first = next(line for line in lines if line.startswith("1 "))
    assert first.split()[:3] == ["1", "1.000", "[1.000,"]
    assert "correction available: positions 1..12 meet the rule" in human.stdout
    shown = run_cli(paths.root, "click-model", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    model = json.loads(shown.stdout)
    assert lines[0].split()[2] == model["model_id"]
    assert model["available"] is True and model["reason"] is None
    curve = [row["propensity"] for row in model["propensities"]]
    assert len(curve) == THETA.size
    row2 = next(line for line in lines if line.startswith("2 "))
    assert row2.split()[1] == f"{curve[1]:.3f}"
    assert model["fit"]["bootstrap_draws"] == 100 and model["fit"]["seed"] == 13


def test_show_says_plainly_when_the_correction_is_unavailable(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "data")
    write_logs(paths, tmp_path / "raw", searches=1000, randomized_share=0.0)
    result = run_cli(paths.root, "click-model", "show")
    assert result.returncode == 0, result.stderr
    assert (
        "correction unavailable: 0 of 480 (query, document) pairs were served at more than one "
        "position and no search was randomized: examination cannot be separated from relevance"
    ) in result.stdout
    shown = json.loads(run_cli(paths.root, "click-model", "show", "--json").stdout)
    assert shown["available"] is False
    assert all(row["propensity"] is None for row in shown["propensities"])


def test_show_without_logs_exits_2_naming_the_directory(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "data", "click-model", "show")
    assert result.returncode == 2
    assert "logs/executions: no logged executions; ingest logs first" in result.stderr
    assert not (tmp_path / "data" / "click_models").exists()
