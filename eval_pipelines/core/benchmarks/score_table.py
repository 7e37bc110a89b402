"""The scores table's columns, and the checks that read it into (retriever, session) matrices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.arrow_text import string_array
from eval_pipelines.core.benchmarks.estimators import (
    COUNTERFACTUAL,
    COUNTERFACTUAL_PREFIX,
    LOGGED_ORDER,
)
from eval_pipelines.core.benchmarks.inference import UNIT_SESSION
from eval_pipelines.core.benchmarks.stage_latencies import STAGE_LATENCIES_COLUMN, stage_latencies
from eval_pipelines.core.metrics.alignment import (
    COUNT_COLUMNS,
    ndcg_column,
    recall_column,
)
from eval_pipelines.core.metrics.counterfactual import COVERAGE_CUTOFF

COMPLETED = "completed"
FAILED = "failed"
UNKNOWN_ERROR = "unknown"
PRIMARY_CUTOFF = 10
RETRIEVER_COLUMN = "retriever_id"
LOGGED_NDCG_COLUMN = f"logged_ndcg_at_{PRIMARY_CUTOFF}"
SCORE_TABLE_COLUMNS: tuple[str, ...] = (
    "execution_id",
    RETRIEVER_COLUMN,
    "status",
    "error_type",
    "taxonomy_node_id",
    "latency_ms",
    STAGE_LATENCIES_COLUMN,
    LOGGED_NDCG_COLUMN,
)
PRIMARY_NDCG = ndcg_column(PRIMARY_CUTOFF)
QUERY_KEY_COLUMN = "query_key"
LOGGED_OVERLAP_COLUMN = "logged_overlap_at_10"
# Counterfactual and coverage columns (core/metrics/counterfactual.py), per (session, pipeline).
SHOWN_COLUMN, SEEN_COLUMN = f"shown_at_{COVERAGE_CUTOFF}", f"seen_at_{COVERAGE_CUTOFF}"
COVERAGE_COLUMNS: tuple[str, ...] = (SHOWN_COLUMN, SEEN_COLUMN, f"unseen_at_{COVERAGE_CUTOFF}")
IF_UNSEEN_BEST = f"ndcg_at_{PRIMARY_CUTOFF}_if_unseen_best"
LOGGED_CF_NDCG_COLUMN = f"logged_{COUNTERFACTUAL_PREFIX}{PRIMARY_NDCG}"
CF_RANK_WEIGHT_COLUMN = f"{COUNTERFACTUAL_PREFIX}rank_weight"
CF_RANK_SUM_COLUMN = f"{COUNTERFACTUAL_PREFIX}rank_sum"
CF_CLIPPED_COLUMN = f"{COUNTERFACTUAL_PREFIX}weights_clipped"
CF_WEIGHTED_COLUMN = f"{COUNTERFACTUAL_PREFIX}weights"


@dataclass(frozen=True)
class ScoreGrid:
    """The scores table as (retriever, execution) matrices; NaN where a retriever has no usable value."""

    execution_ids: list[str]
    present: np.ndarray
    completed: np.ndarray
    scored: np.ndarray
    values: dict[str, np.ndarray]
    latency: np.ndarray
    stage_latency: dict[str, np.ndarray]
    logged_ndcg: np.ndarray
    logged_overlap: (
        np.ndarray
    )  # share of the logged top 10 each replay keeps in its top 10 (NaN: unknown)
    scorable: np.ndarray  # the session has evidence (any retriever can be scored on it)
    cluster: np.ndarray  # the session's unit of inference: its query, or itself
    node: np.ndarray
    node_names: list[str]
    error_summaries: list[dict[str, int]]
    estimator: str = LOGGED_ORDER
    coverage: dict[str, np.ndarray] = field(default_factory=dict)  # shown / seen share of top 10
    if_unseen_best: np.ndarray | None = None  # NDCG@10 with never-shown documents at their best


@dataclass(frozen=True)
class _Cells:
    """Where each row of the scores table lands in the (retriever, execution) matrices."""

    execution_ids: list[str]
    execution_code: np.ndarray
    retriever_code: np.ndarray
    retriever_count: int

    def grid(self, row_values: np.ndarray, fill: Any = np.nan) -> np.ndarray:
        matrix = np.full(
            (self.retriever_count, len(self.execution_ids)),
            fill,
            dtype=np.asarray(row_values).dtype,
        )
        matrix[self.retriever_code, self.execution_code] = row_values
        return matrix


def metric_names(cutoffs: Sequence[int]) -> list[str]:
    """The rank metrics each estimator gives: NDCG and recall at every cutoff."""
    return [*(ndcg_column(k) for k in cutoffs), *(recall_column(k) for k in cutoffs)]


def metric_columns(cutoffs: Sequence[int]) -> list[str]:
    return [*metric_names(cutoffs), *COUNT_COLUMNS]


def estimator_columns(estimator: str, cutoffs: Sequence[int]) -> dict[str, str]:
    """The scores table's column behind each metric under an estimator (counts are always logged)."""
    prefix = COUNTERFACTUAL_PREFIX if estimator == COUNTERFACTUAL else ""
    names = {name: prefix + name for name in metric_names(cutoffs)}
    names.update({name: name for name in COUNT_COLUMNS})
    names[LOGGED_NDCG_COLUMN] = LOGGED_CF_NDCG_COLUMN if prefix else LOGGED_NDCG_COLUMN
    names[IF_UNSEEN_BEST] = prefix + IF_UNSEEN_BEST
    return names


