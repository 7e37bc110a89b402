"""The report of a completed benchmark: the verdict table, its plots, the drill-down into the queries
each candidate moved most, the history of each pairing, and what the numbers came from."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.click_model import store as click_model_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.reports import history
from eval_pipelines.core.reports.html import benchmark_plots as plots
from eval_pipelines.core.reports.html.common import closing_sections, title_facts
from eval_pipelines.core.reports.html.figures import inline_svg
from eval_pipelines.core.reports.html.page import Page, data_table, note, simple_table, text
from eval_pipelines.core.reports.html.rankings import pair, ranking_list
from eval_pipelines.core.reports.html.session_deltas import (
    QueryDelta,
    SessionDeltas,
    estimator_column,
    most_moved,
    query_deltas,
    session_deltas,
)
from eval_pipelines.core.reports.html.sources import Partition
from eval_pipelines.core.reports.verdict_table import VERDICT_COLUMNS, verdict_rows
from eval_pipelines.core.table_names import (
    CLICK_MODEL_FACT,
    REPLAYS,
    SESSION_INTERACTIONS,
    SESSION_SCORES,
    SESSIONS,
)

DRILL_QUERIES = 10
VERDICT_KEY = ("candidate_retriever_id", "metric", "k")
# The headline: the tested row of each candidate, without the columns every tested row shares.
# Read left to right: who, the verdict, the numbers behind it, and the reasons last (the widest).
_TESTED_ORDER = (
    "candidate_retriever_id", "verdict", "delta", "ci_low", "ci_high", "p_value", "p_value_holm",
    "effect_size", "mde", "baseline_value", "candidate_value", "failure_rate", "latency_p50_ms",
    "reasons",
)  # fmt: skip
TESTED_COLUMNS = tuple(next(c for c in VERDICT_COLUMNS if c.name == name) for name in _TESTED_ORDER)


def _snapshot_of(paths: DataPaths, model_id: str | None) -> str | None:
    """The stored snapshot a model id names (`pbm-` + the snapshot id's first 12 characters)."""
    if not model_id:
        return None
    folder = click_model_store.click_models_dir(paths)
    found = [
        d.name
        for d in sorted(folder.glob("*"))
        if click_model_store.model_id_of(d.name) == model_id
    ]
    return found[0] if found else None


def _click_model(paths: DataPaths, partition: Partition) -> dict[str, Any]:
    """The click model the sample recorded (its facts), with its curve from the model store when
    the store still holds it."""
    fact = dict(partition.facts(SESSIONS).get(CLICK_MODEL_FACT) or {})
    estimator = (partition.record.get("comparison") or {}).get("estimator") or {}
    fact.setdefault("model_id", estimator.get("click_model_id"))
    snapshot = fact.get("snapshot_id") or _snapshot_of(paths, fact.get("model_id"))
    model = click_model_store.load(paths, snapshot) if snapshot else None
    if model is not None:
        fact["propensities"] = model.propensities.to_pylist()
    return fact


def _latencies(scores: pa.Table, retriever_ids: list[str]) -> dict[str, np.ndarray]:
    found = {}
    for retriever_id in retriever_ids:
        rows = scores.filter(pc.equal(scores["retriever_id"], retriever_id))["latency_ms"]
        found[retriever_id] = rows.drop_null().to_numpy(zero_copy_only=False)
    return found


def _rows_of(table: pa.Table, execution_ids: set[str]) -> pa.Table:
    return table.filter(
        pc.is_in(table["execution_id"], pa.array(sorted(execution_ids), pa.string()))
    )


Rankings = dict[tuple[str, str], list[str]]
Interactions = dict[str, dict[str, list[str]]]


def _article(
    query: QueryDelta,
    direction: str,
    retrievers: tuple[str, str],
    rankings: Rankings,
    done: Interactions,
) -> str:
    """One query: its representative session's two top 10s, the user's interactions marked."""
    sides = [
        (
            side,
            f"{side}: {rid}",
            ranking_list(
                side, rankings.get((query.execution_id, rid)), done.get(query.execution_id)
            ),
        )
        for side, rid in zip(("baseline", "candidate"), retrievers, strict=True)
    ]
    heading = (
        f"{query.query_key!r}: NDCG@10 {query.delta:+.4f} (mean of {query.sessions}"
        f" session(s); session {query.execution_id} shown)"
    )
    return pair(query.query_key, direction, query.delta, heading, sides, query.execution_id)


def _drill_down(partition: Partition, deltas: dict[str, SessionDeltas], baseline: str) -> str:
    picks = {
        candidate: most_moved(query_deltas(found), DRILL_QUERIES)
        for candidate, found in deltas.items()
    }
    wanted = {q.execution_id for moved in picks.values() for side in moved for q in side}
    replays = _rows_of(
        partition.table(REPLAYS, ["execution_id", "retriever_id", "ranking"]), wanted
    )
    rankings = {(r["execution_id"], r["retriever_id"]): r["ranking"] for r in replays.to_pylist()}
    done: Interactions = {}
    for row in _rows_of(partition.table(SESSION_INTERACTIONS), wanted).to_pylist():
        by_document = done.setdefault(row["execution_id"], {})
        by_document.setdefault(row["document_id"], []).append(row["interaction_type"])
    parts = []
    for candidate, (improved, degraded) in picks.items():
        articles = [
            _article(query, direction, (baseline, candidate), rankings, done)
            for direction, queries in (("improved", improved), ("degraded", degraded))
            for query in queries
        ]
        body = "".join(articles) or note("no query moved either way")
        parts.append(
            f'<div class="drill" data-candidate="{text(candidate)}"><h3>{text(candidate)}</h3>'
            f"{body}</div>"
        )
    return "".join(parts)


def _history(paths: DataPaths, page: Page, baseline: str, candidates: list[str]) -> str:
    parts = []
    for candidate in candidates:
        points = history.candidate_history(paths, baseline, candidate)
        if len(points) < 2:
            continue
        svg = inline_svg(history.history_svg(points, baseline, candidate), f"history-{candidate}")
        parts.append(
            page.plot(
                "history", svg, f"{candidate} against {baseline}: NDCG@10 delta over time", ""
            )
        )
        parts.append(
            simple_table(
                ["benchmark", "completed", "estimator", "sessions", "delta", "CI", "verdict"],
                [
                    [
                        p.benchmark_id,
                        p.completed_at,
                        p.estimator,
                        p.sessions,
                        "–" if p.delta is None else f"{p.delta:+.4f}",
                        "–"
                        if p.ci_low is None or p.ci_high is None
                        else f"[{p.ci_low:.4f}, {p.ci_high:.4f}]",
                        p.verdict,
                    ]
                    for p in points
                ],
            )
        )
    if not parts:
        why = "no candidate has two or more completed benchmarks against this baseline yet"
        page.omitted["history"] = why
        return note(f"No history: {why}.")
    return "".join(parts)


def _provenance(record: dict[str, Any], click_model: dict[str, Any]) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = [
        ("logs snapshot", click_model.get("snapshot_id") or "not recorded"),
        ("click model", click_model.get("model_id") or "not recorded"),
        ("estimator", ((record.get("comparison") or {}).get("estimator") or {}).get("used")),
    ]
    items += [
        (f"pipeline hash of {r['retriever_id']}", r.get("pipeline_hash"))
        for r in record.get("results") or []
    ]
    return items


def benchmark_page(paths: DataPaths, partition: Partition) -> Page:
    record = partition.record
    comparison = record.get("comparison") or {}
    baseline = comparison.get("baseline_retriever_id") or record.get("baseline_retriever_id")
    items = comparison.get("comparisons") or []
    candidates = [item["candidate_retriever_id"] for item in items]
    page = Page(
        "benchmark",
        partition.record_id,
        f"Benchmark {record.get('benchmark_name') or ''} ({partition.record_id})",
    )
    rows = verdict_rows(record)
    page.section(
        "summary",
        "Summary",
        title_facts(
            record,
            [
                ("baseline", baseline),
                ("candidates", ", ".join(candidates)),
                ("sessions", record.get("session_count")),
                ("recommendation", comparison.get("recommendation")),
            ],
        ),
    )
    tested = [row for row in rows if row["tested"]]
    page.section(
        "verdict",
        "Verdicts",
        note("Each candidate is tested once, on NDCG@10: its verdict, interval and p-values."),
        data_table("tested-table", TESTED_COLUMNS, tested, VERDICT_KEY),
        note("Every metric at every k (the tested row included): the mean paired deltas."),
        data_table("verdict-table", VERDICT_COLUMNS, rows, VERDICT_KEY),
    )
    scores = partition.table(SESSION_SCORES)
    deltas = {
        item["candidate_retriever_id"]: session_deltas(
            scores, baseline, item["candidate_retriever_id"], estimator_column(item, scores)
        )
        for item in items
    }
    click_model = _click_model(paths, partition)
    page.section(
        "plots",
        "Plots",
        *[
            page.plot(
                "forest",
                plots.forest(rows),
                "NDCG@10 delta per candidate with its 95% interval, coloured by verdict",
                "no candidate was tested",
            ),
            page.plot(
                "delta-distribution",
                plots.delta_distribution({c: d.deltas for c, d in deltas.items()}),
                "Per-session NDCG@10 deltas (the estimator's column), per candidate",
                "no session was scored by both the baseline and a candidate",
            ),
            page.plot(
                "taxonomy-deltas",
                plots.taxonomy_deltas(record),
                "NDCG@10 delta per taxonomy node; ▲ significant win, ▼ significant loss,"
                " · too few sessions to test",
                "the record holds no per-node metrics",
            ),
            page.plot(
                "latency",
                plots.latency(_latencies(scores, [baseline, *candidates])),
                "Latency per query and pipeline",
                "no pipeline recorded a latency",
            ),
            page.plot(
                "coverage",
                plots.coverage(record),
                "Share of each candidate's top 10 the logs showed users",
                "the comparison holds no coverage numbers (logged-order estimator)",
            ),
            page.plot(
                "position-bias",
                plots.position_bias(click_model.get("propensities") or []),
                f"Examination by position, click model {click_model.get('model_id')}",
                "no click model curve is available for this benchmark",
            ),
        ],
    )
    drill = _drill_down(partition, deltas, baseline)
    page.section(
        "drill-down",
        "Queries moved most",
        note(
            f"Per candidate, up to {DRILL_QUERIES} queries improved and degraded most by mean NDCG@10"
            " delta (the estimator's column); interacted documents are highlighted. Under the"
            " counterfactual estimator a session's NDCG is position-corrected and can pass 1, so a"
            " delta can pass 1 too."
        ),
        drill,
    )
    page.section("history", "History", _history(paths, page, baseline, candidates))
    closing_sections(page, partition, _provenance(record, click_model))
    return page
