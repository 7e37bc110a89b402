"""The report of a completed evaluation: its metrics, the queries it did worst on with the judged
documents marked, and, against a named baseline evaluation, the queries that moved most."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from matplotlib.axes import Axes

from eval_pipelines.core.datasets import load_dataset
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.reports.html import benchmark_plots
from eval_pipelines.core.reports.html.common import closing_sections, title_facts
from eval_pipelines.core.reports.html.figures import draw
from eval_pipelines.core.reports.html.page import Page, data_table, note, pivot_table, text
from eval_pipelines.core.reports.html.rankings import pair, ranking_list
from eval_pipelines.core.reports.html.sources import Partition
from eval_pipelines.core.reports.verdict_table import EVALUATION_COLUMNS, evaluation_rows
from eval_pipelines.core.retrieval.execution_store import find_execution
from eval_pipelines.core.table_names import QUERIES, QUERY_METRICS, RUNS

SHOWN_QUERIES = 10
SCATTER_POINTS = 2000
METRICS_KEY = ("retriever_id", "measure", "k")
Grades = dict[str, dict[str, int]]


def ndcg_at_10(partition: Partition) -> dict[str, float]:
    """Per-query NDCG@10 of an evaluation, by query id."""
    table = partition.table(QUERY_METRICS)
    rows = table.filter(pc.and_(pc.equal(table["metric"], "ndcg"), pc.equal(table["k"], 10)))
    pairs = zip(rows["query_id"].to_pylist(), rows["value"].to_pylist(), strict=True)
    return {query: value for query, value in pairs if value is not None and math.isfinite(value)}


def _runs(partition: Partition, query_ids: set[str]) -> dict[str, list[str] | None]:
    runs = partition.table(RUNS, ["query_id", "ranking"])
    runs = runs.filter(pc.is_in(runs["query_id"], pa.array(sorted(query_ids), pa.string())))
    return dict(zip(runs["query_id"].to_pylist(), runs["ranking"].to_pylist(), strict=True))


def _query_texts(partition: Partition) -> dict[str, str]:
    queries = partition.table(QUERIES, ["query_id", "query_text"])
    return dict(
        zip(queries["query_id"].to_pylist(), queries["query_text"].to_pylist(), strict=True)
    )


def _grades(paths: DataPaths, record: dict[str, Any], query_ids: set[str]) -> tuple[Grades, str]:
    """The dataset's grades of these queries, and a sentence on where they come from."""
    name = record.get("dataset_name")
    try:
        dataset = load_dataset(paths, name)
    except (InvalidInputError, FileNotFoundError) as exc:
        return {}, f"Grades unavailable: {exc}."
    judgments = dataset.judgments
    judgments = judgments.filter(
        pc.is_in(judgments["query_id"], pa.array(sorted(query_ids), pa.string()))
    )
    grades: Grades = {}
    for row in judgments.to_pylist():
        grades.setdefault(row["query_id"], {})[row["document_id"]] = row["relevance"]
    source = f"Grades from dataset {name} ({dataset.summary.dataset_id})."
    if dataset.summary.dataset_id != record.get("dataset_id"):
        source += (
            f" The evaluation ran on {record.get('dataset_id')}; the dataset has been"
            " replaced since, so marks may differ from what was scored."
        )
    return grades, source


def metrics_by_k(record: dict[str, Any], baseline: dict[str, Any] | None) -> str | None:
    def series(values: Mapping[str, Mapping[str, float]]) -> dict[str, list[tuple[int, float]]]:
        found: dict[str, list[tuple[int, float]]] = {}
        for k in sorted(values, key=int):
            for measure, value in values[k].items():
                if value is not None:
                    found.setdefault(measure, []).append((int(k), value))
        return found

    mine = series(record.get("metrics_by_k") or {})
    theirs = series((baseline or {}).get("metrics_by_k") or {})
    if not mine:
        return None

    def plot(axes: Axes) -> None:
        for index, (measure, points) in enumerate(sorted(mine.items())):
            colour = f"C{index % 10}"
            axes.plot(*zip(*points, strict=True), "o-", color=colour, label=measure)
            if measure in theirs:
                axes.plot(*zip(*theirs[measure], strict=True), "s--", color=colour, alpha=0.6)
        ks = sorted({k for points in mine.values() for k, _ in points})
        axes.set_xscale("log")
        axes.set_xticks(ks, [str(k) for k in ks])
        axes.minorticks_off()
        axes.set_xlabel("k")
        axes.set_ylabel("mean over queries")
        axes.legend(
            fontsize=7,
            loc="center left",
            bbox_to_anchor=(1.0, 0.5),
            title="solid: this\ndashed: baseline" if theirs else None,
        )

    return draw("metrics-by-k", plot)