def score_grid(
    scores: pa.Table,
    retriever_ids: Sequence[str],
    cutoffs: Sequence[int],
    unit: str,
    estimator: str = LOGGED_ORDER,
) -> ScoreGrid:
    """Every column checked (the first problem raises ValueError naming its column and row); the
    metrics are the estimator's, under their logged-order names."""
    columns = estimator_columns(estimator, cutoffs)
    metrics = metric_columns(cutoffs)
    required = [c for c in SCORE_TABLE_COLUMNS if c != STAGE_LATENCIES_COLUMN] + [
        columns[name] for name in [*metrics, LOGGED_NDCG_COLUMN]
    ]
    missing = [c for c in required if c not in scores.column_names]
    if missing:
        raise ValueError(f"scores: missing columns {missing}")
    cells = _cells(scores, retriever_ids)
    row_completed, row_failed = _row_status(scores)
    latency = _float_array(scores, "latency_ms")
    _require(
        row_completed & ~(latency >= 0), "latency_ms", "is missing or negative on a completed row"
    )
    row_scorable = np.isfinite(_float_array(scores, columns[LOGGED_NDCG_COLUMN]))
    if estimator != COUNTERFACTUAL:
        row_scorable = None
    values = {
        name: cells.grid(column)
        for name, column in _metric_rows(
            scores, columns, metrics, cutoffs, row_completed, row_scorable
        ).items()
    }
    completed = cells.grid(row_completed, False)
    if estimator == COUNTERFACTUAL:
        scored = completed & cells.grid(row_scorable, False)
    else:
        scored = completed & (values["interacted_count"] > 0)
    logged_ndcg = _logged_ndcg(scores, cells, scored, columns[LOGGED_NDCG_COLUMN])
    node, node_names = _per_execution_node(scores, cells.execution_code, cells.execution_ids)
    cluster = _clusters(scores, cells, unit)
    stages = _stage_latencies(scores, row_completed)
    return ScoreGrid(
        execution_ids=cells.execution_ids,
        present=cells.grid(np.ones(row_completed.size, dtype=bool), False),
        completed=completed,
        scored=scored,
        values=values,
        latency=cells.grid(np.where(row_completed, latency, np.nan)),
        stage_latency={stage: cells.grid(row_values) for stage, row_values in stages.items()},
        logged_ndcg=logged_ndcg,
        logged_overlap=cells.grid(_logged_overlap(scores, row_completed)),
        scorable=np.isfinite(logged_ndcg),
        cluster=cluster,
        node=node,
        node_names=node_names,
        error_summaries=_error_summaries(
            scores, cells.retriever_code, row_failed, len(retriever_ids)
        ),
        estimator=estimator,
        coverage={
            name: cells.grid(np.where(row_completed, _float_array(scores, name), np.nan))
            for name in (SHOWN_COLUMN, SEEN_COLUMN)
            if name in scores.column_names
        },
        if_unseen_best=(
            cells.grid(
                np.where(row_completed, _float_array(scores, columns[IF_UNSEEN_BEST]), np.nan)
            )
            if columns[IF_UNSEEN_BEST] in scores.column_names
            else None
        ),
    )


