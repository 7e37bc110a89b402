"""The benchmark suite at a tiny scale: each benchmark runs, passes its own check and reports its shape.

Timings are never asserted; only that each contender was measured the requested number of times.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pyarrow as pa
import pytest

from eval_pipelines.core.benchmarks.replay import replay_sessions
from eval_pipelines.core.benchmarks.submit import benchmark_store
from eval_pipelines.core.paths import DataPaths
from perf import (
    counterfactual_panel,
    counterfactual_scoring,
    end_to_end,
    ground_truth,
    ingest,
    replay_fanout,
    replay_http,
    replay_in_process,
    sampling,
    session_scoring,
)
from perf.__main__ import BENCHMARKS, main
from perf.harness import BenchmarkResult, CorrectnessError, run_contenders
from perf.latency_server import latency_server

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


def test_ground_truth_matches_pytrec_eval_and_ranx_where_installed(tmp_path: Path) -> None:
    result = ground_truth.run("tiny", REPEAT, tmp_path)
    ranx = [name for name in ("ranx",) if importlib.util.find_spec(name)]
    assert_shape(
        result,
        [
            "eval-pipelines",
            "pytrec_eval",
            *ranx,
            "eval-pipelines metrics only",
            "pytrec_eval metrics only",
            *[f"{name} metrics only" for name in ranx],
        ],
    )
    assert set(result.ratios()["eval-pipelines"]) == {"pytrec_eval", *ranx}
    assert result.checks["pytrec_eval"]["queries_compared"] == ground_truth.QUERIES["tiny"]
    assert result.checks["pytrec_eval"]["max_abs_difference"] <= ground_truth.TOLERANCE
    if ranx:
        assert result.checks["ranx"]["queries_compared"] == ground_truth.QUERIES["tiny"]
        assert result.checks["ranx"]["max_abs_difference"] <= ground_truth.TOLERANCE
        assert len(result.targets) == 2
    else:
        assert "ranx" in result.unavailable
    qrels_lines = (tmp_path / "qrels.txt").read_text().splitlines()
    run_lines = (tmp_path / "run.txt").read_text().splitlines()
    assert len(run_lines) == ground_truth.QUERIES["tiny"] * ground_truth.DEPTH
    assert all(len(line.split()) == 4 for line in qrels_lines)


def test_ranx_check_rejects_a_wrong_value(tmp_path: Path) -> None:
    qrels_path, run_path = ground_truth.write_trec_files(tmp_path, 50, seed=7)
    engine = ground_truth.engine_from_files(qrels_path, run_path)
    query_ids = engine.column("query_id").to_pylist()[::-1]
    values = {
        name: engine.column(ours).to_numpy()[::-1].copy()
        for name, ours in ground_truth.RANX_MEASURES.items()
    }
    assert ground_truth.check_against_ranx(engine, (query_ids, values))["max_abs_difference"] == 0
    values["map@10"][3] += 0.01
    with pytest.raises(CorrectnessError, match=f"map_cut_10 differs .* query {query_ids[3]}"):
        ground_truth.check_against_ranx(engine, (query_ids, values))


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


def test_replay_http_completes_every_call_against_the_latency_server(tmp_path: Path) -> None:
    result = replay_http.run("tiny", REPEAT, tmp_path)
    assert_shape(result, ["eval-pipelines"])
    calls = replay_http.SESSIONS["tiny"] * len(replay_http.PIPELINES)
    assert result.contenders[0].items == calls
    assert result.checks["rows"] == result.checks["stored_executions"] == calls
    assert result.checks["all_completed"] is True
    assert result.checks["in_session_order"] is True
    assert result.parameters["bound_calls_per_second"] == 1600.0
    [target] = result.targets
    assert target.measured == pytest.approx(result.parameters["share_of_bound"])


def test_replay_fanout_matches_the_local_engine_on_1_and_2_dask_workers(tmp_path: Path) -> None:
    pytest.importorskip(
        "distributed", reason="dask distributed is not installed (the `scale` extra)"
    )
    result = replay_fanout.run("tiny", 1, tmp_path)
    assert [c.name for c in result.contenders] == ["local", "dask 1 worker", "dask 2 workers"]
    assert all(c.items == replay_fanout.SESSIONS["tiny"] for c in result.contenders)
    assert result.checks["all_completed"] is True
    assert result.checks["rows_equal_local"] is True
    assert result.checks["dask 2 workers engine"]["tasks"] == 2 * 4
    assert len(result.checks["dask 2 workers engine"]["workers"]) == 2
    assert set(result.parameters["sessions_per_second"]) == {c.name for c in result.contenders}


def test_replay_http_check_rejects_a_wrong_ranking(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "data")
    sessions = replay_http.make_sessions(20, seed=3)
    with latency_server(1.0) as base_url:
        routes = replay_http.write_http_retrievers(paths, base_url)
        replays = replay_sessions(
            paths, "check", sessions, replay_http.PIPELINES, replay_http.DEPTH
        )
    replay_http.check_replays(replays, sessions, routes, paths, seed=3)
    rankings = replays.column("ranking").to_pylist()
    rankings[7] = rankings[7][::-1]
    broken = replays.set_column(
        replays.schema.get_field_index("ranking"),
        "ranking",
        pa.array(rankings, pa.list_(pa.string())),
    )
    with pytest.raises(CorrectnessError, match="ranking differs"):
        replay_http.check_replays(broken, sessions, routes, paths, seed=3)


def test_end_to_end_runs_benchmarks_through_dagster_and_splits_their_time(tmp_path: Path) -> None:
    result = end_to_end.run("tiny", REPEAT, tmp_path)
    assert_shape(result, [end_to_end.CONTENDER])
    sessions = end_to_end.SESSIONS["tiny"]
    assert result.checks["sessions_sampled"] == sessions
    assert result.checks["prod_copy_ndcg_delta_at_10"] == 0.0
    assert result.checks["record_schema"] == "valid"
    split = result.checks["split_seconds_median_run"]
    assert list(split) == [
        "benchmark_sessions",
        "benchmark_replays",
        "benchmark_session_scores",
        "benchmark_comparison",
        "benchmark_report",
        end_to_end.OUTSIDE_STEPS,
    ]
    assert all(seconds > 0 for seconds in split.values())
    assert any(
        sum(split.values()) == pytest.approx(s, abs=0.01) for s in result.contenders[0].seconds
    )

    paths = DataPaths(tmp_path / "data")
    records = [r for r in benchmark_store(paths).records() if r["session_count"] == sessions]
    assert len(records) == REPEAT
    assert len({r["benchmark_id"] for r in records}) == REPEAT
    end_to_end.check_record(paths, records[0], sessions)
    broken = copy.deepcopy(records[0])
    broken["comparison"]["comparisons"][-1]["ndcg_delta"]["10"] = 0.001
    with pytest.raises(CorrectnessError, match="demo_prod_copy vs demo_prod"):
        end_to_end.check_record(paths, broken, sessions)


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
    assert set(BENCHMARKS) == {
        "ground_truth",
        "session_scoring",
        "sampling",
        "replay_in_process",
        "replay_http",
        "replay_fanout",
        "end_to_end",
        "click_model",
        "counterfactual_scoring",
        "counterfactual_panel",
        "derived_agreement",
        "trec_eval_files",
        "ingest",
        "report",
        "s3_root",
    }


def test_ingest_benchmark_counts_every_bad_row_exactly(tmp_path: Path) -> None:
    result = ingest.run("tiny", REPEAT, tmp_path)
    per_kind = ingest.EXECUTIONS["tiny"] * ingest.INTERACTIONS_PER_EXECUTION // ingest.BAD_EVERY
    per_kind //= len(ingest.BAD_KINDS)
    assert result.checks["quarantined"] == dict.fromkeys(ingest.BAD_KINDS, per_kind)
    assert result.checks["rows_read"] == 20_000
    assert result.checks["ingested"] == 20_000 - per_kind * len(ingest.BAD_KINDS)
    assert result.checks["sample"]["sampled"] == ingest.SAMPLE["tiny"]
    assert [c.name for c in result.contenders] == [
        "eval-pipelines ingest",
        "duckdb read_json -> parquet",
        "sample_sessions on the ingested logs",
    ]


def test_counterfactual_scoring_checks_its_ratio_of_sums(tmp_path: Path) -> None:
    result = counterfactual_scoring.run("tiny", REPEAT, tmp_path)
    assert result.checks == {
        "pipelines": session_scoring.PIPELINES,
        "scores_rows": session_scoring.SESSIONS["tiny"] * session_scoring.PIPELINES,
    }
    assert [c.name for c in result.contenders] == [
        "session_scoring (before this issue)",
        "score_benchmark, logged_order",
        "score_benchmark, counterfactual",
    ]


def test_the_panel_benchmark_reports_both_estimators_rates(tmp_path: Path) -> None:
    result = counterfactual_panel.run("tiny", 1, tmp_path)
    assert set(result.checks) == {"counterfactual", "logged_order", "panel"}
    assert result.checks["counterfactual"]["not_judgeable_called_worse"] == 0.0
    assert result.checks["counterfactual"]["worse_promoted"] == 0.0
