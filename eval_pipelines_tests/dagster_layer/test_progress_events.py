"""Progress of the replay and evaluation-run steps as Dagster log events on a real instance: there,
and bounded by count (not by time) however many chunks the step has."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance

from eval_pipelines.cli.run_in_process import run_benchmark_here, run_evaluation_here
from eval_pipelines.core.benchmarks.replay import CHUNK_SIZE_ENV
from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.evaluations import pipeline
from eval_pipelines.core.evaluations.request import parse_evaluation_request
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.progress import INTERVAL_ENV, LOG_STEPS
from eval_pipelines.kinds import BENCHMARKS, EVALUATIONS, RequestKind

# The first line, at most LOG_STEPS lines between, and the final one.
BOUND = LOG_STEPS + 2


def step_messages(
    instance: DagsterInstance, paths: DataPaths, kind: RequestKind, record_id: str, prefix: str
) -> list[str]:
    """The step's log lines that start with prefix, from the event log of the record's run."""
    run_id = kind.store(paths).entry(record_id)["run_id"]
    step = kind.assets[1].key.to_user_string()
    return [
        entry.user_message
        for entry in instance.all_logs(run_id)
        if entry.step_key == step and entry.user_message.startswith(prefix)
    ]


@pytest.fixture(autouse=True)
def every_update_is_due(monkeypatch: pytest.MonkeyPatch) -> None:
    """No time throttle: only the count bound is left to keep the event log small."""
    monkeypatch.setenv(INTERVAL_ENV, "0")


def test_replay_progress_is_logged_and_bounded_by_count(
    world_copy: DataPaths, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CHUNK_SIZE_ENV, "2")  # 2 x 50 chunks: one line each would be 100
    request = parse_request(
        {
            "benchmark_name": "progress",
            "baseline_retriever_id": "demo_prod",
            "candidate_retriever_ids": ["demo_better"],
            "session_count": 100,
            "session_filter": {"retriever_ids": ["demo_prod"]},
        },
        world_copy,
    )
    echoed: list[str] = []
    record = run_benchmark_here(world_copy, request, "bench_progress", echoed.append, instance)
    assert record["status"] == "completed", record["error_message"]
    label = "replay bench_progress: "
    messages = step_messages(instance, world_copy, BENCHMARKS, "bench_progress", label)
    assert messages[0] == label + "0/200 replays (0%)"
    assert messages[-1].startswith(
        label + "200/200 replays (100%), now demo_better (2/2), done in "
    )
    assert 3 <= len(messages) <= BOUND
    assert [m for m in echoed if m.startswith(label)] == messages


def test_evaluation_run_progress_is_logged_and_bounded_by_count(
    world_copy: DataPaths, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "CHUNK_SIZE", 2)  # 50 chunks of the 100 judged queries
    request = parse_evaluation_request(
        {"retriever_id": "demo_better", "dataset_name": "demo-judgments"}, world_copy
    )
    record = run_evaluation_here(world_copy, request, "eval_progress", lambda _: None, instance)
    assert record["status"] == "completed", record["error_message"]
    label = "evaluate demo_better (eval_progress): "
    messages = step_messages(instance, world_copy, EVALUATIONS, "eval_progress", label)
    assert messages[0] == label + "0/100 queries (0%)"
    assert messages[-1].startswith(label + "100/100 queries (100%), done in ")
    assert 3 <= len(messages) <= BOUND