def query_scatter(pairs: list[tuple[float, float]], names: tuple[str, str]) -> str | None:
    if not pairs:
        return None
    x, y = np.array(pairs).T

    def plot(axes: Axes) -> None:
        if len(pairs) > SCATTER_POINTS:
            axes.hexbin(x, y, gridsize=30, bins="log", extent=(0, 1, 0, 1), mincnt=1)
        else:
            axes.scatter(x, y, s=6, alpha=0.5)
        axes.plot([0, 1], [0, 1], color="#333", linewidth=0.8)
        axes.set_xlabel(f"NDCG@10 of {names[0]} (baseline)")
        axes.set_ylabel(f"NDCG@10 of {names[1]}")
        axes.set_aspect("equal")

    return draw("query-scatter", plot, 4.0, 4.0)


def _latencies(partitions: list[Partition]) -> dict[str, np.ndarray]:
    found = {}
    for partition in partitions:
        values = partition.table(RUNS, ["latency_ms"])["latency_ms"].drop_null()
        found[f"{partition.record['retriever_id']} ({partition.record_id})"] = values.to_numpy(
            zero_copy_only=False
        )
    return found


def _worst(
    partition: Partition, scores: dict[str, float], grades: Grades, texts: dict[str, str]
) -> str:
    worst = sorted(scores.items(), key=lambda item: (item[1], item[0]))[:SHOWN_QUERIES]
    runs = _runs(partition, {query_id for query_id, _ in worst})
    articles = [
        f'<article class="worst-query" data-query="{text(query_id)}" data-value="{text(repr(value))}">'
        f"<h3>{text(texts.get(query_id, query_id))} ({text(query_id)}): NDCG@10 {value:.4f}</h3>"
        f"{ranking_list('candidate', runs.get(query_id), grades=grades.get(query_id))}</article>"
        for query_id, value in worst
    ]
    return "".join(articles) or note("no query was scored")


def _drill(
    partition: Partition,
    baseline: Partition,
    deltas: dict[str, float],
    grades: Grades,
    texts: dict[str, str],
) -> str:
    improved = sorted((q for q in deltas.items() if q[1] > 0), key=lambda q: (-q[1], q[0]))
    degraded = sorted((q for q in deltas.items() if q[1] < 0), key=lambda q: (q[1], q[0]))
    chosen = [("improved", improved[:SHOWN_QUERIES]), ("degraded", degraded[:SHOWN_QUERIES])]
    wanted = {query_id for _, side in chosen for query_id, _ in side}
    mine, theirs = _runs(partition, wanted), _runs(baseline, wanted)
    articles = []
    for direction, side in chosen:
        for query_id, delta in side:
            sides = [
                (
                    "baseline",
                    f"baseline: {baseline.record['retriever_id']}",
                    ranking_list("baseline", theirs.get(query_id), grades=grades.get(query_id)),
                ),
                (
                    "candidate",
                    f"this: {partition.record['retriever_id']}",
                    ranking_list("candidate", mine.get(query_id), grades=grades.get(query_id)),
                ),
            ]
            heading = f"{texts.get(query_id, query_id)!r} ({query_id}): NDCG@10 {delta:+.4f}"
            articles.append(pair(query_id, direction, delta, heading, sides))
    body = "".join(articles) or note("no query moved either way")
    retriever = partition.record.get("retriever_id")
    return f'<div class="drill" data-candidate="{text(retriever)}">{body}</div>'


