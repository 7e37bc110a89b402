"""The demo's reports, made by the real CLI (`eval-pipelines report`), opened in a real headless
Chromium: nothing but the file is requested, nothing is logged or thrown, the plots the record calls for
are drawn (and only those), and the tables show the record's own numbers. One browser, three page loads:
the demo's benchmark, an evaluation against a baseline evaluation, and one alone; then the screenshots
`tasks.py screenshots` takes of two of them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from PIL import Image

from eval_pipelines.core.reports.verdict_table import (
    EVALUATION_COLUMNS,
    VERDICT_COLUMNS,
    Column,
    evaluation_rows,
    verdict_rows,
)
from eval_pipelines_tests.browser import OpenedPage, ReportBrowser, report_browser  # noqa: F401
from eval_pipelines_tests.cli.conftest import CliResult, run_cli_at_once
from eval_pipelines_tests.reports.page_reading import (
    DRILL_JS,
    SECTION_TEXT_JS,
    TABLE_JS,
    shown_is_a_rounding,
)
from eval_pipelines_tests.reports.screenshots import MAX_BYTES, SHOTS, shoot

DEMO_BENCHMARK = "demo: production vs candidates"
DEMO_DATASET = "demo-judgments"
REPORT_FILE = "report.html"  # what a run writes in its partition's folder (the contract)
ALWAYS_BENCHMARK_PLOTS = {"forest", "delta-distribution", "latency"}
OPTIONAL_BENCHMARK_PLOTS = {"taxonomy-deltas", "coverage", "position-bias", "history"}
EVALUATION_PLOTS = {"metrics-by-k", "latency", "query-scatter"}
INTERACTION_TYPES = {"click", "add_to_cart", "purchase", "bookmark"}


@dataclass
class Report:
    """A report file, the record it was made from (read from record.json), and the page in Chromium."""

    path: Path
    record: dict[str, Any]
    page: OpenedPage
    history_candidates: set[str]
    data_dir: Path
    baseline: dict[str, Any] | None = None


def _read_record(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text())
    return document.get("record", document)


def _records(data_dir: Path, kind: str) -> list[dict[str, Any]]:
    return [_read_record(p) for p in sorted((data_dir / kind).glob("*/record.json"))]


def _demo_benchmark(data_dir: Path) -> dict[str, Any]:
    """The demo's own benchmark: other tests share this world and may add benchmarks of that name."""
    return min(
        (
            r
            for r in _records(data_dir, "benchmarks")
            if r["status"] == "completed" and r["benchmark_name"] == DEMO_BENCHMARK
        ),
        key=lambda r: r["created_at"],
    )


def _demo_evaluation(data_dir: Path, retriever_id: str) -> dict[str, Any]:
    return min(
        (
            r
            for r in _records(data_dir, "evaluations")
            if r["status"] == "completed"
            and r["retriever_id"] == retriever_id
            and r["dataset_name"] == DEMO_DATASET
        ),
        key=lambda r: r["created_at"],
    )


def _candidates_with_history(data_dir: Path, record: dict[str, Any]) -> set[str]:
    """Candidates with at least two completed benchmarks against this baseline, as the store holds now."""
    baseline = record["baseline_retriever_id"]
    counts: dict[str, int] = {}
    for other in _records(data_dir, "benchmarks"):
        if other["status"] == "completed" and other["baseline_retriever_id"] == baseline:
            for candidate in other["candidate_retriever_ids"]:
                counts[candidate] = counts.get(candidate, 0) + 1
    return {c for c in record["candidate_retriever_ids"] if counts.get(c, 0) >= 2}


def _make_reports(data_dir: Path, cases: dict[str, list[str]]) -> dict[str, CliResult]:
    """`eval-pipelines report` for every case at once."""
    return run_cli_at_once(data_dir, {name: ["report", *args] for name, args in cases.items()})


