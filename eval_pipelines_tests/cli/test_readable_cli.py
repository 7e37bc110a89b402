"""`benchmark|evaluation get|list|export` read like a tool: a summary on a terminal (a real pty),
the JSON record for scripts (a pipe, or --json), and scores as CSV."""

from __future__ import annotations

import io
import json
import math
import os
import pty
import re
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pyarrow.csv as pa_csv
import pytest

from eval_pipelines.core.benchmarks.submit import benchmark_store
from eval_pipelines.core.evaluations.submit import evaluation_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.reports.verdict_table import verdict_rows
from eval_pipelines_tests.cli.conftest import CLI, CliResult, run_cli

DEMO_BENCHMARK = "demo: production vs candidates"
# The summary rounds values and deltas to 4 decimals and p-values to 3 significant digits.
VALUE_TOLERANCE = 5.1e-5


def run_on_terminal(data_dir: Path, *args: str, timeout: float = 120) -> CliResult:
    """Run the real console script with stdout on a pseudo-terminal, as a user at a shell does."""
    env = {**os.environ, "EVAL_PIPELINES_DATA": str(data_dir)}
    env.pop("DAGSTER_HOME", None)
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [str(CLI), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        stderr = process.stderr.read().decode() if process.stderr else ""
        returncode = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    return CliResult(returncode, b"".join(chunks).decode().replace("\r\n", "\n"), stderr)


@pytest.fixture(scope="module")
def demo_records(small_demo: tuple[Path, CliResult]) -> tuple[Path, dict, list[dict]]:
    data_dir, _ = small_demo
    paths = DataPaths(data_dir)
    store = benchmark_store(paths)
    # Other CLI tests share this world and may add benchmarks of the same name: take the demo's own.
    benchmark = min(
        (
            r
            for r in (store.get(i) for i in store.ids())
            if r["benchmark_name"] == DEMO_BENCHMARK and r["status"] == "completed"
        ),
        key=lambda r: r["created_at"],
    )
    evaluations = evaluation_store(paths)
    completed = [evaluations.get(i) for i in evaluations.ids()]
    return data_dir, benchmark, [r for r in completed if r["status"] == "completed"]


def _cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def _close(cell: str, value: float | None) -> bool:
    if value is None:
        return cell == "-"
    return math.isclose(float(cell), value, rel_tol=5e-3, abs_tol=VALUE_TOLERANCE)


def test_benchmark_get_on_a_terminal_prints_the_verdict_table(
    demo_records: tuple[Path, dict, list[dict]],
) -> None:
    data_dir, record, _ = demo_records
    shown = run_on_terminal(data_dir, "benchmark", "get", record["benchmark_id"])
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"Benchmark {DEMO_BENCHMARK!r} ({record['benchmark_id']}): completed"
    assert not shown.stdout.lstrip().startswith("{")
    header = next(i for i, line in enumerate(lines) if line.startswith("candidate "))
    table = [_cells(line) for line in lines[header + 2 :] if line.strip()]
    rows = verdict_rows(record)
    assert len(rows) == 4 * 8
    for row, cells in zip(rows, table, strict=False):
        metric = "NDCG" if row["metric"] == "ndcg" else row["metric"]
        assert cells[:2] == [row["candidate_retriever_id"], f"{metric}@{row['k']}"], cells
        for cell, value in zip(
            cells[2:5], (row["baseline_value"], row["candidate_value"], row["delta"]), strict=True
        ):
            assert _close(cell, value), (cells, row)
        if not row["tested"]:
            assert cells[5:] == ["-"] * 5, cells
            continue
        low, high = (float(x) for x in cells[5].strip("[]").split(", "))
        assert _close(str(low), row["ci_low"]) and _close(str(high), row["ci_high"])
        for cell, value in zip(
            cells[6:10],
            (row["p_value"], row["p_value_holm"], row["effect_size"], row["mde"]),
            strict=True,
        ):
            assert _close(cell, value), (cells, row)
        assert cells[10] == row["verdict"]
        assert cells[11] == f"{100 * row['failure_rate']:.1f}%"
        assert _close(cells[12], row["latency_p50_ms"]) or float(cells[12]) == round(
            row["latency_p50_ms"], 2
        )
    assert record["comparison"]["recommendation"] in lines
    for warning in record["warnings"]:
        assert f"- {warning}" in lines
    verdicts = {row["verdict"] for row in rows}
    assert {"better", "not_testable"} <= verdicts


def test_benchmark_get_prints_the_json_record_to_a_pipe_and_with_json_on_a_terminal(
    demo_records: tuple[Path, dict, list[dict]],
) -> None:
    data_dir, record, _ = demo_records
    piped = run_cli(data_dir, "benchmark", "get", record["benchmark_id"])
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout) == record
    asked = run_on_terminal(data_dir, "benchmark", "get", record["benchmark_id"], "--json")
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout) == record
    missing = run_on_terminal(data_dir, "benchmark", "get", "bench_nope")
    assert missing.returncode == 2
    assert "benchmark_id: no benchmark 'bench_nope'" in missing.stderr


def test_evaluation_get_on_a_terminal_prints_each_measure_at_each_k(
    demo_records: tuple[Path, dict, list[dict]],
) -> None:
    data_dir, _, evaluations = demo_records
    record = evaluations[0]
    shown = run_on_terminal(data_dir, "evaluation", "get", record["evaluation_id"])
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == (
        f"Evaluation '{record['retriever_id']} on {record['dataset_name']}'"
        f" ({record['evaluation_id']}): completed"
    )
    header = next(i for i, line in enumerate(lines) if line.startswith("measure "))
    ks = [cell.lstrip("@") for cell in _cells(lines[header])[1:]]
    assert ks == sorted(record["metrics_by_k"], key=int)
    table = {cells[0]: cells[1:] for cells in map(_cells, lines[header + 2 :]) if cells[0]}
    assert set(table) == set(record["metrics_by_k"][ks[0]])
    for measure, cells in table.items():
        for k, cell in zip(ks, cells, strict=True):
            assert _close(cell, record["metrics_by_k"][k][measure]), (measure, k, cell)
    piped = run_cli(data_dir, "evaluation", "get", record["evaluation_id"])
    assert json.loads(piped.stdout) == record
    asked = run_on_terminal(data_dir, "evaluation", "get", record["evaluation_id"], "--json")
    assert json.loads(asked.stdout) == record


def test_lists_name_every_record(demo_records: tuple[Path, dict, list[dict]]) -> None:
    data_dir, benchmark, evaluations = demo_records
    listed = run_on_terminal(data_dir, "benchmark", "list")
    assert listed.returncode == 0, listed.stderr
    header, _, *rows = listed.stdout.splitlines()
    assert _cells(header)[:3] == ["benchmark_id", "name", "status"]
    assert [benchmark["benchmark_id"], DEMO_BENCHMARK, "completed"] in [
        _cells(row)[:3] for row in rows
    ]
    table = run_on_terminal(data_dir, "evaluation", "list")
    header, _, *rows = table.stdout.splitlines()
    assert _cells(header)[:3] == ["evaluation_id", "name", "status"]
    for record in evaluations:
        name = f"{record['retriever_id']} on {record['dataset_name']}"
        assert [record["evaluation_id"], name, "completed"] in [_cells(row)[:3] for row in rows]


def _csv_rows(text: str) -> list[dict[str, Any]]:
    return pa_csv.read_csv(io.BytesIO(text.encode())).to_pylist()


def test_benchmark_export_writes_every_session_score_as_csv(
    demo_records: tuple[Path, dict, list[dict]], tmp_path: Path
) -> None:
    data_dir, record, _ = demo_records
    benchmark_id = record["benchmark_id"]
    streamed = run_cli(data_dir, "benchmark", "export", benchmark_id, "--format", "csv")
    assert streamed.returncode == 0, streamed.stderr
    written = tmp_path / "scores.csv"
    to_file = run_cli(data_dir, "benchmark", "export", benchmark_id, "--output", str(written))
    assert to_file.returncode == 0, to_file.stderr
    assert written.read_text() == streamed.stdout
    stored = benchmark_store(DataPaths(data_dir)).read_table(benchmark_id, "session_scores")
    assert f"wrote {stored.num_rows} session scores" in to_file.stderr
    exported = {(r["execution_id"], r["retriever_id"]): r for r in _csv_rows(streamed.stdout)}
    assert len(exported) == stored.num_rows == record["session_count"] * 5
    for row in stored.to_pylist():
        got = exported[(row["execution_id"], row["retriever_id"])]
        assert got["ndcg_at_10"] == pytest.approx(row["ndcg_at_10"], abs=1e-12)
        assert got["status"] == row["status"]
        assert json.loads(got["stage_latencies"]) == pytest.approx(dict(row["stage_latencies"]))


