"""The HTML report over the small demo's own benchmark and evaluations (made by the real `demo`
run): the page contract other tools read (plots, tables' data-value, drill-down rankings equal to
the partition's replays and runs, no URL), escaping of stored values, and the same bytes twice."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eval_pipelines.core.datasets import load_dataset
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.reports.html.build import Report, build_report
from eval_pipelines.core.reports.verdict_table import (
    EVALUATION_COLUMNS,
    VERDICT_COLUMNS,
    evaluation_rows,
    verdict_rows,
)
from eval_pipelines_tests.cli.conftest import CliResult
from eval_pipelines_tests.core.reports.html_tree import Element, parse

URL = re.compile(r"(?i)\b(?:https?|ftp):|//[a-z0-9.-]+\.[a-z]{2,}/")


def _records(data_dir: Path, kind: str) -> list[dict[str, Any]]:
    return [
        json.loads(path.read_text())["record"]
        for path in sorted((data_dir / kind).glob("*/record.json"))
    ]


def _earliest(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The demo's own record: other tests share this world and may add records like it."""
    return min((r for r in records if r["status"] == "completed"), key=lambda r: r["created_at"])


@pytest.fixture(scope="module")
def demo(small_demo: tuple[Path, CliResult]) -> dict[str, Any]:
    data_dir = small_demo[0]
    benchmarks = _records(data_dir, "benchmarks")
    benchmark = _earliest(
        [r for r in benchmarks if r["benchmark_name"] == "demo: production vs candidates"]
    )
    evaluations = _records(data_dir, "evaluations")
    by_retriever = {
        retriever: _earliest([r for r in evaluations if r["retriever_id"] == retriever])
        for retriever in ("demo_better", "demo_prod", "demo_worse")
    }
    return {"paths": DataPaths(data_dir), "benchmark": benchmark, "evaluations": by_retriever}


def _with_history(data_dir: Path, record: dict[str, Any]) -> bool:
    """Whether some candidate has two or more completed benchmarks against the baseline."""
    counts: dict[str, int] = {}
    for other in _records(data_dir, "benchmarks"):
        if other["status"] == "completed" and (
            other["baseline_retriever_id"] == record["baseline_retriever_id"]
        ):
            for candidate in other["candidate_retriever_ids"]:
                counts[candidate] = counts.get(candidate, 0) + 1
    return any(counts.get(c, 0) >= 2 for c in record["candidate_retriever_ids"])


@pytest.fixture(scope="module")
def benchmark_report(demo: dict[str, Any]) -> Report:
    return build_report(demo["paths"], demo["benchmark"]["benchmark_id"])


@pytest.fixture(scope="module")
def evaluation_report(demo: dict[str, Any]) -> Report:
    evaluations = demo["evaluations"]
    return build_report(
        demo["paths"],
        evaluations["demo_better"]["evaluation_id"],
        against=evaluations["demo_prod"]["evaluation_id"],
    )


def _plots(page: Element) -> list[str]:
    figures = page.find_all("figure", class_="plot")
    for figure in figures:
        assert len(figure.find_all("svg")) == 1, figure.attrs
        assert figure.find("figcaption").text().strip()
    return [figure.attrs["data-plot"] for figure in figures]


def _assert_table(page: Element, table_id: str, columns: Any, rows: list[dict], key: tuple) -> None:
    table = page.find("table", id=table_id)
    shown = table.find_all("tr")[1:]
    assert [tr.attrs["data-row"] for tr in shown] == [
        "|".join(str(row[name]) for name in key) for row in rows
    ]
    for tr, row in zip(shown, rows, strict=True):
        cells = {td.attrs["data-column"]: td.attrs["data-value"] for td in tr.find_all("td")}
        assert cells == {c.name: "" if row[c.name] is None else repr(row[c.name]) for c in columns}


def _assert_self_contained(html: str) -> None:
    assert URL.search(html) is None, URL.search(html)
    assert "<script" not in html.lower() and "<link" not in html.lower()


