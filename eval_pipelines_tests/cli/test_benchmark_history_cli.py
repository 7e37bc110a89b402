"""`eval-pipelines benchmark history` (issue 15 point 5) through the real console script.

Two small benchmarks of demo_better against demo_prod run with `create --wait`, demo_better's YAML
edited between them (its pipeline hash changes), plus a record.json broken by hand: the history lists
the two in completion order with each record's numbers, marks the change, counts the broken record,
plots one marker per benchmark, and refuses bad input with exit 2 and nothing written.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.cli.conftest import CLI, CliResult, run_cli
from eval_pipelines_tests.conftest import copy_world

BASELINE, CANDIDATE = "demo_prod", "demo_better"
HISTORY = ("benchmark", "history", "--baseline", BASELINE, "--candidate", CANDIDATE)
BROKEN = "bench_00000000beef"
SVG = "{http://www.w3.org/2000/svg}"


def create(paths: DataPaths, name: str, sessions: int, seed: int) -> dict[str, Any]:
    created = run_cli(
        paths.root,
        *("benchmark", "create", "--name", name, "--baseline", BASELINE, "--candidate", CANDIDATE),
        *("--sessions", str(sessions), "--seed", str(seed), "--wait"),
    )
    record = json.loads(created.stdout)
    assert record["status"] == "completed", created.stderr[-2000:]
    return record


_built: list[tuple[DataPaths, list[dict[str, Any]]]] = []


@pytest.fixture(scope="session")
def history_world(
    small_world: DataPaths, tmp_path_factory: pytest.TempPathFactory
) -> tuple[DataPaths, list[dict[str, Any]]]:
    """The world and its two real records, oldest first. Built once per session: the core tests
    import this fixture (getting a definition of their own) and reuse the same world."""
    if _built:
        return _built[0]
    paths = copy_world(small_world, tmp_path_factory.mktemp("history-world"))
    first = create(paths, "history one", 20, 1)
    config_file = paths.retrievers_dir / f"{CANDIDATE}.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["stages"][1]["parameters"]["weights"]["rating"] = 0.6
    config_file.write_text(yaml.safe_dump(config))
    second = create(paths, "history two", 30, 2)
    broken = paths.root / "benchmarks" / BROKEN
    broken.mkdir()
    (broken / "record.json").write_text('{"record": ')
    _built.append((paths, [first, second]))
    return _built[0]


def run_cli_on_a_terminal(data_dir: Path, *args: str) -> CliResult:
    """The console script with stdout on a pseudo-terminal, as a user at a shell runs it."""
    leader, follower = pty.openpty()
    env = {**os.environ, "EVAL_PIPELINES_DATA": str(data_dir), "COLUMNS": "300"}
    env.pop("DAGSTER_HOME", None)
    process = subprocess.Popen(
        [str(CLI), *args], env=env, stdout=follower, stderr=subprocess.PIPE, text=True
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO once the child has closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    stderr = process.stderr.read()
    returncode = process.wait(timeout=120)
    os.close(leader)
    return CliResult(returncode, b"".join(chunks).decode().replace("\r\n", "\n"), stderr)


def comparison_of(record: dict[str, Any]) -> dict[str, Any]:
    (item,) = record["comparison"]["comparisons"]
    return item


def test_json_to_a_pipe_lists_each_benchmark_in_order_with_its_records_numbers(
    history_world: tuple[DataPaths, list[dict[str, Any]]],
) -> None:
    paths, records = history_world
    result = run_cli(paths.root, *HISTORY)

    assert result.returncode == 0, result.stderr
    points = json.loads(result.stdout)
    assert [p["benchmark_id"] for p in points] == [r["benchmark_id"] for r in records]
    for point, record in zip(points, records, strict=True):
        item = comparison_of(record)
        hashes = {r["retriever_id"]: r["pipeline_hash"] for r in record["results"]}
        assert point["delta"] == item["effect"]["delta"]
        assert [point["ci_low"], point["ci_high"]] == item["confidence_interval"]
        assert point["p_value_adjusted"] == item["p_value_adjusted"]
        assert (point["verdict"], point["estimator"]) == (item["verdict"], item["estimator"])
        assert point["sessions"] == item["paired_sessions"]
        assert point["completed_at"] == record["completed_at"]
        assert point["candidate_pipeline_hash"] == hashes[CANDIDATE]
        assert point["baseline_pipeline_hash"] == hashes[BASELINE]
    assert [(p["baseline_changed"], p["candidate_changed"]) for p in points] == [
        (False, False),
        (False, True),
    ]
    assert "skipped 1 benchmark record(s)" in result.stderr
    assert f"benchmarks/{BROKEN}: record.json: not valid JSON" in result.stderr


def test_a_terminal_gets_the_table_and_plot_holds_one_marker_per_benchmark(
    history_world: tuple[DataPaths, list[dict[str, Any]]], tmp_path: Path
) -> None:
    paths, records = history_world
    plot = tmp_path / "plots" / "history.svg"
    result = run_cli_on_a_terminal(paths.root, *HISTORY, "--plot", str(plot))

    assert result.returncode == 0, result.stderr
    header, rule, *rows = result.stdout.strip().splitlines()
    assert set(rule) == {"-", " "}
    assert header.split()[:4] == ["completed", "(UTC)", "benchmark_id", "name"]
    assert [row.split()[2] for row in rows] == [r["benchmark_id"] for r in records]
    assert "history two" in rows[1] and rows[1].endswith("candidate changed")
    assert "changed" not in rows[0]
    assert f"{comparison_of(records[1])['effect']['delta']:+.4f}" in rows[1]
    assert f"wrote the history plot to {plot}" in result.stderr
    assert f"benchmarks/{BROKEN}" in result.stderr
    root = ET.fromstring(plot.read_text())
    assert root.tag == f"{SVG}svg"
    used = [
        len(group.findall(f".//{SVG}use"))
        for group in root.iter(f"{SVG}g")
        if (group.get("id") or "").startswith("history-verdict-")
    ]
    assert sum(used) == len(records)
    assert "candidate changed" in plot.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--baseline", "demo prod", "--candidate", CANDIDATE),
            "error: --baseline: 'demo prod' is not a valid id",
        ),
        (
            ("--baseline", BASELINE, "--candidate", "demo_worse"),
            "error: no completed benchmark has baseline 'demo_prod' and candidate 'demo_worse';"
            " completed benchmarks of that baseline compare: demo_better",
        ),
        (
            ("--baseline", BASELINE, "--candidate", CANDIDATE, "--plot", "{tmp}/history.png"),
            "error: --plot: {tmp}/history.png must name an .svg file",
        ),
    ],
)
def test_bad_input_exits_2_with_the_reason_and_writes_nothing(
    history_world: tuple[DataPaths, list[dict[str, Any]]],
    tmp_path: Path,
    args: tuple[str, ...],
    message: str,
) -> None:
    paths, _ = history_world
    args = tuple(a.replace("{tmp}", str(tmp_path)) for a in args)
    result = run_cli(paths.root, "benchmark", "history", *args)

    assert result.returncode == 2
    assert message.replace("{tmp}", str(tmp_path)) in result.stderr
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []
