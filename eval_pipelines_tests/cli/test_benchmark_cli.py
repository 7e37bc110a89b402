"""`eval-pipelines benchmark create|get|list` as a user runs them."""

import json
from pathlib import Path

from eval_pipelines_tests.cli.conftest import CliResult, run_cli
from eval_pipelines_tests.schemas import validation_errors


def test_create_wait_get_and_list(small_demo: tuple[Path, CliResult], tmp_path: Path) -> None:
    data_dir, _ = small_demo
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps(
            {
                "benchmark_name": "cli test",
                "baseline_retriever_id": "demo_prod",
                "candidate_retriever_ids": ["demo_worse"],
                "session_count": 60,
                "session_filter": {"sample_strategy": "stratified"},
                # demo_worse ranks what the logs never showed: tested anyway, never called worse
                "min_coverage": 0,
            }
        )
    )
    created = run_cli(data_dir, "benchmark", "create", str(request), "--wait")
    assert created.returncode == 0, created.stderr[-3000:]
    record = json.loads(created.stdout)
    assert record["status"] == "completed"
    assert record["session_filter"]["sample_strategy"] == "stratified"
    assert validation_errors("get_benchmark.openapi", "BenchmarkResponse", record) == []

    fetched = run_cli(data_dir, "benchmark", "get", record["benchmark_id"])
    assert fetched.returncode == 0
    assert json.loads(fetched.stdout) == record

    listed = run_cli(
        data_dir,
        "benchmark",
        "list",
        "--json",
        "--retriever-id",
        "demo_worse",
        "--status",
        "completed",
    )
    assert record["benchmark_id"] in [r["benchmark_id"] for r in json.loads(listed.stdout)]
    none = run_cli(data_dir, "benchmark", "list", "--json", "--retriever-id", "demo_http")
    assert record["benchmark_id"] not in [r["benchmark_id"] for r in json.loads(none.stdout)]


def test_create_without_wait_leaves_a_pending_record_for_the_sensor(
    small_demo: tuple[Path, CliResult],
) -> None:
    data_dir, _ = small_demo
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
    record = json.loads(created.stdout)
    assert record["status"] == "pending"
    assert (data_dir / "benchmarks" / record["benchmark_id"] / "request.json").is_file()
    fetched = json.loads(run_cli(data_dir, "benchmark", "get", record["benchmark_id"]).stdout)
    assert fetched["status"] == "pending"
    assert validation_errors("get_benchmark.openapi", "BenchmarkResponse", fetched) == []


def test_an_invalid_request_exits_2_lists_every_problem_and_creates_nothing(
    small_demo: tuple[Path, CliResult], tmp_path: Path
) -> None:
    data_dir, _ = small_demo
    before = (
        sorted(p.name for p in (data_dir / "benchmarks").iterdir())
        if (data_dir / "benchmarks").is_dir()
        else []
    )
    result = run_cli(
        data_dir,
        "benchmark",
        "create",
        "--name",
        "",
        "--baseline",
        "demo_prod",
        "--candidate",
        "ghost",
        "--sessions",
        "5",
        "--wait",
    )
    assert result.returncode == 2
    for field in (
        "benchmark_name",
        "session_count",
        "candidate_retriever_ids.0: unknown retriever 'ghost'",
    ):
        assert field in result.stderr
    after = (
        sorted(p.name for p in (data_dir / "benchmarks").iterdir())
        if (data_dir / "benchmarks").is_dir()
        else []
    )
    assert after == before

    broken = tmp_path / "broken.json"
    broken.write_text('{"benchmark_name": "x",\n  oops}')
    parsed = run_cli(data_dir, "benchmark", "create", str(broken))
    assert parsed.returncode == 2
    assert "broken.json:2" in parsed.stderr
    missing = run_cli(data_dir, "benchmark", "get", "bench_nope")
    assert missing.returncode == 2
