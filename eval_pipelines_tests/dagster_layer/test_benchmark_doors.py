"""The UI launch (submit_benchmark job) and the nightly schedule store the same request the CLI does."""

from datetime import UTC, datetime

import pytest
import yaml
from dagster import DagsterInstance, RunRequest, SkipReason, build_schedule_context

from eval_pipelines.core.benchmarks.submit import benchmark_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.definitions import defs
from eval_pipelines.resources import DataDirResource
from eval_pipelines.schedules.benchmarks import nightly_benchmarks

REQUEST = {
    "benchmark_name": "from the launchpad",
    "baseline_retriever_id": "prod",
    "candidate_retriever_ids": ["cand"],
    "session_count": 100,
    "session_filter": {
        "sample_strategy": "recent",
        "interaction_weights": {"weights": {"click": 2.0}},
    },
}


@pytest.fixture
def paths(two_http_retrievers: DataPaths) -> DataPaths:
    return two_http_retrievers


def submit(paths: DataPaths, request: dict, instance: DagsterInstance):
    job = defs.resolve_job_def("submit_benchmark")
    return job.execute_in_process(
        run_config={"ops": {"submit_benchmark_request": {"config": request}}},
        instance=instance,
        resources={"data_dir": DataDirResource(path=str(paths.root))},
        raise_on_error=False,
    )


def test_the_launchpad_job_stores_a_pending_request(paths: DataPaths) -> None:
    with DagsterInstance.ephemeral() as instance:
        result = submit(paths, REQUEST, instance)
    assert result.success
    benchmark_id = result.output_for_node("submit_benchmark_request")
    stored = benchmark_store(paths)
    assert stored.get(benchmark_id)["status"] == "pending"
    assert (
        stored.get(benchmark_id)["session_filter"]["interaction_weights"]["weights"]["click"] == 2.0
    )
    assert stored.request(benchmark_id)["session_filter"]["sample_strategy"] == "recent"


def test_an_invalid_launch_fails_with_every_problem_and_stores_nothing(paths: DataPaths) -> None:
    with DagsterInstance.ephemeral() as instance:
        result = submit(
            paths, {**REQUEST, "candidate_retriever_ids": ["ghost"], "session_count": 3}, instance
        )
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        message = failure.step_failure_data.user_failure_data.description
    assert "candidate_retriever_ids.0: unknown retriever 'ghost'" in message
    assert "session_count" in message
    assert benchmark_store(paths).ids() == []


def test_the_schedule_submits_each_declared_benchmark_over_the_last_24_hours(
    paths: DataPaths,
) -> None:
    tick = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    with DagsterInstance.ephemeral() as instance:
        context = build_schedule_context(
            instance=instance,
            scheduled_execution_time=tick,
            resources={"data_dir": DataDirResource(path=str(paths.root))},
        )
        assert isinstance(nightly_benchmarks(context), SkipReason)

        (paths.root / "benchmark_schedule.yaml").write_text(
            yaml.safe_dump(
                {"benchmarks": [{**REQUEST, "benchmark_name": "nightly", "lookback_hours": 24}]}
            )
        )
        [run] = nightly_benchmarks(context)
        assert isinstance(run, RunRequest)
        config = run.run_config["ops"]["submit_benchmark_request"]["config"]
        assert config["session_filter"]["time_range"] == {
            "start": "2026-11-01T02:00:00.000Z",
            "end": "2026-11-02T02:00:00.000Z",
        }
        result = submit(paths, config, instance)
    assert result.success
    record = benchmark_store(paths).get(result.output_for_node("submit_benchmark_request"))
    assert record["benchmark_name"] == "nightly"
    assert record["session_filter"]["time_range"]["end"] == "2026-11-02T02:00:00.000Z"