def _cells(scores: pa.Table, retriever_ids: Sequence[str]) -> _Cells:
    """Each row's execution and retriever codes; a retriever outside the benchmark, or a second row
    of one (retriever, execution), is an error."""
    execution = pc.dictionary_encode(_string_array(scores, "execution_id", nullable=False))
    execution_ids: list[str] = execution.dictionary.to_pylist()
    named = _string_array(scores, RETRIEVER_COLUMN, nullable=False)
    code = pc.index_in(named, value_set=pa.array(list(retriever_ids), pa.string()))
    if code.null_count:
        row = _first_true(code.is_null())
        raise ValueError(
            f"scores.{RETRIEVER_COLUMN}: row {row} names {named[row].as_py()!r},"
            f" not one of the benchmark's pipelines {list(retriever_ids)}"
        )
    cells = _Cells(execution_ids, _codes(execution.indices), _codes(code), len(retriever_ids))
    flat = cells.retriever_code * len(execution_ids) + cells.execution_code
    unique, counts = np.unique(flat, return_counts=True)
    if (counts > 1).any():
        repeated = int(unique[counts > 1][0])
        raise ValueError(
            f"scores: execution {execution_ids[repeated % len(execution_ids)]!r} has more than"
            f" one row for pipeline {retriever_ids[repeated // len(execution_ids)]!r}"
        )
    return cells


def _row_status(scores: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(completed, failed) per row; any other status is an error."""
    status = _string_array(scores, "status", nullable=False)
    row_completed = pc.equal(status, COMPLETED).to_numpy(zero_copy_only=False)
    row_failed = pc.equal(status, FAILED).to_numpy(zero_copy_only=False)
    if not (row_completed | row_failed).all():
        row = _first_true(~(row_completed | row_failed))
        raise ValueError(
            f"scores.status: row {row} is {status[row].as_py()!r}, not {COMPLETED!r} or {FAILED!r}"
        )
    return row_completed, row_failed


def _metric_rows(
    scores: pa.Table,
    columns: dict[str, str],
    metrics: list[str],
    cutoffs: Sequence[int],
    row_completed: np.ndarray,
    row_scorable: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """Each metric per row, NaN on failed rows: a completed row must have its counts, and its
    NDCG and recall too when its session has evidence (interacted documents, when logged)."""
    values = {
        name: np.where(row_completed, _float_array(scores, columns[name]), np.nan)
        for name in metrics
    }
    for name in COUNT_COLUMNS:
        _require(row_completed & np.isnan(values[name]), name, "is missing on a completed row")
    with_evidence = row_completed & (
        values["interacted_count"] > 0 if row_scorable is None else row_scorable
    )
    for name in metrics[: 2 * len(cutoffs)]:
        _require(
            with_evidence & ~np.isfinite(values[name]),
            columns[name],
            "is missing on a completed row with interacted documents",
        )
    return values


def _logged_ndcg(scores: pa.Table, cells: _Cells, scored: np.ndarray, column: str) -> np.ndarray:
    """The logged ranking's NDCG@10 per execution; one a retriever scored must have it."""
    logged_ndcg = _per_execution_value(
        _float_array(scores, column), cells.execution_code, cells.execution_ids
    )
    unscorable = scored.any(axis=0) & np.isnan(logged_ndcg)
    if unscorable.any():
        raise ValueError(
            f"scores.{column}: missing for execution"
            f" {cells.execution_ids[_first_true(unscorable)]!r}, which has interacted documents"
        )
    return logged_ndcg


def _clusters(scores: pa.Table, cells: _Cells, unit: str) -> np.ndarray:
    if unit == UNIT_SESSION:
        return np.arange(len(cells.execution_ids), dtype=np.int64)
    if QUERY_KEY_COLUMN not in scores.column_names:
        raise ValueError(
            f"scores: missing column {QUERY_KEY_COLUMN!r}, which query-level inference clusters by"
        )
    return _per_execution_query(scores, cells.execution_code, cells.execution_ids)


def _logged_overlap(scores: pa.Table, row_completed: np.ndarray) -> np.ndarray:
    if LOGGED_OVERLAP_COLUMN not in scores.column_names:
        return np.full(row_completed.size, np.nan)
    return np.where(row_completed, _float_array(scores, LOGGED_OVERLAP_COLUMN), np.nan)


def _stage_latencies(scores: pa.Table, row_completed: np.ndarray) -> dict[str, np.ndarray]:
    if STAGE_LATENCIES_COLUMN not in scores.column_names:
        return {}
    column = scores.column(STAGE_LATENCIES_COLUMN).combine_chunks()
    if not pa.types.is_map(column.type):
        column = _string_array(scores, STAGE_LATENCIES_COLUMN, nullable=True)
    return stage_latencies(column, row_completed)


def _require(bad_rows: np.ndarray, column: str, problem: str) -> None:
    if bad_rows.any():
        raise ValueError(f"scores.{column}: row {_first_true(bad_rows)} {problem}")


def _codes(indices: pa.Array) -> np.ndarray:
    return indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def _string_array(scores: pa.Table, name: str, *, nullable: bool) -> pa.Array:
    return string_array(scores.column(name), f"scores.{name}", nullable=nullable)


def _float_array(scores: pa.Table, name: str) -> np.ndarray:
    column = scores.column(name).combine_chunks()
    kind = column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)):
        raise ValueError(f"scores.{name}: type {kind} is not numeric")
    return column.cast(pa.float64()).to_numpy(zero_copy_only=False)