def _plots(
    page: Page,
    partition: Partition,
    baseline: Partition | None,
    scores: dict[str, float],
    theirs: dict[str, float],
) -> list[str]:
    common = sorted(scores.keys() & theirs.keys())
    names = (
        baseline.record.get("retriever_id") if baseline else "",
        partition.record.get("retriever_id"),
    )
    return [
        page.plot(
            "metrics-by-k",
            metrics_by_k(partition.record, baseline.record if baseline else None),
            "Each measure at each k (solid: this evaluation, dashed: the baseline's)",
            "the record holds no metrics by k",
        ),
        page.plot(
            "latency",
            benchmark_plots.latency(_latencies([partition, *([baseline] if baseline else [])])),
            "Latency per query",
            "no query recorded a latency",
        ),
        page.plot(
            "query-scatter",
            query_scatter([(theirs[q], scores[q]) for q in common], names),
            "Per-query NDCG@10: baseline (x) against this (y)",
            "no baseline evaluation named (--against), or no query in common",
        ),
    ]


def _pipeline_hash(paths: DataPaths, partition: Partition) -> str:
    """The evaluated pipeline's hash, as its stored executions carry it (the record holds none)."""
    ids = partition.table(RUNS, ["execution_id"])["execution_id"].drop_null().to_pylist()
    if not ids:
        return "unknown: no query ran"
    execution = find_execution(paths, partition.record.get("retriever_id") or "", min(ids))
    return execution.pipeline_hash if execution else "unknown: its executions are not stored"


def evaluation_page(paths: DataPaths, partition: Partition, baseline: Partition | None) -> Page:
    record = partition.record
    page = Page(
        "evaluation",
        partition.record_id,
        f"Evaluation of {record.get('retriever_id')} ({partition.record_id})",
    )
    page.section(
        "summary",
        "Summary",
        title_facts(
            record,
            [
                ("retriever", record.get("retriever_id")),
                ("dataset", record.get("dataset_name")),
                ("queries evaluated", record.get("evaluated_queries")),
                ("queries skipped", record.get("skipped_queries")),
                (
                    "baseline evaluation",
                    baseline.record_id if baseline else "none named (--against)",
                ),
            ],
        ),
    )
    rows = evaluation_rows(record) + (evaluation_rows(baseline.record) if baseline else [])
    shown = [partition] + ([baseline] if baseline else [])
    glance = [
        f"<h3>{text(source.record.get('retriever_id'))} ({text(source.record_id)})</h3>"
        + pivot_table(evaluation_rows(source.record), "measure", "k", "value")
        for source in shown
    ]
    page.section(
        "metrics",
        "Metrics",
        *glance,
        note("The same values, one row each:"),
        data_table("metrics-table", EVALUATION_COLUMNS, rows, METRICS_KEY),
    )
    scores = ndcg_at_10(partition)
    theirs = ndcg_at_10(baseline) if baseline else {}
    common = sorted(scores.keys() & theirs.keys())
    page.section("plots", "Plots", *_plots(page, partition, baseline, scores, theirs))
    texts = _query_texts(partition)
    deltas = {q: scores[q] - theirs[q] for q in common}
    grades, source = _grades(paths, record, set(scores))
    page.section(
        "worst-queries",
        "Worst queries",
        note(
            f"The {SHOWN_QUERIES} queries with the lowest NDCG@10, their top 10 with judged documents"
            f" marked. {source}"
        ),
        _worst(partition, scores, grades, texts),
    )
    if baseline is not None:
        page.section(
            "drill-down",
            "Queries moved most",
            note(
                f"Against {baseline.record_id}: up to {SHOWN_QUERIES} queries improved and degraded"
                f" most by NDCG@10, over the {len(common)} queries both evaluated."
            ),
            _drill(partition, baseline, deltas, grades, texts),
        )
    provenance = [
        ("dataset", f"{record.get('dataset_name')} ({record.get('dataset_id')})"),
        ("retriever", record.get("retriever_id")),
        ("pipeline hash", _pipeline_hash(paths, partition)),
    ]
    if baseline is not None:
        provenance.append(("baseline evaluation", baseline.record_id))
    closing_sections(page, partition, provenance)
    return page
