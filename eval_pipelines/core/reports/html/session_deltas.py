"""Per-session and per-query NDCG@10 deltas of a benchmark's candidates, read from its session scores.

The delta of a session is the column the comparison's estimator judged by (counterfactual or logged
order), candidate minus baseline over the sessions both scored (a metric that is undefined, NaN,
is no score); a query's delta is the mean over its sessions. Only what the drill-down and the
distribution plot show is derived here; the verdicts' numbers come from the record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

COUNTERFACTUAL = "counterfactual"
SCORE_COLUMNS = {COUNTERFACTUAL: "cf_ndcg_at_10"}
LOGGED_ORDER_COLUMN = "ndcg_at_10"


def estimator_column(item: dict[str, Any], scores: pa.Table) -> str:
    """The session-scores column of the estimator the candidate's comparison used."""
    column = SCORE_COLUMNS.get(item.get("estimator") or "", LOGGED_ORDER_COLUMN)
    return column if column in scores.column_names else LOGGED_ORDER_COLUMN


@dataclass(frozen=True)
class SessionDeltas:
    """Sessions both retrievers scored: their execution ids, query keys and deltas, in one order."""

    execution_ids: list[str]
    query_keys: list[str]
    deltas: np.ndarray


@dataclass(frozen=True)
class QueryDelta:
    query_key: str
    delta: float
    sessions: int
    execution_id: str  # the representative session: the one moved furthest the query's way


def _values(scores: pa.Table, retriever_id: str, column: str) -> dict[str, tuple[str, float]]:
    rows = scores.filter(pc.equal(scores["retriever_id"], retriever_id))
    ids = rows["execution_id"].to_pylist()
    keys = rows["query_key"].to_pylist()
    values = rows[column].to_pylist()
    return {
        i: (k, v)
        for i, k, v in zip(ids, keys, values, strict=True)
        if v is not None and math.isfinite(v)
    }


def session_deltas(scores: pa.Table, baseline: str, candidate: str, column: str) -> SessionDeltas:
    base = _values(scores, baseline, column)
    cand = _values(scores, candidate, column)
    ids = sorted(base.keys() & cand.keys())
    return SessionDeltas(
        ids,
        [base[i][0] for i in ids],
        np.array([cand[i][1] - base[i][1] for i in ids], dtype=float),
    )


def query_deltas(sessions: SessionDeltas) -> list[QueryDelta]:
    """One entry per query key, in key order."""
    by_query: dict[str, list[int]] = {}
    for index, key in enumerate(sessions.query_keys):
        by_query.setdefault(key, []).append(index)
    found = []
    for key in sorted(by_query):
        indices = by_query[key]
        values = sessions.deltas[indices]
        mean = float(values.mean())
        pick = indices[int(np.argmax(values if mean >= 0 else -values))]
        found.append(QueryDelta(key, mean, len(indices), sessions.execution_ids[pick]))
    return found


def most_moved(queries: list[QueryDelta], count: int) -> tuple[list[QueryDelta], list[QueryDelta]]:
    """The `count` queries improved most and degraded most (ties in key order)."""
    improved = sorted((q for q in queries if q.delta > 0), key=lambda q: (-q.delta, q.query_key))
    degraded = sorted((q for q in queries if q.delta < 0), key=lambda q: (q.delta, q.query_key))
    return improved[:count], degraded[:count]
