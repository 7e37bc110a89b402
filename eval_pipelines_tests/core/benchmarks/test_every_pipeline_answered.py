"""every_pipeline_answered: red only for a pipeline that was given calls and answered none."""

import pyarrow as pa

from eval_pipelines.core.benchmarks.health import every_pipeline_answered, replay_statuses


def test_a_pipeline_with_no_completed_call_is_named_with_its_count() -> None:
    replays = pa.table(
        {
            "retriever_id": ["base", "base", "cand", "cand", "other"],
            "status": ["failed", "failed", "completed", "failed", "failed"],
        }
    )
    finding = every_pipeline_answered(replay_statuses(replays, ["base", "cand"]), "sessions")
    assert not finding.passed
    assert finding.description.endswith("base (2 of 2 sessions failed)")
    assert "cand" not in finding.description
    assert finding.metadata["calls"] == {
        "base": {"sessions": 2, "answered": 0},
        "cand": {"sessions": 2, "answered": 1},
    }


def test_one_answered_call_is_enough_and_no_calls_is_not_a_failure() -> None:
    statuses = {"api": pa.array(["failed", "completed"]), "idle": pa.array([], pa.string())}
    finding = every_pipeline_answered(statuses, "queries")
    assert finding.passed
    assert finding.metadata["failed_on_every_one_of_its_queries"] == {}