@pytest.fixture(scope="module")
def reports(
    small_demo: tuple[Path, CliResult],
    report_browser: ReportBrowser,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Report]:
    data_dir = small_demo[0]
    out = tmp_path_factory.mktemp("reports")
    benchmark = _demo_benchmark(data_dir)
    better = _demo_evaluation(data_dir, "demo_better")
    prod = _demo_evaluation(data_dir, "demo_prod")
    worse = _demo_evaluation(data_dir, "demo_worse")
    records = {"benchmark": benchmark, "against": better, "alone": worse}
    jobs = {
        "benchmark": [benchmark["benchmark_id"]],
        "against": [better["evaluation_id"], "--against", prod["evaluation_id"]],
        "alone": [worse["evaluation_id"]],
    }
    for name, args in jobs.items():
        args += ["--output", str(out / f"{name}.html")]
    history = _candidates_with_history(data_dir, benchmark)
    results = _make_reports(data_dir, jobs)
    failed = {n: (r.returncode, r.stderr[-2000:]) for n, r in results.items() if r.returncode}
    assert failed == {}, f"eval-pipelines report failed: {failed}"
    # The demo's run wrote this one itself (the benchmark_report asset), when the world was built.
    by_run = data_dir / "benchmarks" / benchmark["benchmark_id"] / REPORT_FILE
    assert by_run.is_file(), f"the demo's benchmark run wrote no {by_run}"
    opened = {
        name: Report(
            path=out / f"{name}.html",
            record=records[name],
            page=report_browser.open(out / f"{name}.html"),
            history_candidates=history if name == "benchmark" else set(),
            data_dir=data_dir,
            baseline=prod if name == "against" else None,
        )
        for name in jobs
    }
    opened["by-run"] = Report(by_run, benchmark, report_browser.open(by_run), set(), data_dir)
    return opened


@pytest.mark.parametrize("name", ["benchmark", "against", "alone", "by-run"])
def test_a_report_requests_nothing_and_logs_no_error(reports: dict[str, Report], name: str) -> None:
    report = reports[name]
    assert report.page.problems() == []
    assert report.page.requests == [report.page.url]
    kind = "benchmark" if name in ("benchmark", "by-run") else "evaluation"
    record_id = report.record["benchmark_id" if kind == "benchmark" else "evaluation_id"]
    body = report.page.evaluate(
        "() => [document.body.dataset.reportKind, document.body.dataset.recordId]"
    )
    assert body == [kind, record_id]


def _expected_benchmark_plots(report: Report) -> set[str]:
    record = report.record
    comparisons = record["comparison"]["comparisons"]
    expected = set(ALWAYS_BENCHMARK_PLOTS)
    if any(r.get("taxonomy_deltas") for r in record["results"]):
        expected.add("taxonomy-deltas")
    if any((item.get("coverage") or {}).get("candidate") for item in comparisons):
        expected.add("coverage")
    if record["comparison"]["estimator"].get("click_model_id"):
        expected.add("position-bias")
    if report.history_candidates:
        expected.add("history")
    return expected


def _assert_drawn(page: OpenedPage, expected: set[str], possible: set[str]) -> None:
    """The expected plots drawn, each with marks; every other possible one explained in a sentence."""
    figures = page.figures()
    assert {f.name for f in figures} == expected
    for figure in figures:
        assert figure.svgs == 1, figure
        assert figure.width > 0 and figure.height > 0, figure
        assert figure.marks > 0, f"plot {figure.name} drew no mark: {figure}"
        assert figure.caption, figure
    lines = page.evaluate("() => document.body.innerText").splitlines()
    for name in possible - expected:
        said = [line for line in lines if name in line.lower() and len(line.split()) >= 5]
        assert said, f"plot {name} is left out without a sentence saying why"


def test_the_benchmark_report_draws_the_plots_its_record_has_data_for(
    reports: dict[str, Report],
) -> None:
    report = reports["benchmark"]
    expected = _expected_benchmark_plots(report)
    # The demo's benchmark is counterfactual: its record has coverage and a click model.
    assert {"coverage", "position-bias", "taxonomy-deltas"} <= expected
    _assert_drawn(report.page, expected, ALWAYS_BENCHMARK_PLOTS | OPTIONAL_BENCHMARK_PLOTS)


def test_an_evaluation_report_draws_the_scatter_only_against_a_baseline(
    reports: dict[str, Report],
) -> None:
    _assert_drawn(reports["against"].page, EVALUATION_PLOTS, EVALUATION_PLOTS)
    _assert_drawn(reports["alone"].page, EVALUATION_PLOTS - {"query-scatter"}, EVALUATION_PLOTS)


def test_the_report_a_run_writes_draws_what_the_cli_draws(reports: dict[str, Report]) -> None:
    """The run wrote its report before other tests added benchmarks: only history may differ."""
    by_run = reports["by-run"]
    expected = _expected_benchmark_plots(reports["benchmark"]) - {"history"}
    for figure in by_run.page.figures():
        assert figure.marks > 0, f"plot {figure.name} drew no mark: {figure}"
    assert {f.name for f in by_run.page.figures()} - {"history"} == expected
    for name in ("alone", "against"):
        record = reports[name].record
        by_run_path = by_run.data_dir / "evaluations" / record["evaluation_id"] / REPORT_FILE
        assert by_run_path.is_file(), f"the demo's evaluation run wrote no {by_run_path}"
        if name == "alone":
            # an evaluation's report depends on its partition alone: the same bytes
            assert by_run_path.read_bytes() == reports[name].path.read_bytes()


