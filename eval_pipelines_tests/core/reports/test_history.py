"""A candidate's benchmark history (issue 15 point 5) over real record files.

The real benchmark is the first of the CLI tests' history world (`benchmark create --wait`, run once
per session); the other entries are copies of its record.json saved through the RecordStore with one
thing changed each (completion time, pipeline hash, estimator, a broken field), so ordering, change
marks and every reason a record is skipped are seen on real files.
"""

from __future__ import annotations

import copy
import shutil
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from eval_pipelines.core.benchmarks.submit import benchmark_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.records import RECORD_FILE
from eval_pipelines.core.reports.history import (
    History,
    HistoryPoint,
    benchmark_history,
    candidate_history,
    hash_changes,
    history_svg,
    no_history_message,
)
from eval_pipelines.core.reports.verdict_table import verdict_rows
from eval_pipelines_tests.cli.test_benchmark_history_cli import history_world  # noqa: F401

BASELINE, CANDIDATE = "demo_prod", "demo_better"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def real_record(
    history_world: tuple[DataPaths, list[dict[str, Any]]],  # noqa: F811
) -> dict[str, Any]:
    """The first real benchmark of the CLI tests' history world."""
    return history_world[1][0]


@pytest.fixture
def paths(
    history_world: tuple[DataPaths, list[dict[str, Any]]],  # noqa: F811
    real_record: dict[str, Any],
    tmp_path: Path,
) -> DataPaths:
    """A data directory holding only that benchmark's folder: each test adds its own records."""
    paths = DataPaths(tmp_path / "data")
    name = real_record["benchmark_id"]
    shutil.copytree(history_world[0].root / "benchmarks" / name, paths.root / "benchmarks" / name)
    return paths


def save_copy(paths: DataPaths, record: dict[str, Any], benchmark_id: str, **changes: Any) -> dict:
    copied = {**copy.deepcopy(record), "benchmark_id": benchmark_id, **changes}
    benchmark_store(paths).save(benchmark_id, copied)
    return copied


def comparison_of(record: dict[str, Any]) -> dict[str, Any]:
    (item,) = [
        c for c in record["comparison"]["comparisons"] if c["candidate_retriever_id"] == CANDIDATE
    ]
    return item


def with_candidate_hash(record: dict[str, Any], value: str) -> list[dict[str, Any]]:
    return [
        {**r, "pipeline_hash": value} if r["retriever_id"] == CANDIDATE else r
        for r in record["results"]
    ]


def test_points_are_oldest_first_by_completion_and_hold_the_records_numbers(
    paths: DataPaths, real_record: dict[str, Any]
) -> None:
    # Saved after the real one (so listed after it) but completed long before it.
    earlier = save_copy(
        paths,
        real_record,
        "bench_000000000001",
        completed_at="2026-01-02T03:04:05.000Z",
        results=with_candidate_hash(real_record, "an-older-config"),
    )
    later_comparison = copy.deepcopy(real_record["comparison"])
    comparison_of({"comparison": later_comparison})["estimator"] = "logged_order"
    later = save_copy(
        paths,
        real_record,
        "bench_000000000000",
        completed_at="2099-01-01T00:00:00+00:00",
        comparison=later_comparison,
    )

    points = candidate_history(paths, BASELINE, CANDIDATE)

    assert [p.benchmark_id for p in points] == [
        earlier["benchmark_id"],
        real_record["benchmark_id"],
        later["benchmark_id"],
    ]
    for point, record in zip(points, [earlier, real_record, later], strict=True):
        item = comparison_of(record)
        (tested,) = [r for r in verdict_rows(record) if r["tested"]]
        results = {r["retriever_id"]: r for r in record["results"]}
        assert point.delta == item["effect"]["delta"] == tested["delta"]
        assert [point.ci_low, point.ci_high] == item["confidence_interval"]
        assert point.p_value_adjusted == item["p_value_adjusted"]
        assert point.verdict == item["verdict"]
        assert point.sessions == item["paired_sessions"]
        assert point.estimator == item["estimator"]
        assert point.completed_at == record["completed_at"]
        assert point.benchmark_name == "history one"
        assert point.baseline_pipeline_hash == results[BASELINE]["pipeline_hash"]
        assert point.candidate_pipeline_hash == results[CANDIDATE]["pipeline_hash"]
    assert [p.estimator for p in points] == ["counterfactual", "counterfactual", "logged_order"]
    # The real record's candidate config differs from the earlier copy's: marked there only.
    assert hash_changes(points) == [(False, False), (False, True), (False, False)]


