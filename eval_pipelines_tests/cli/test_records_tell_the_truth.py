"""Records that tell the truth (issue 10, points 5, 19, 20, 21), through the real CLI.

- An empty sample gives a completed record with no verdict, never an internal error.
- A record that completed without answering its question exits 3 (not 0), its warnings on stderr.
- An evaluation whose every query failed says so in `warnings`, instead of passing zeros as scores.
- `evaluation run` without --wait prints the seed's StartEvaluationResponse; `query_count` means
  "queries evaluated" in every state; a failed benchmark and a failed evaluation both keep the time
  they ended in `completed_at`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from dagster import DagsterInstance

from eval_pipelines.cli.run_in_process import run_here
from eval_pipelines.core.evaluations.record import summary_warnings
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.kinds import EVALUATIONS
from eval_pipelines_tests.cli.conftest import run_cli
from eval_pipelines_tests.loopback import free_port
from eval_pipelines_tests.schemas import validation_errors

EXIT_NO_VERDICT = 3
BENCHMARK = ("--baseline", "demo_prod", "--candidate", "demo_better", "--sessions", "50")


def write_request(paths: DataPaths, session_filter: dict[str, Any]) -> str:
    request = {
        "benchmark_name": "empty sample",
        "baseline_retriever_id": "demo_prod",
        "candidate_retriever_ids": ["demo_better"],
        "session_count": 50,
        "session_filter": session_filter,
    }
    file = paths.root.parent / "request.json"
    file.write_text(json.dumps(request))
    return str(file)


def dead_http_retriever(paths: DataPaths, retriever_id: str) -> None:
    config = {
        "id": retriever_id,
        "kind": "http",
        "http": {"url": f"http://127.0.0.1:{free_port()}/search", "max_retries": 0},
    }
    (paths.retrievers_dir / f"{retriever_id}.yaml").write_text(yaml.safe_dump(config))


@pytest.mark.parametrize(
    "session_filter",
    [
        {"time_range": {"start": "2099-01-01T00:00:00Z"}},
        {"taxonomy_node_ids": ["no-such-node"]},
        {"min_interactions": 1_000_000},
    ],
    ids=["future-time-range", "unknown-taxonomy-node", "huge-min-interactions"],
)
def test_an_empty_sample_completes_without_a_verdict(
    world_copy: DataPaths, session_filter: dict[str, Any]
) -> None:
    created = run_cli(
        world_copy.root, "benchmark", "create", write_request(world_copy, session_filter), "--wait"
    )
    assert created.returncode == EXIT_NO_VERDICT, created.stderr[-3000:]
    record = json.loads(created.stdout)
    assert validation_errors("get_benchmark.openapi", "BenchmarkResponse", record) == []
    assert (record["status"], record["error_message"], record["session_count"]) == (
        "completed",
        None,
        0,
    )
    assert record["comparison"]["recommendation"].startswith("No verdict: the benchmark has no")
    assert "warning: no sessions match the filter (requested 50)" in created.stderr
    assert "Error" not in created.stderr and "Traceback" not in created.stderr
    assert json.loads(
        run_cli(world_copy.root, "benchmark", "get", record["benchmark_id"]).stdout
    ) == (record)


def test_a_benchmark_with_a_verdict_exits_0_and_one_without_exits_3(world_copy: DataPaths) -> None:
    answered = run_cli(world_copy.root, "benchmark", "create", "--name", "ok", *BENCHMARK, "--wait")
    assert answered.returncode == 0, answered.stderr[-3000:]
    assert json.loads(answered.stdout)["comparison"]["comparisons"][0]["p_value"] is not None

    dead_http_retriever(world_copy, "down")
    down = run_cli(
        world_copy.root,
        "benchmark",
        "create",
        "--name",
        "engine down",
        "--baseline",
        "demo_prod",
        "--candidate",
        "down",
        "--sessions",
        "30",
        "--wait",
    )
    assert down.returncode == EXIT_NO_VERDICT, down.stderr[-3000:]
    record = json.loads(down.stdout)
    assert record["status"] == "completed"
    assert record["comparison"]["comparisons"][0]["p_value"] is None
    warned = [line for line in down.stderr.splitlines() if line.startswith("warning: ")]
    assert warned == [f"warning: {w}" for w in record["warnings"]]
    assert any("down scored no session (30 of 30 failed" in w for w in warned)


def test_an_evaluation_whose_every_query_failed_warns_and_exits_3(world_copy: DataPaths) -> None:
    dead_http_retriever(world_copy, "down")
    ran = run_cli(
        world_copy.root, "evaluation", "run", "down", "--dataset", "demo-judgments", "--wait"
    )
    assert ran.returncode == EXIT_NO_VERDICT, ran.stderr[-3000:]
    record = json.loads(ran.stdout)
    assert validation_errors("get_evaluation.openapi", "EvaluationRecord", record) == []
    assert record["status"] == "completed"
    assert (record["query_count"], record["evaluated_queries"], record["total_queries"]) == (
        0,
        0,
        100,
    )
    assert record["skipped_reasons"] == {"failed_execution": 100}
    assert record["warnings"] == [
        "no query could be evaluated (100 of 100 skipped: failed_execution 100): every metric is"
        " a placeholder (0), not a measurement"
    ]
    assert f"warning: {record['warnings'][0]}" in ran.stderr


def test_partial_failures_warn_and_name_their_error_types() -> None:
    summary = {
        "total_queries": 10,
        "evaluated_queries": 7,
        "skipped_queries": 3,
        "skipped_reasons": {"failed_execution": 2, "no_relevant_documents": 1},
        "failed_error_types": {"timeout": 2},
    }
    assert summary_warnings(summary) == [
        "2 of 10 queries failed to run (timeout 2); the metrics are means over the 7 queries"
        " evaluated, so they describe the retriever only where it answered"
    ]
    assert summary_warnings({**summary, "skipped_reasons": {"no_relevant_documents": 3}}) == []


def test_evaluation_run_prints_the_start_response_and_query_count_means_evaluated(
    world_copy: DataPaths,
) -> None:
    started = run_cli(
        world_copy.root, "evaluation", "run", "demo_prod", "--dataset", "demo-judgments"
    )
    assert started.returncode == 0, started.stderr
    response = json.loads(started.stdout)
    assert validation_errors("run_evaluation.openapi", "StartEvaluationResponse", response) == []
    assert set(response) == {"task_id", "evaluation_id", "task_type", "status", "created_at"}
    assert (response["task_type"], response["status"]) == ("retriever.evaluation", "pending")

    pending = json.loads(
        run_cli(world_copy.root, "evaluation", "get", response["evaluation_id"]).stdout
    )
    assert validation_errors("get_evaluation.openapi", "EvaluationRecord", pending) == []
    assert (pending["status"], pending["query_count"], pending["total_queries"]) == (
        "pending",
        0,
        100,
    )
    assert pending["created_at"] == response["created_at"]

    finished = run_cli(
        world_copy.root, "evaluation", "run", "demo_prod", "--dataset", "demo-judgments", "--wait"
    )
    completed = json.loads(finished.stdout)
    assert (completed["query_count"], completed["evaluated_queries"]) == (100, 100)


def test_failed_benchmarks_and_evaluations_keep_when_they_ended(
    world_copy: DataPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Requests accepted while their retriever existed, whose runs then find it gone, fail.
    created = run_cli(world_copy.root, "benchmark", "create", "--name", "gone", *BENCHMARK)
    started = run_cli(
        world_copy.root, "evaluation", "run", "demo_better", "--dataset", "demo-judgments"
    )
    benchmark_id = json.loads(created.stdout)["benchmark_id"]
    evaluation_id = json.loads(started.stdout)["evaluation_id"]
    (world_copy.retrievers_dir / "demo_better.yaml").unlink()

    rerun = run_cli(world_copy.root, "benchmark", "rerun", benchmark_id)
    assert rerun.returncode == 1, rerun.stderr[-3000:]
    benchmark = json.loads(rerun.stdout)
    home = world_copy.root / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.from_config(str(home)) as instance:
        evaluation = run_here(world_copy, EVALUATIONS, evaluation_id, None, instance)
    for record in (benchmark, evaluation):
        assert record["status"] == "failed", record
        assert "demo_better" in record["error_message"]
        assert record["completed_at"] is not None and record["completed_at"] >= record["created_at"]
    assert evaluation["query_count"] == 0 and evaluation["metrics_by_k"] is None
    assert validation_errors("get_evaluation.openapi", "EvaluationRecord", evaluation) == []
    assert validation_errors("get_benchmark.openapi", "BenchmarkResponse", benchmark) == []