def _first_true(mask: pa.Array | np.ndarray) -> int:
    if isinstance(mask, pa.Array):
        mask = mask.to_numpy(zero_copy_only=False)
    return int(np.flatnonzero(mask)[0])


def _per_execution_value(
    row_values: np.ndarray, execution_code: np.ndarray, execution_ids: list[str]
) -> np.ndarray:
    """The one value every row of an execution carries (NaN when none has it); disagreement is an error."""
    low = np.full(len(execution_ids), np.inf)
    high = np.full(len(execution_ids), -np.inf)
    np.fmin.at(low, execution_code, row_values)
    np.fmax.at(high, execution_code, row_values)
    differing = np.isfinite(low) & (low != high)
    if differing.any():
        raise ValueError(
            f"scores.{LOGGED_NDCG_COLUMN}: rows of execution"
            f" {execution_ids[_first_true(differing)]!r} disagree"
        )
    return np.where(np.isfinite(low), low, np.nan)


def _per_execution_code(
    code: np.ndarray, execution_code: np.ndarray, execution_ids: list[str], column: str
) -> np.ndarray:
    """The one code (>= 0) the rows of each execution carry, -1 where none has one; rows of one
    execution with different codes are an error."""
    low = np.full(len(execution_ids), np.iinfo(np.int64).max)
    high = np.full(len(execution_ids), -1, dtype=np.int64)
    named = code >= 0
    np.minimum.at(low, execution_code[named], code[named])
    np.maximum.at(high, execution_code[named], code[named])
    differing = (high >= 0) & (low != high)
    if differing.any():
        raise ValueError(
            f"scores.{column}: rows of execution {execution_ids[_first_true(differing)]!r} disagree"
        )
    return high


def _per_execution_node(
    scores: pa.Table, execution_code: np.ndarray, execution_ids: list[str]
) -> tuple[np.ndarray, list[str]]:
    """Each execution's taxonomy node code (-1: none) and the sorted node names."""
    nodes = _string_array(scores, "taxonomy_node_id", nullable=True)
    names = sorted(pc.unique(nodes.drop_null()).to_pylist())
    code = _codes(pc.fill_null(pc.index_in(nodes, value_set=pa.array(names, pa.string())), -1))
    return _per_execution_code(code, execution_code, execution_ids, "taxonomy_node_id"), names


def _per_execution_query(
    scores: pa.Table, execution_code: np.ndarray, execution_ids: list[str]
) -> np.ndarray:
    """Each execution's query code (its cluster); rows of one execution must agree."""
    keys = _string_array(scores, QUERY_KEY_COLUMN, nullable=False)
    code = _codes(pc.dictionary_encode(keys).indices)
    return _per_execution_code(code, execution_code, execution_ids, QUERY_KEY_COLUMN)


def _error_summaries(
    scores: pa.Table, retriever_code: np.ndarray, row_failed: np.ndarray, retriever_count: int
) -> list[dict[str, int]]:
    """Failed rows per error type, per retriever; a failed row without an error_type counts as
    "unknown"."""
    error_types = _string_array(scores, "error_type", nullable=True).to_pylist()
    summaries: list[dict[str, int]] = [{} for _ in range(retriever_count)]
    for row in np.flatnonzero(row_failed):
        summary = summaries[int(retriever_code[row])]
        error_type = error_types[row] or UNKNOWN_ERROR
        summary[error_type] = summary.get(error_type, 0) + 1
    return [dict(sorted(summary.items())) for summary in summaries]