def _assert_table_holds(
    page: OpenedPage, table_id: str, columns: tuple[Column, ...], rows: list[dict], key: tuple
) -> None:
    table = page.evaluate(TABLE_JS, table_id)
    assert table is not None, f"no <table id={table_id}>"
    assert table["width"] > 0 and table["height"] > 0
    shown_rows = {row["key"]: row["cells"] for row in table["rows"]}
    assert len(shown_rows) == len(table["rows"]), "repeated data-row keys"
    expected_keys = ["|".join(str(row[name]) for name in key) for row in rows]
    assert [row["key"] for row in table["rows"]] == expected_keys
    wrong = []
    for row, row_key in zip(rows, expected_keys, strict=True):
        cells = {cell["column"]: cell for cell in shown_rows[row_key]}
        assert list(cells) == [c.name for c in columns], row_key
        for column in columns:
            raw, cell = row[column.name], cells[column.name]
            if cell["value"] != ("" if raw is None else repr(raw)):
                wrong.append(
                    f"{row_key} {column.name}: data-value {cell['value']!r}, record {raw!r}"
                )
            if not shown_is_a_rounding(raw, cell["shown"], column):
                wrong.append(f"{row_key} {column.name}: shows {cell['shown']!r}, record {raw!r}")
    assert wrong == []


@pytest.mark.parametrize("name", ["benchmark", "by-run"])
def test_the_verdict_table_shows_the_records_numbers(reports: dict[str, Report], name: str) -> None:
    report = reports[name]
    record = report.record
    rows = verdict_rows(record)
    # The rows are the record's numbers, read here from record.json, not the report's.
    results = {r["retriever_id"]: r for r in record["results"]}
    for item in record["comparison"]["comparisons"]:
        (tested,) = [
            r
            for r in rows
            if r["candidate_retriever_id"] == item["candidate_retriever_id"] and r["tested"]
        ]
        assert [tested["ci_low"], tested["ci_high"]] == item["confidence_interval"]
        assert tested["p_value_holm"] == item["p_value_adjusted"]
        assert (
            tested["baseline_value"]
            == results[record["baseline_retriever_id"]]["metrics"]["ndcg_at_k"]["10"]
        )
    key = ("candidate_retriever_id", "metric", "k")
    _assert_table_holds(report.page, "verdict-table", VERDICT_COLUMNS, rows, key)


@pytest.mark.parametrize("name", ["against", "alone"])
def test_the_metrics_table_shows_the_records_numbers(reports: dict[str, Report], name: str) -> None:
    report = reports[name]
    rows = evaluation_rows(report.record)
    assert rows
    if report.baseline is not None:
        # Against a baseline evaluation, its rows follow this evaluation's.
        rows += evaluation_rows(report.baseline)
    key = ("retriever_id", "measure", "k")
    _assert_table_holds(report.page, "metrics-table", EVALUATION_COLUMNS, rows, key)


def _assert_a_pair(pair: dict[str, Any], where: str, plain_text: str) -> int:
    """Both rankings of a query pair side by side, its direction the sign of its delta, marked
    documents styled apart from plain ones; how many documents are marked."""
    delta = float(pair["delta"])
    assert (pair["direction"], delta > 0) in {("improved", True), ("degraded", False)}, where
    baseline, candidate = pair["rankings"]
    assert (baseline["side"], candidate["side"]) == ("baseline", "candidate"), where
    assert baseline["docs"] > 0 and candidate["docs"] > 0, where
    assert abs(baseline["top"] - candidate["top"]) < 1 and baseline["right"] <= candidate["left"], (
        f"{where}: the rankings are not side by side"
    )
    for ranking in pair["rankings"]:
        for item in ranking["marked"]:
            assert ranking["plainStyle"] is None or item["style"] != ranking["plainStyle"], (
                f"{where}: {plain_text}"
            )
    return sum(len(ranking["marked"]) for ranking in pair["rankings"])


def test_the_drill_down_shows_both_rankings_side_by_side_with_interactions_marked(
    reports: dict[str, Report],
) -> None:
    report = reports["benchmark"]
    drills = report.page.evaluate(DRILL_JS, "interacted")
    assert drills, "no <section id=drill-down> with a <div class=drill>"
    assert {d["candidate"] for d in drills} <= set(report.record["candidate_retriever_ids"])
    results = {r["retriever_id"]: r["metrics"] for r in report.record["results"]}
    for drill in drills:
        metrics = results[drill["candidate"]]
        moved = metrics["sessions_improved"] + metrics["sessions_degraded"]
        assert bool(drill["pairs"]) == (moved > 0), (drill["candidate"], moved)
        marked = 0
        for pair in drill["pairs"]:
            where = f"{drill['candidate']} {pair['query']!r}"
            marked += _assert_a_pair(pair, where, "an interacted document looks like any other")
            for ranking in pair["rankings"]:
                for item in ranking["marked"]:
                    assert INTERACTION_TYPES & set(item["classes"]), (where, item)
        assert marked > 0 or not moved, f"{drill['candidate']}: no interacted document marked"


