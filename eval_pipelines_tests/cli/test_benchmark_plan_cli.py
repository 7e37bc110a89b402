"""`eval-pipelines benchmark plan` as a user runs it, on a copy of the small demo world: the table,
the JSON (its numbers recomputed here from the plan's own sd, icc and S), assumed-spread mode, bad
input (exit 2 naming the field), and that nothing is ever written to the data directory."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
from scipy.stats import norm

from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.cli.conftest import CliResult, run_cli

PLAN = ("benchmark", "plan")


def snapshot(root: Path) -> dict[str, str]:
    """Every directory and file under root, files with a digest of their content."""
    return {
        str(path.relative_to(root)): (
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        )
        for path in sorted(root.rglob("*"))
    }


def plan(world: DataPaths, *args: str, stdin: str | None = None) -> CliResult:
    """Run the plan, and check it left the data directory exactly as it was."""
    before = snapshot(world.root)
    if stdin is None:
        result = run_cli(world.root, *PLAN, *args)
    else:
        source = world.root.parent / "request.json"
        source.write_text(stdin, encoding="utf-8")
        result = run_cli(world.root, *PLAN, str(source), *args)
    assert snapshot(world.root) == before, "the plan wrote to the data directory"
    return result


@pytest.fixture(scope="module")
def world(small_world: DataPaths, tmp_path_factory: pytest.TempPathFactory) -> DataPaths:
    """One copy for the module: every plan must leave it untouched, and each call checks so."""
    paths = DataPaths(tmp_path_factory.mktemp("plan-world") / "data")
    shutil.copytree(small_world.root, paths.root)
    return paths


def mde(sessions: int, sd: float, icc: float, s: float, critical: float) -> float:
    return critical * sd * math.sqrt((1 + icc * (sessions - 1) * s) / sessions)


def test_the_plan_prints_a_readable_table(world: DataPaths) -> None:
    result = plan(world, "--baseline", "demo_prod", "--candidate", "demo_better")
    assert result.returncode == 0, result.stderr
    assert "pilot: replaying 200 sessions through demo_prod, demo_better" in result.stderr
    out = result.stdout
    assert out.startswith("Plan against demo_prod: alpha 0.05, power 0.8, inference by query")
    assert "sessions match the filter" in out and "Pilot: 200 sessions" in out
    assert "demo_better: sd " in out and "design effect at 1,000 sessions" in out
    for header in ("target delta", "sessions needed", "80% range", "expected queries", "MDE"):
        assert header in out
    for target in ("0.0100", "0.0200", "0.0500"):
        assert f"\n  {target} " in out
    assert " (pilot) " in out
    assert "\nAssumptions: Sessions are drawn at random" in out
    assert not (world.root / "benchmarks").exists()
    assert not world.executions_dir.exists()
    assert not world.dagster_home.exists()


def test_the_json_plan_holds_numbers_that_follow_from_its_inputs(world: DataPaths) -> None:
    result = plan(
        world,
        "--baseline",
        "demo_prod",
        "--candidate",
        "demo_better",
        "--candidate",
        "demo_worse",
        "--delta",
        "0.03",
        "--delta",
        "0.06",
        "--power",
        "0.9",
        "--alpha",
        "0.01",
        "--seed",
        "3",
        "--pilot-sessions",
        "300",
        "--retriever-filter",
        "demo_prod",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert set(found) == {
        "baseline_retriever_id",
        "candidate_retriever_ids",
        "source",
        "settings",
        "population",
        "pilot",
        "plans",
        "assumptions",
        "warnings",
    }
    assert found["source"] == "pilot" and found["warnings"] == []
    settings = found["settings"]
    assert settings["family_size"] == 2 and settings["seed"] == 3
    assert settings["pilot_sessions"] == 300 and found["pilot"]["sampled"] == 300
    assert settings["critical_value"] == pytest.approx(norm.ppf(1 - 0.01 / 4))
    assert settings["power_quantile"] == pytest.approx(norm.ppf(0.9))
    critical = settings["critical_value"] + settings["power_quantile"]
    population = found["population"]
    s, total = population["concentration"], population["sessions"]
    assert 0 < s < 1 and total > 1000
    assert [p["candidate_retriever_id"] for p in found["plans"]] == ["demo_better", "demo_worse"]
    for item in found["plans"]:
        assert item["problem"] is None and item["source"] == "pilot"
        sd, icc = item["sd"], item["icc_used"]
        assert icc == item["icc"] and 0 <= icc <= 1 and sd > 0
        assert item["pilot"]["sessions"] == 300
        assert item["design_effect_at_1000"] == pytest.approx(1 + icc * 999 * s)
        assert item["mde_floor"] == pytest.approx(critical * sd * math.sqrt(icc * s))
        assert [t["delta"] for t in item["targets"]] == [0.03, 0.06]
        for target in item["targets"]:
            needed = target["sessions_needed"]
            if needed is None:
                assert target["delta"] <= item["mde_floor"] and not target["feasible"]
                continue
            assert mde(needed, sd, icc, s, critical) <= target["delta"] + 1e-12
            if needed > population["minimum_sessions"]:
                assert mde(needed - 1, sd, icc, s, critical) > target["delta"]
            assert target["feasible"] == (needed <= total)
            low, high = target["sessions_range"]
            assert low is not None and (high is None or low <= high)
        sizes = [row["sessions"] for row in item["mde"]]
        assert sizes == sorted({min(n, total) for n in (100, 500, 1000, 2000, 5000, 10_000)})
        for row in item["mde"]:
            assert row["mde"] == pytest.approx(mde(row["sessions"], sd, icc, s, critical))
            assert row["design_effect"] == pytest.approx(1 + icc * (row["sessions"] - 1) * s)
            assert row["mde_range"][0] <= row["mde_range"][1]


def test_an_assumed_spread_plans_without_a_pilot(world: DataPaths) -> None:
    result = plan(
        world,
        "--baseline",
        "demo_prod",
        "--sd",
        "0.25",
        "--icc",
        "0.07",
        "--delta",
        "0.05",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert "pilot" not in result.stderr
    found = json.loads(result.stdout)
    assert found["source"] == "assumed" and found["pilot"] is None
    assert found["candidate_retriever_ids"] == [] and found["settings"]["family_size"] == 1
    (item,) = found["plans"]
    assert item["candidate_retriever_id"] is None and item["pilot"] is None
    assert (item["sd"], item["icc"]) == (0.25, 0.07)
    s = found["population"]["concentration"]
    k = ((norm.ppf(0.975) + norm.ppf(0.8)) * 0.25 / 0.05) ** 2
    (target,) = item["targets"]
    assert target["sessions_needed"] == math.ceil(k * (1 - 0.07 * s) / (1 - k * 0.07 * s))
    assert target["sessions_range"] is None and item["mde"][0]["mde_range"] is None

    # A request's candidates then only set the Holm family: none of them is replayed.
    request = {
        "baseline_retriever_id": "demo_prod",
        "candidate_retriever_ids": ["demo_better", "demo_worse", "demo_http"],
        "session_filter": {"taxonomy_node_ids": ["bags-04"]},
    }
    family = plan(world, "--sd", "0.25", "--icc", "0.07", stdin=json.dumps(request))
    assert family.returncode == 0, family.stderr
    assert "pilot" not in family.stderr
    assert "alpha 0.05 over 3 candidates (Holm)" in family.stdout
    assert "assumed spread: sd 0.2500, icc 0.0700" in family.stdout


def test_a_candidate_the_pilot_cannot_plan_exits_3(world: DataPaths) -> None:
    result = plan(world, "--baseline", "demo_prod", "--candidate", "demo_prod_copy")
    assert result.returncode == 3, result.stderr
    assert "demo_prod_copy: no plan: the candidate ranks exactly like the baseline" in result.stdout


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--baseline", "demo_prod", "--sd", "0.2"], None, "--sd: given without icc"),
        (["--baseline", "demo_prod", "--icc", "0.2"], None, "--icc: given without sd"),
        (
            ["--baseline", "demo_prod", "--candidate", "demo_better", "--delta", "0"],
            None,
            "--delta[0]: 0.0 must be a number > 0 and <= 1",
        ),
        (
            ["--candidate", "demo_better", "--delta", "0.02", "--delta", "-0.1"],
            '{"baseline_retriever_id": "demo_prod"}',
            "--delta[1]: -0.1 must be a number > 0",
        ),
        (
            ["--baseline", "demo_prod", "--candidate", "demo_better", "--power", "1"],
            None,
            "--power: 1.0 must lie strictly between 0 and 1",
        ),
        (
            ["--baseline", "demo_prod", "--sd", "nan", "--icc", "1.5", "--alpha", "0"],
            None,
            "--alpha: 0.0 must lie strictly between 0 and 1\n  --sd: nan must be a finite"
            " number > 0\n  --icc: 1.5 must lie between 0 and 1",
        ),
        (
            ["--baseline", "demo_prod", "--candidate", "demo_better", "--pilot-sessions", "5"],
            None,
            "--pilot-sessions: expected an integer from 10 to 10,000, got 5",
        ),
        (
            ["--baseline", "demo_prod", "--sd", "0.2", "--icc", "0.1", "--pilot-sessions", "300"],
            None,
            "--pilot-sessions: no pilot is replayed when sd and icc are given",
        ),
        (["--baseline", "demo_prod"], None, "candidate_retriever_ids: missing"),
        (
            ["--baseline", "demo_prod", "--candidate", "nope"],
            None,
            "candidate_retriever_ids.0: unknown retriever 'nope'",
        ),
        (
            ["--baseline", "nope", "--sd", "0.2", "--icc", "0.1"],
            None,
            "baseline_retriever_id: unknown retriever 'nope'",
        ),
        ([], '{"baseline_retriever_id": "demo_prod",', "request.json:1: invalid JSON"),
        (
            ["--baseline", "demo_prod", "--candidate", "demo_better"],
            '{"session_filter": {"time_range": {"start": "2026-12-01T00:00:00Z",'
            ' "end": "2026-01-01T00:00:00Z"}}}',
            "session_filter.time_range: start 2026-12-01T00:00:00Z is after end",
        ),
        (
            ["--baseline", "demo_prod", "--candidate", "demo_better"],
            '{"session_filter": {"time_range": {"start": "2031-01-01T00:00:00Z"}}}',
            "session_filter: no logged session matches the filter",
        ),
    ],
)
def test_bad_input_exits_2_naming_the_field_and_writes_nothing(
    world: DataPaths, args: list[str], stdin: str | None, message: str
) -> None:
    result = plan(world, *args, stdin=stdin)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert result.stdout == ""
