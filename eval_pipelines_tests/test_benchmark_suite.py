"""The benchmark suite at a tiny scale: each benchmark runs, passes its own check and reports its shape.

Timings are never asserted; only that each contender was measured the requested number of times.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import ground_truth, replay_in_process, sampling, session_scoring
from benchmarks.__main__ import BENCHMARKS, main
from benchmarks.harness import BenchmarkResult, CorrectnessError, run_contenders

REPEAT = 2


def assert_shape(result: BenchmarkResult, contenders: list[str]) -> None:
    assert [c.name for c in result.contenders] == contenders
    for contender in result.contenders:
        assert len(contender.seconds) == REPEAT
        assert all(seconds >= 0 for seconds in contender.seconds)
        assert contender.peak_rss_bytes >= 0
    record = result.to_json()
    assert json.loads(json.dumps(record)) == record
    assert set(record["ratios"]) == set(contenders)


def test_ground_truth_matches_pytrec_eval(tmp_path: Path) -> None:
    result = ground_truth.run("tiny", REPEAT, tmp_path)
    assert_shape(
        result,
        [
            "eval-pipelines",
            "pytrec_eval",
            "eval-pipelines metrics only",
            "pytrec_eval metrics only",
        ],
    )
    assert result.checks["queries_compared"] == ground_truth.QUERIES["tiny"]
    assert result.checks["max_abs_difference"] <= ground_truth.TOLERANCE
    assert "ranx" in result.unavailable
    qrels_lines = (tmp_path / "qrels.txt").read_text().splitlines()
    run_lines = (tmp_path / "run.txt").read_text().splitlines()
    assert len(run_lines) == ground_truth.QUERIES["tiny"] * ground_truth.DEPTH
    assert all(len(line.split()) == 4 for line in qrels_lines)


def test_ground_truth_check_rejects_a_wrong_value(tmp_path: Path) -> None:
    qrels_path, run_path = ground_truth.write_trec_files(tmp_path, 50, seed=7)
    engine = ground_truth.engine_from_files(qrels_path, run_path)
    reference = ground_truth.pytrec_eval_evaluate(
        *ground_truth.pytrec_eval_dicts(qrels_path, run_path)
    )
    query_id = engine.column("query_id")[0].as_py()
    reference[query_id]["ndcg_cut_10"] += 0.01
    with pytest.raises(CorrectnessError, match="ndcg_cut_10 differs"):
        ground_truth.check_against_pytrec_eval(engine, reference, seed=7)


def test_session_scoring_agrees_with_the_reference(tmp_path: Path) -> None:
    result = session_scoring.run("tiny", REPEAT, tmp_path)
    assert_shape(result, ["eval-pipelines"])
    assert result.checks["results"] == session_scoring.PIPELINES
    assert result.checks["session_scores_compared"] > 0
    assert (
        result.contenders[0].items == session_scoring.SESSIONS["tiny"] * session_scoring.PIPELINES
    )


def test_sampling_returns_the_requested_sample(tmp_path: Path) -> None:
    result = sampling.run("tiny", REPEAT, tmp_path)
    assert_shape(result, ["eval-pipelines"])
    assert result.checks["sampled"] == result.checks["requested"] == sampling.SAMPLE["tiny"]
    assert result.parameters["interactions"] == (
        sampling.EXECUTIONS["tiny"] * sampling.INTERACTIONS_PER_EXECUTION
    )
    assert [t.description for t in result.targets] == ["median seconds", "peak RSS GiB"]


def test_replay_in_process_completes_every_query(tmp_path: Path) -> None:
    result = replay_in_process.run("tiny", REPEAT, tmp_path)
    assert_shape(result, list(replay_in_process.PIPELINES))
    assert result.checks["all_completed"] is True
    assert result.checks["prod_copy_identical"] is True
    assert all(c.items == replay_in_process.QUERIES["tiny"] for c in result.contenders)


def test_run_contenders_alternates_and_keeps_warm_up_output() -> None:
    calls: list[str] = []

    def step(name: str) -> str:
        calls.append(name)
        return f"{name}-{len(calls)}"

    results, outputs = run_contenders([("a", lambda: step("a")), ("b", lambda: step("b"))], 2)
    assert calls == ["a", "b"] * 3
    assert outputs == {"a": "a-1", "b": "b-2"}
    assert [len(r.seconds) for r in results] == [2, 2]


def test_command_line_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "results.json"
    code = main(["session_scoring", "--scale", "tiny", "--repeat", "1", "--output", str(output)])
    assert code == 0
    document = json.loads(output.read_text())
    assert document["machine"]["cpu_count"] >= 1
    assert "numpy" in document["machine"]["packages"]
    assert [b["name"] for b in document["benchmarks"]] == ["session_scoring"]
    assert "| session_scoring | eval-pipelines |" in capsys.readouterr().out
    assert set(BENCHMARKS) == {"ground_truth", "session_scoring", "sampling", "replay_in_process"}
