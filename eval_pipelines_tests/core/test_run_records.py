"""The record a run writes, as plain Python: stages, a new run's own timestamps, the root cause of a
failure, a run that stops early; and the score checks its assets report can fail."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from eval_pipelines.core.benchmarks.score_checks import out_of_range, paired_counts
from eval_pipelines.core.benchmarks.submit import BENCHMARK_RECORDS
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.run_records import root_cause

PENDING = {
    "benchmark_id": "bench_1",
    "status": "pending",
    "results": None,
    "comparison": None,
    "started_at": None,
    "completed_at": None,
    "error_message": None,
}


def stored(paths: DataPaths) -> dict:
    return BENCHMARK_RECORDS.store(paths).entry("bench_1")


def test_each_stage_then_a_new_run_with_its_own_timestamps(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path)
    BENCHMARK_RECORDS.store(paths).save("bench_1", PENDING)
    BENCHMARK_RECORDS.stage_started(paths, "bench_1", "benchmark_sessions", "run_a")
    first = stored(paths)
    assert (first["record"]["status"], first["run_id"]) == ("building_sessions", "run_a")
    BENCHMARK_RECORDS.stage_started(paths, "bench_1", "benchmark_replays", "run_a")
    assert stored(paths)["record"]["started_at"] == first["record"]["started_at"]
    BENCHMARK_RECORDS.failed(paths, "bench_1", "benchmark_replays: OSError: disk full", "run_a")
    failed = stored(paths)["record"]
    assert failed["status"] == "failed" and failed["completed_at"]

    BENCHMARK_RECORDS.stage_started(paths, "bench_1", "benchmark_sessions", "run_b")
    again = stored(paths)
    assert again["run_id"] == "run_b" and again["record"]["status"] == "building_sessions"
    assert again["record"]["error_message"] is None and again["record"]["completed_at"] is None
    assert again["record"]["started_at"] >= failed["started_at"]


def test_a_run_that_stops_before_the_last_stage_says_what_it_left_unmade(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path)
    BENCHMARK_RECORDS.store(paths).save("bench_1", PENDING)
    planned = {"benchmark_sessions", "benchmark_replays"}
    assert BENCHMARK_RECORDS.step_stopped_early("benchmark_sessions", planned) is None
    missing = BENCHMARK_RECORDS.step_stopped_early("benchmark_replays", planned)
    assert missing == ["benchmark_session_scores", "benchmark_comparison"]
    assert BENCHMARK_RECORDS.step_stopped_early("benchmark_comparison", {"x"}) is None
    BENCHMARK_RECORDS.incomplete(paths, "bench_1", "run_a", missing)
    message = stored(paths)["record"]["error_message"]
    assert message.startswith("incomplete: run run_a succeeded but did not bring")
    assert "benchmark_session_scores, benchmark_comparison up to date" in message


def test_the_root_cause_is_the_innermost_raised_from() -> None:
    try:
        try:
            raise ValueError("the engine answered 503")
        except ValueError as inner:
            raise RuntimeError("replay failed") from inner
    except RuntimeError as outer:
        assert root_cause(outer) == "ValueError: the engine answered 503"


def test_the_score_checks_fail_on_bad_scores() -> None:
    scores = pa.table(
        {
            "execution_id": ["s1", "s2", "s1", "s2"],
            "retriever_id": ["base", "base", "cand", "cand"],
            "status": ["completed", "completed", "completed", "failed"],
            "ndcg_at_10": [0.5, 1.2, -0.1, None],
            "clicked_count": [1, 0, -1, None],
        }
    )
    found = out_of_range(scores)
    assert not found.passed
    assert found.metadata["out_of_range"] == {"ndcg_at_10": 2, "clicked_count": 1}
    comparison = {"comparisons": [{"candidate_retriever_id": "cand", "paired_sessions": 2}]}
    pairs = paired_counts(scores, ("base", "cand"), comparison)
    assert not pairs.passed
    assert pairs.metadata["paired_sessions"] == {"cand": {"expected": 1, "reported": 2}}
    comparison["comparisons"][0]["paired_sessions"] = 1
    assert paired_counts(scores, ("base", "cand"), comparison).passed
    assert out_of_range(scores.slice(0, 1)).passed