def test_the_benchmark_report_keeps_the_contract(
    demo: dict[str, Any], benchmark_report: Report
) -> None:
    record = demo["benchmark"]
    page = parse(benchmark_report.html)
    body = page.find("body")
    assert (body.attrs["data-report-kind"], body.attrs["data-record-id"]) == (
        "benchmark",
        record["benchmark_id"],
    )
    _assert_self_contained(benchmark_report.html)
    plots = _plots(page)
    assert plots == benchmark_report.plots
    assert {"forest", "delta-distribution", "taxonomy-deltas", "latency"} <= set(plots)
    assert ("coverage" in plots) == any(
        (c.get("coverage") or {}).get("candidate") for c in record["comparison"]["comparisons"]
    )
    with_history = _with_history(demo["paths"].root, record)
    assert ("history" in plots) == with_history == ("history" not in benchmark_report.omitted)
    key = ("candidate_retriever_id", "metric", "k")
    _assert_table(page, "verdict-table", VERDICT_COLUMNS, verdict_rows(record), key)
    for section in ("request", "settings", "provenance", "warnings", "history", "drill-down"):
        assert page.find("section", id=section)
    provenance = page.find("section", id="provenance").text()
    assert all(r["pipeline_hash"] in provenance for r in record["results"])
    warnings = [li.text() for li in page.find("section", id="warnings").find_all("li")]
    assert warnings == (record["warnings"] or ["none"])


def test_the_drill_down_shows_the_replayed_rankings_and_the_users_interactions(
    demo: dict[str, Any], benchmark_report: Report
) -> None:
    folder = demo["paths"].root / "benchmarks" / demo["benchmark"]["benchmark_id"]
    replays = pq.read_table(folder / "replays.parquet").to_pylist()
    rankings = {(r["execution_id"], r["retriever_id"]): r["ranking"][:10] for r in replays}
    interacted: dict[tuple[str, str], set[str]] = {}
    for row in pq.read_table(folder / "session_interactions.parquet").to_pylist():
        interacted.setdefault((row["execution_id"], row["document_id"]), set()).add(
            row["interaction_type"]
        )
    baseline = demo["benchmark"]["baseline_retriever_id"]
    section = parse(benchmark_report.html).find("section", id="drill-down")
    pairs = 0
    for drill in section.find_all("div", class_="drill"):
        candidate = drill.attrs["data-candidate"]
        for article in drill.find_all("article", class_="query-pair"):
            pairs += 1
            execution = article.attrs["data-execution"]
            delta = float(article.attrs["data-delta"])
            assert (article.attrs["data-direction"] == "improved") == (delta > 0)
            sides = article.find_all("ol", class_="ranking")
            assert [s.attrs["data-side"] for s in sides] == ["baseline", "candidate"]
            for side, retriever in zip(sides, (baseline, candidate), strict=True):
                items = side.find_all("li")
                assert [li.attrs["data-doc"] for li in items] == rankings[execution, retriever]
                for li in items:
                    done = interacted.get((execution, li.attrs["data-doc"]), set())
                    assert li.classes == ({"interacted", *done} if done else set())
    assert pairs > 0


def test_the_evaluation_report_against_a_baseline_keeps_the_contract(
    demo: dict[str, Any], evaluation_report: Report
) -> None:
    record, baseline = demo["evaluations"]["demo_better"], demo["evaluations"]["demo_prod"]
    page = parse(evaluation_report.html)
    assert page.find("body").attrs["data-report-kind"] == "evaluation"
    _assert_self_contained(evaluation_report.html)
    assert _plots(page) == ["metrics-by-k", "latency", "query-scatter"]
    key = ("retriever_id", "measure", "k")
    rows = evaluation_rows(record) + evaluation_rows(baseline)
    _assert_table(page, "metrics-table", EVALUATION_COLUMNS, rows, key)
    provenance = page.find("section", id="provenance").text()
    assert record["dataset_id"] in provenance
    assert re.search(r"pipeline hash[0-9a-f]{64}", provenance), provenance
    runs = {}
    for name, evaluation in (("candidate", record), ("baseline", baseline)):
        folder = demo["paths"].root / "evaluations" / evaluation["evaluation_id"]
        for row in pq.read_table(folder / "runs.parquet").to_pylist():
            runs[name, row["query_id"]] = (row["ranking"] or [])[:10]
    judgments = load_dataset(demo["paths"], record["dataset_name"]).judgments.to_pylist()
    grades = {(j["query_id"], j["document_id"]): j["relevance"] for j in judgments}
    articles = page.find("section", id="drill-down").find_all("article", class_="query-pair")
    assert articles
    for article in articles:
        query = article.attrs["data-query"]
        for side in article.find_all("ol", class_="ranking"):
            items = side.find_all("li")
            assert [li.attrs["data-doc"] for li in items] == runs[side.attrs["data-side"], query]
            for li in items:
                grade = grades.get((query, li.attrs["data-doc"]))
                assert li.attrs.get("data-grade") == (None if grade is None else str(grade))
                assert ("relevant" in li.classes) == bool(grade)