def _ndcg_at_10(data_dir: Path, evaluation_id: str) -> dict[str, float]:
    table = pq.read_table(data_dir / "evaluations" / evaluation_id / "query_metrics.parquet")
    return {
        row["query_id"]: row["value"]
        for row in table.to_pylist()
        if row["metric"] == "ndcg" and row["k"] == 10
    }


def test_against_a_baseline_the_queries_that_moved_most_are_shown_with_grades(
    reports: dict[str, Report],
) -> None:
    report = reports["against"]
    assert report.baseline is not None
    this = _ndcg_at_10(report.data_dir, report.record["evaluation_id"])
    baseline = _ndcg_at_10(report.data_dir, report.baseline["evaluation_id"])
    deltas = {q: this[q] - baseline[q] for q in this.keys() & baseline.keys()}
    (drill,) = report.page.evaluate(DRILL_JS, "relevant")
    assert drill["pairs"]
    graded = 0
    shown: dict[str, set[str]] = {"improved": set(), "degraded": set()}
    for pair in drill["pairs"]:
        where = f"query {pair['query']!r}"
        assert float(pair["delta"]) == pytest.approx(deltas[pair["query"]], abs=1e-12), where
        shown[pair["direction"]].add(pair["query"])
        graded += _assert_a_pair(pair, where, "a relevant document looks like any other")
        for ranking in pair["rankings"]:
            assert all(int(item["grade"]) > 0 for item in ranking["marked"]), (where, ranking)
    assert graded > 0, "no judged relevant document marked"
    # the most: no query left out moved further in its direction than one shown
    for direction, sign in (("improved", 1), ("degraded", -1)):
        if shown[direction]:
            weakest = min(sign * deltas[q] for q in shown[direction])
            left_out = [
                q for q, d in deltas.items() if q not in shown[direction] and sign * d > weakest
            ]
            assert left_out == [], (direction, left_out[:5])


@pytest.mark.parametrize("name", ["benchmark", "against"])
def test_the_report_names_what_its_numbers_came_from(reports: dict[str, Report], name: str) -> None:
    report = reports[name]
    record = report.record
    text = {
        s: report.page.evaluate(SECTION_TEXT_JS, s)
        for s in ("request", "settings", "provenance", "warnings")
    }
    assert None not in text.values(), text
    if name == "benchmark":
        hashes = {r["pipeline_hash"] for r in record["results"]}
        assert all(h in text["provenance"] for h in hashes), text["provenance"]
        assert record["comparison"]["estimator"]["click_model_id"] in text["provenance"]
    else:
        assert record["dataset_id"] in text["provenance"], text["provenance"]
    shown = report.page.evaluate(
        "() => Array.from(document.querySelectorAll('#warnings li')).map((li) => li.innerText.trim())"
    )
    if record["warnings"]:
        assert shown == record["warnings"]
    else:
        assert shown in ([], ["none"]) and "none" in text["warnings"].lower(), text["warnings"]


def test_the_screenshots_of_the_reports_are_pngs_under_a_megabyte(
    reports: dict[str, Report],
    report_browser: ReportBrowser,  # noqa: F811
    tmp_path: Path,
) -> None:
    """What `tasks.py screenshots` does once the demo has run, on this module's reports."""
    written = shoot(
        report_browser,
        {"benchmark": reports["benchmark"].path, "evaluation": reports["against"].path},
        tmp_path,
    )
    assert sorted(p.name for p in written.values()) == sorted(SHOTS.values())
    for path in written.values():
        size = path.stat().st_size
        with Image.open(path) as image:
            assert (image.format, image.width) == ("PNG", 1280), path
            # from the title down past the plots to the first query shown
            assert image.height > 2000, (path, image.size)
        assert 0 < size < MAX_BYTES, (path, size)


def test_the_reports_come_from_the_one_shared_demo_world(
    small_demo: tuple[Path, CliResult],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """One `demo --small` world per session, whatever order the packages run in: a module that
    imported the fixture from a conftest would get a definition of its own and build a second one
    (about 11 s on two cores)."""
    base = tmp_path_factory.getbasetemp()
    built = sorted(p for p in base.glob("small-demo*") if not p.is_symlink())
    assert built == [small_demo[0].parent]