def test_every_record_left_out_is_counted_with_its_reason(
    paths: DataPaths, real_record: dict[str, Any]
) -> None:
    store = benchmark_store(paths)
    save_copy(paths, real_record, "bench_0000000000a1", status="failed", comparison=None)
    save_copy(paths, real_record, "bench_0000000000a2", comparison=None)
    save_copy(paths, real_record, "bench_0000000000a3", completed_at=None)
    save_copy(paths, real_record, "bench_0000000000a4", benchmark_name="bad \ud800 name")
    nan = copy.deepcopy(real_record)
    comparison_of(nan)["effect"]["delta"] = float("nan")
    save_copy(paths, nan, "bench_0000000000a5")
    save_copy(paths, real_record, "bench_0000000000a6")
    (store.folder("bench_0000000000a6") / RECORD_FILE).write_text('{"record": {"status": ')
    save_copy(paths, real_record, "bench_0000000000a7")
    (store.folder("bench_0000000000a7") / RECORD_FILE).write_text(
        '{"record": {"status": "completed", "n": ' + "9" * 5000 + "}}"
    )
    save_copy(paths, real_record, "bench_0000000000a8", completed_at="0001-01-01T00:00:00+01:00")
    # Another pair's records are not this history's business, broken or not.
    save_copy(paths, real_record, "bench_0000000000b1", baseline_retriever_id="demo_worse")

    found = benchmark_history(paths, BASELINE, CANDIDATE)

    assert [p.benchmark_id for p in found.points] == [real_record["benchmark_id"]]
    reasons = dict(line.split(": ", 1) for line in found.skipped)
    assert reasons == {
        "benchmarks/bench_0000000000a1": "not completed (status failed)",
        "benchmarks/bench_0000000000a2": "record.json: comparison holds no comparisons",
        "benchmarks/bench_0000000000a3": (
            "record.json: completed_at is None, expected an ISO 8601 time"
        ),
        "benchmarks/bench_0000000000a4": (
            "record.json: benchmark_name: contains a lone surrogate (not valid Unicode text)"
        ),
        "benchmarks/bench_0000000000a5": "record.json: delta is nan, expected a finite number",
        "benchmarks/bench_0000000000a6": (
            "record.json: not valid JSON (Expecting value at column 23 at line 1)"
        ),
        "benchmarks/bench_0000000000a8": (
            "record.json: completed_at is '0001-01-01T00:00:00+01:00', out of range in UTC"
        ),
        "benchmarks/bench_0000000000a7": (
            "record.json: not valid JSON (a number has more than 4300 digits)"
        ),
    }
    assert found.pairs == [(BASELINE, CANDIDATE), ("demo_worse", CANDIDATE)]


def test_an_empty_history_names_the_pairs_that_exist() -> None:
    pairs = [("demo_prod", "demo_better"), ("demo_prod", "demo_worse"), ("other", "demo_http")]
    head = "no completed benchmark has baseline '{}' and candidate '{}'; "
    assert no_history_message(History("demo_prod", "x", pairs=pairs)) == head.format(
        "demo_prod", "x"
    ) + ("completed benchmarks of that baseline compare: demo_better, demo_worse")
    assert no_history_message(History("x", "y", pairs=pairs)) == head.format("x", "y") + (
        "baselines of completed benchmarks: demo_prod, other"
    )
    assert no_history_message(History("x", "y")) == head.format("x", "y") + (
        "there is no completed benchmark"
    )


def point(index: int, verdict: str, estimator: str = "counterfactual", **changes: Any):
    return replace(
        HistoryPoint(
            benchmark_id=f"bench_{index:012d}",
            benchmark_name="n",
            completed_at=f"2026-12-0{index + 1}T10:00:00.000Z",
            estimator=estimator,
            sessions=100,
            delta=0.01 * index,
            ci_low=0.01 * index - 0.02,
            ci_high=0.01 * index + 0.02,
            p_value_adjusted=0.04,
            verdict=verdict,
            baseline_pipeline_hash="b",
            candidate_pipeline_hash="c",
        ),
        **changes,
    )


def markers(svg: str) -> dict[str, int]:
    """Marker count per verdict group of the plot."""
    root = ET.fromstring(svg)
    return {
        group.get("id"): len(group.findall(f".//{SVG}use"))
        for group in root.iter(f"{SVG}g")
        if (group.get("id") or "").startswith("history-verdict-")
    }


def test_the_plot_has_a_marker_per_point_by_verdict_a_zero_line_and_change_marks() -> None:
    points = [
        point(0, "better"),
        point(1, "no_detectable_difference", candidate_pipeline_hash="c2"),
        point(2, "better", candidate_pipeline_hash="c2"),
        point(3, "worse", baseline_pipeline_hash="b2", candidate_pipeline_hash="c2"),
    ]

    svg = history_svg(points, BASELINE, CANDIDATE)

    assert svg.startswith("<svg") and svg == history_svg(points, BASELINE, CANDIDATE)
    assert markers(svg) == {
        "history-verdict-better": 2,
        "history-verdict-no_detectable_difference": 1,
        "history-verdict-worse": 1,
    }
    assert 'id="history-zero"' in svg
    assert svg.count("candidate changed") == 1 and svg.count("baseline changed") == 1
    assert "estimators differ" not in svg


def test_the_plot_says_when_estimators_differ() -> None:
    points = [point(0, "better"), point(1, "better", estimator="logged_order")]
    svg = history_svg(points, BASELINE, CANDIDATE)
    assert "estimators differ: counterfactual (1), logged_order (1)" in svg
    with pytest.raises(ValueError, match="no points"):
        history_svg([], BASELINE, CANDIDATE)