def test_an_evaluation_alone_leaves_the_scatter_out_and_says_why(demo: dict[str, Any]) -> None:
    report = build_report(demo["paths"], demo["evaluations"]["demo_worse"]["evaluation_id"])
    page = parse(report.html)
    assert _plots(page) == ["metrics-by-k", "latency"]
    assert "query-scatter" in report.omitted
    assert "No query-scatter plot" in report.html
    assert page.find_all("section", id="drill-down") == []
    assert page.find_all("article", class_="worst-query")


def test_the_same_partition_gives_the_same_bytes(
    demo: dict[str, Any], benchmark_report: Report
) -> None:
    again = build_report(demo["paths"], demo["benchmark"]["benchmark_id"])
    assert again.html == benchmark_report.html


def test_stored_values_are_escaped(demo: dict[str, Any], tmp_path: Path) -> None:
    """A name, a warning and a request value holding markup show as text, never as markup."""
    record_id = demo["benchmark"]["benchmark_id"]
    paths = DataPaths(tmp_path / "data")
    shutil.copytree(
        demo["paths"].root / "benchmarks" / record_id, paths.root / "benchmarks" / record_id
    )
    folder = paths.root / "benchmarks" / record_id
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>&amp;'
    entry = json.loads((folder / "record.json").read_text())
    entry["record"]["benchmark_name"] = evil
    entry["record"]["warnings"] = [evil]
    (folder / "record.json").write_text(json.dumps(entry))
    request = json.loads((folder / "request.json").read_text())
    (folder / "request.json").write_text(json.dumps({**request, "benchmark_name": evil}))
    html = build_report(paths, record_id).html
    page = parse(html)
    assert page.find_all("script") == [] and page.find_all("img") == []
    assert [li.text() for li in page.find("section", id="warnings").find_all("li")] == [evil]
    assert evil in page.find("h1").text()


def test_a_record_that_is_not_completed_is_refused_with_its_status(
    demo: dict[str, Any], tmp_path: Path
) -> None:
    record_id = demo["benchmark"]["benchmark_id"]
    paths = DataPaths(tmp_path / "data")
    folder = paths.root / "benchmarks" / record_id
    shutil.copytree(demo["paths"].root / "benchmarks" / record_id, folder)
    entry = json.loads((folder / "record.json").read_text())
    entry["record"]["status"] = "replaying"
    (folder / "record.json").write_text(json.dumps(entry))
    with pytest.raises(InvalidInputError, match=f"{record_id} is replaying, not completed"):
        build_report(paths, record_id)


def test_a_session_whose_metric_is_undefined_is_left_out_not_a_crash(
    demo: dict[str, Any], tmp_path: Path
) -> None:
    """Counterfactual NDCG@10 is NaN where a session has no ideal gain: no score, not a delta."""
    record = demo["benchmark"]
    record_id = record["benchmark_id"]
    paths = DataPaths(tmp_path / "data")
    folder = paths.root / "benchmarks" / record_id
    shutil.copytree(demo["paths"].root / "benchmarks" / record_id, folder)
    scores = pq.read_table(folder / "session_scores.parquet")
    column = (
        "cf_ndcg_at_10"
        if record["comparison"]["estimator"]["used"] == "counterfactual"
        else "ndcg_at_10"
    )
    values = scores[column].to_pylist()
    baseline = scores["retriever_id"].to_pylist()
    first = baseline.index(record["baseline_retriever_id"])
    values[first] = float("nan")
    index = scores.column_names.index(column)
    pq.write_table(
        scores.set_column(index, column, pa.array(values, pa.float64())),
        folder / "session_scores.parquet",
    )
    report = build_report(paths, record_id)
    assert "delta-distribution" in report.plots
    assert "nan" not in re.findall(r'data-delta="([^"]*)"', report.html)