def test_evaluation_export_csv_holds_the_per_query_scores_the_record_averages(
    demo_records: tuple[Path, dict, list[dict]],
) -> None:
    data_dir, _, evaluations = demo_records
    record = evaluations[0]
    exported = run_cli(data_dir, "evaluation", "export", record["evaluation_id"], "--format", "csv")
    assert exported.returncode == 0, exported.stderr
    rows = _csv_rows(exported.stdout)
    at_10 = [r["value"] for r in rows if r["metric"] == "ndcg" and r["k"] == 10]
    assert len(at_10) == record["evaluated_queries"]
    assert sum(at_10) / len(at_10) == pytest.approx(record["metrics_by_k"]["10"]["ndcg"])
    trec_run = run_cli(data_dir, "evaluation", "export", record["evaluation_id"])
    assert trec_run.returncode == 0 and trec_run.stdout.split("\n", 1)[0].split()[1] == "Q0"


def test_export_refuses_an_unknown_id_and_a_record_with_no_scores(
    small_demo: tuple[Path, CliResult], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(small_demo[0], data_dir)  # the pending records stay out of the shared world
    output = tmp_path / "out.csv"
    unknown = run_cli(data_dir, "benchmark", "export", "bench_nope", "--output", str(output))
    assert unknown.returncode == 2
    assert "benchmark_id: no benchmark 'bench_nope'" in unknown.stderr
    unknown = run_cli(data_dir, "evaluation", "export", "eval_nope", "--format", "csv")
    assert unknown.returncode == 2 and "no evaluation 'eval_nope'" in unknown.stderr
    created = run_cli(
        data_dir,
        "benchmark",
        "create",
        "--name",
        "not run yet",
        "--baseline",
        "demo_prod",
        "--candidate",
        "demo_better",
        "--sessions",
        "20",
    )
    assert created.returncode == 0, created.stderr
    pending = json.loads(created.stdout)["benchmark_id"]
    refused = run_cli(data_dir, "benchmark", "export", pending, "--output", str(output))
    assert refused.returncode == 2
    assert f"benchmark_id: {pending} is pending, not completed: it has no scores" in refused.stderr
    assert refused.stdout == ""
    assert not output.exists()
    started = run_cli(data_dir, "evaluation", "run", "demo_prod", "--dataset", "demo-judgments")
    assert started.returncode == 0, started.stderr
    evaluation_id = json.loads(started.stdout)["evaluation_id"]
    refused = run_cli(data_dir, "evaluation", "export", evaluation_id, "--format", "csv")
    assert refused.returncode == 2
    assert f"evaluation_id: {evaluation_id} is pending, not completed" in refused.stderr


def test_a_run_waited_for_on_a_terminal_ends_with_the_summary_get_prints(
    demo_records: tuple[Path, dict, list[dict]],
) -> None:
    data_dir, _, _ = demo_records
    ran = run_on_terminal(
        data_dir,
        "evaluation",
        "run",
        "demo_prod",
        "--dataset",
        "demo-judgments",
        "--k",
        "10",
        "--wait",
    )
    assert ran.returncode == 0, ran.stderr
    first = ran.stdout.splitlines()[0]
    assert re.fullmatch(r"Evaluation 'demo_prod on demo-judgments' \(eval_\w+\): completed", first)
    evaluation_id = first.split("(")[1].split(")")[0]
    shown = run_on_terminal(data_dir, "evaluation", "get", evaluation_id)
    assert ran.stdout == shown.stdout
