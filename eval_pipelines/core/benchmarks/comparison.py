"""From per-session scores of every pipeline to a benchmark's `results` and `comparison` records.

Definitions: ../shared/DESIGN.md "Metric definitions". Input: one row per (execution_id, pipeline_id)
with the replay's outcome and score_sessions' columns (see SCORE_TABLE_COLUMNS), and the session's
query_key for query-level inference. The first pipeline is the baseline. Choices made where the
contract is silent, so every record is defined and JSON:
- A session counts for a pipeline's metrics when that pipeline replayed it successfully and it has at
  least one interacted document. With no such session, means are 0.0 (every k key present),
  mean_rank_clicked is 0.0 without clicked documents, and mean_rank_purchased is None without purchases.
- Latency figures use successful calls only: a failure's wall time (often a timeout) says nothing about
  the retriever's speed, and failures are reported in failed_sessions / error_summary instead.
  latency_delta_ms is the mean paired difference over sessions both pipelines replayed successfully.
- A failed row without an error_type is counted under "unknown" in error_summary.
- taxonomy_deltas holds every node of the benchmark's sessions (sorted), {} when no session has one.
- ndcg_delta / recall_delta are completed-only means (sessions both pipelines scored, as DESIGN.md
  says); p_value, confidence_interval, the verdict and the recommendation come from the primary
  estimate, in which failures count against the pipeline that failed (inference.py, verdicts.py).
- Each result's scored_sessions counts the sessions its metrics average over; 0 means the metrics
  are placeholders. A candidate's sessions_improved + degraded + neutral count exactly the sessions
  it and the baseline both scored (overall and per taxonomy node).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from eval_pipelines.core.benchmarks.inference import (
    BOOTSTRAP_DRAWS,
    ESTIMANDS,
    UNIT_SESSION,
    CandidateTest,
    Estimate,
    InferenceSettings,
    estimate,
    taxonomy_estimates,
    taxonomy_verdicts,
)
from eval_pipelines.core.benchmarks.verdicts import Verdict, decide, recommendation
from eval_pipelines.core.metrics.alignment import (
    COUNT_COLUMNS,
    CUTOFFS,
    ndcg_column,
    recall_column,
)

COMPLETED = "completed"
FAILED = "failed"
UNKNOWN_ERROR = "unknown"
PRIMARY_CUTOFF = 10
LOGGED_NDCG_COLUMN = f"logged_ndcg_at_{PRIMARY_CUTOFF}"
STAGE_LATENCIES_COLUMN = "stage_latencies_json"
SCORE_TABLE_COLUMNS: tuple[str, ...] = (
    "execution_id",
    "pipeline_id",
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


@dataclass(frozen=True)
class PipelineInfo:
    retriever_id: str
    retriever_name: str
    pipeline_hash: str


@dataclass(frozen=True)
class _ScoreGrid:
    """The scores table as (pipeline, execution) matrices; NaN where a pipeline has no usable value."""

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
    scorable: np.ndarray  # the session has interacted documents (any pipeline can be scored on it)
    cluster: np.ndarray  # the session's unit of inference: its query, or itself
    node: np.ndarray
    node_names: list[str]
    error_summaries: list[dict[str, int]]


def benchmark_results(
    scores: pa.Table,
    pipelines: Sequence[PipelineInfo],
    epsilon: float = 0.01,
    settings: InferenceSettings | None = None,
    cutoffs: Sequence[int] = CUTOFFS,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(results: one BenchmarkResult per pipeline, in order; comparison: the BenchmarkComparison)."""
    settings = settings or InferenceSettings()
    _check_parameters(pipelines, epsilon, cutoffs)
    grid = _score_grid(scores, pipelines, cutoffs, settings.unit)
    one_group = np.zeros(len(grid.execution_ids), dtype=np.int64)
    baseline_ndcg = np.where(grid.scored[0], grid.values[PRIMARY_NDCG][0], np.nan)
    results = []
    for index, pipeline in enumerate(pipelines):
        reference = grid.logged_ndcg if index == 0 else baseline_ndcg
        overall = _alignment_metrics(grid, index, reference, one_group, 1, epsilon, cutoffs)
        by_node = _alignment_metrics(
            grid, index, reference, grid.node, len(grid.node_names), epsilon, cutoffs
        )
        results.append(
            {
                "retriever_id": pipeline.retriever_id,
                "retriever_name": pipeline.retriever_name,
                "pipeline_hash": pipeline.pipeline_hash,
                "metrics": overall[0],
                "taxonomy_deltas": dict(zip(grid.node_names, by_node, strict=True)),
                "latency": _latency_metrics(grid, index),
                "failed_sessions": int((grid.present[index] & ~grid.completed[index]).sum()),
                "error_summary": grid.error_summaries[index],
                "scored_sessions": int(grid.scored[index].sum()),
                "replay_agreement": _replay_agreement(grid, index),
            }
        )
    candidates = [p.retriever_id for p in pipelines[1:]]
    tests = [_candidate_test(grid, index, settings) for index in range(1, len(pipelines))]
    blocked = [_not_testable(grid, index, tests[index - 1]) for index in range(1, len(pipelines))]
    verdicts = decide(tests, blocked, settings)
    comparisons = [
        _pipeline_comparison(grid, index, candidates[index - 1], test, verdict, settings, cutoffs)
        for index, (test, verdict) in enumerate(zip(tests, verdicts, strict=True), start=1)
    ]
    return results, {
        "baseline_retriever_id": pipelines[0].retriever_id,
        "comparisons": comparisons,
        "recommendation": _recommendation(grid, pipelines, comparisons, tests, verdicts, settings),
    }


def _check_parameters(
    pipelines: Sequence[PipelineInfo], epsilon: float, cutoffs: Sequence[int]
) -> None:
    if not pipelines:
        raise ValueError("pipelines: at least the baseline is needed")
    ids = [p.retriever_id for p in pipelines]
    if len(set(ids)) != len(ids):
        raise ValueError(f"pipelines: retriever ids repeat: {ids}")
    if not (math.isfinite(epsilon) and epsilon >= 0):
        raise ValueError(f"epsilon: {epsilon!r} must be finite and >= 0")
    if PRIMARY_CUTOFF not in cutoffs:
        raise ValueError(
            f"cutoffs: {list(cutoffs)} lacks {PRIMARY_CUTOFF} (NDCG@10 drives the tests)"
        )


def _score_grid(
    scores: pa.Table, pipelines: Sequence[PipelineInfo], cutoffs: Sequence[int], unit: str
) -> _ScoreGrid:
    metric_columns = [
        *(ndcg_column(k) for k in cutoffs),
        *(recall_column(k) for k in cutoffs),
        *COUNT_COLUMNS,
    ]
    required = [c for c in SCORE_TABLE_COLUMNS if c != STAGE_LATENCIES_COLUMN] + metric_columns
    missing = [c for c in required if c not in scores.column_names]
    if missing:
        raise ValueError(f"scores: missing columns {missing}")
    execution = pc.dictionary_encode(_string_array(scores, "execution_id", nullable=False))
    execution_ids: list[str] = execution.dictionary.to_pylist()
    execution_code = _codes(execution.indices)
    pipeline_ids = [p.retriever_id for p in pipelines]
    pipeline_names = _string_array(scores, "pipeline_id", nullable=False)
    pipeline_code = pc.index_in(pipeline_names, value_set=pa.array(pipeline_ids, pa.string()))
    if pipeline_code.null_count:
        row = _first_true(pipeline_code.is_null())
        raise ValueError(
            f"scores.pipeline_id: row {row} names {pipeline_names[row].as_py()!r},"
            f" not one of the benchmark's pipelines {pipeline_ids}"
        )
    pipeline_code = _codes(pipeline_code)
    shape = (len(pipelines), len(execution_ids))
    cell = pipeline_code * shape[1] + execution_code
    cells, counts = np.unique(cell, return_counts=True)
    if (counts > 1).any():
        repeated = int(cells[counts > 1][0])
        raise ValueError(
            f"scores: execution {execution_ids[repeated % shape[1]]!r} has more than one row"
            f" for pipeline {pipeline_ids[repeated // shape[1]]!r}"
        )

    def grid_of(row_values: np.ndarray, fill: Any = np.nan) -> np.ndarray:
        matrix = np.full(shape, fill, dtype=np.asarray(row_values).dtype)
        matrix[pipeline_code, execution_code] = row_values
        return matrix

    status = _string_array(scores, "status", nullable=False)
    row_completed = pc.equal(status, COMPLETED).to_numpy(zero_copy_only=False)
    row_failed = pc.equal(status, FAILED).to_numpy(zero_copy_only=False)
    if not (row_completed | row_failed).all():
        row = _first_true(~(row_completed | row_failed))
        raise ValueError(
            f"scores.status: row {row} is {status[row].as_py()!r}, not {COMPLETED!r} or {FAILED!r}"
        )
    latency = _float_array(scores, "latency_ms")
    _require(
        row_completed & ~(latency >= 0), "latency_ms", "is missing or negative on a completed row"
    )
    values_by_row = {
        name: np.where(row_completed, _float_array(scores, name), np.nan) for name in metric_columns
    }
    values = {name: grid_of(column) for name, column in values_by_row.items()}
    for name in COUNT_COLUMNS:
        _require(
            row_completed & np.isnan(values_by_row[name]), name, "is missing on a completed row"
        )
    with_interactions = row_completed & (values_by_row["interacted_count"] > 0)
    for name in metric_columns[: 2 * len(cutoffs)]:
        _require(
            with_interactions & ~np.isfinite(values_by_row[name]),
            name,
            "is missing on a completed row with interacted documents",
        )
    completed = grid_of(row_completed, False)
    scored = completed & (values["interacted_count"] > 0)
    logged_ndcg = _per_execution_value(
        _float_array(scores, LOGGED_NDCG_COLUMN), execution_code, execution_ids
    )
    unscorable = scored.any(axis=0) & np.isnan(logged_ndcg)
    if unscorable.any():
        raise ValueError(
            f"scores.{LOGGED_NDCG_COLUMN}: missing for execution"
            f" {execution_ids[_first_true(unscorable)]!r}, which has interacted documents"
        )
    node, node_names = _per_execution_node(scores, execution_code, execution_ids)
    if unit == UNIT_SESSION:
        cluster = np.arange(len(execution_ids), dtype=np.int64)
    elif QUERY_KEY_COLUMN in scores.column_names:
        cluster = _per_execution_query(scores, execution_code, execution_ids)
    else:
        raise ValueError(
            f"scores: missing column {QUERY_KEY_COLUMN!r}, which query-level inference clusters by"
        )
    return _ScoreGrid(
        execution_ids=execution_ids,
        present=grid_of(np.ones(cell.size, dtype=bool), False),
        completed=completed,
        scored=scored,
        values=values,
        latency=grid_of(np.where(row_completed, latency, np.nan)),
        stage_latency={
            stage: grid_of(row_values)
            for stage, row_values in _stage_latencies(scores, row_completed).items()
        },
        logged_ndcg=logged_ndcg,
        logged_overlap=grid_of(
            np.where(row_completed, _float_array(scores, LOGGED_OVERLAP_COLUMN), np.nan)
            if LOGGED_OVERLAP_COLUMN in scores.column_names
            else np.full(cell.size, np.nan)
        ),
        scorable=np.isfinite(logged_ndcg),
        cluster=cluster,
        node=node,
        node_names=node_names,
        error_summaries=_error_summaries(scores, pipeline_code, row_failed, len(pipelines)),
    )


def _require(bad_rows: np.ndarray, column: str, problem: str) -> None:
    if bad_rows.any():
        raise ValueError(f"scores.{column}: row {_first_true(bad_rows)} {problem}")


def _codes(indices: pa.Array) -> np.ndarray:
    return indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def _string_array(scores: pa.Table, name: str, *, nullable: bool) -> pa.Array:
    column = scores.column(name).combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_null(column.type):
        column = column.cast(pa.string())
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise ValueError(f"scores.{name}: type {column.type} is not a string column")
    if not nullable and column.null_count:
        raise ValueError(f"scores.{name}: row {_first_true(column.is_null())} is null")
    return column.cast(pa.string())


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


def _per_execution_node(
    scores: pa.Table, execution_code: np.ndarray, execution_ids: list[str]
) -> tuple[np.ndarray, list[str]]:
    """Each execution's taxonomy node code (-1: none) and the sorted node names."""
    nodes = _string_array(scores, "taxonomy_node_id", nullable=True)
    names = sorted(pc.unique(nodes.drop_null()).to_pylist())
    code = _codes(pc.fill_null(pc.index_in(nodes, value_set=pa.array(names, pa.string())), -1))
    low = np.full(len(execution_ids), np.iinfo(np.int64).max)
    high = np.full(len(execution_ids), -1, dtype=np.int64)
    named = code >= 0
    np.minimum.at(low, execution_code[named], code[named])
    np.maximum.at(high, execution_code[named], code[named])
    differing = (high >= 0) & (low != high)
    if differing.any():
        raise ValueError(
            f"scores.taxonomy_node_id: rows of execution"
            f" {execution_ids[_first_true(differing)]!r} disagree"
        )
    return high, names


def _per_execution_query(
    scores: pa.Table, execution_code: np.ndarray, execution_ids: list[str]
) -> np.ndarray:
    """Each execution's query code (its cluster); rows of one execution must agree."""
    keys = _string_array(scores, QUERY_KEY_COLUMN, nullable=False)
    encoded = pc.dictionary_encode(keys)
    code = _codes(encoded.indices)
    low = np.full(len(execution_ids), np.iinfo(np.int64).max)
    high = np.full(len(execution_ids), -1, dtype=np.int64)
    np.minimum.at(low, execution_code, code)
    np.maximum.at(high, execution_code, code)
    if (low != high).any():
        raise ValueError(
            f"scores.{QUERY_KEY_COLUMN}: rows of execution"
            f" {execution_ids[_first_true(low != high)]!r} disagree"
        )
    return high


def _stage_latencies(scores: pa.Table, row_completed: np.ndarray) -> dict[str, np.ndarray]:
    """Per stage, each completed row's milliseconds (NaN when the row does not report the stage)."""
    if STAGE_LATENCIES_COLUMN not in scores.column_names:
        return {}
    texts = _string_array(scores, STAGE_LATENCIES_COLUMN, nullable=True).to_pylist()
    lines = [
        text if done and text is not None else "{}"
        for text, done in zip(texts, row_completed, strict=True)
    ]
    table = _read_json_lines(lines)
    stages: dict[str, np.ndarray] = {}
    for stage in sorted(table.column_names):
        column = table.column(stage)
        if not (
            pa.types.is_integer(column.type)
            or pa.types.is_floating(column.type)
            or pa.types.is_null(column.type)
        ):
            raise ValueError(
                f"scores.{STAGE_LATENCIES_COLUMN}: stage {stage!r} has non-numeric values ({column.type})"
            )
        stages[stage] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return stages


def _read_json_lines(lines: list[str]) -> pa.Table:
    """Parse one JSON object per row at Arrow speed; per-row json for an error naming the row."""
    if not any("\n" in line or "\r" in line for line in lines):
        try:
            table = pa_json.read_json(io.BytesIO("\n".join(lines).encode("utf-8")))
            if table.num_rows == len(lines):
                return table
        except pa.ArrowInvalid:
            pass
    rows = []
    for index, line in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"scores.{STAGE_LATENCIES_COLUMN}: row {index} is not JSON ({error})"
            ) from error
        if not isinstance(row, dict):
            raise ValueError(f"scores.{STAGE_LATENCIES_COLUMN}: row {index} is not a JSON object")
        for stage, ms in row.items():
            if isinstance(ms, bool) or not isinstance(ms, int | float) or not math.isfinite(ms):
                raise ValueError(
                    f"scores.{STAGE_LATENCIES_COLUMN}: row {index}, stage {stage!r}: {ms!r} is not a number of ms"
                )
        rows.append(row)
    stages = sorted({stage for row in rows for stage in row})
    return pa.table(
        {stage: pa.array([row.get(stage) for row in rows], pa.float64()) for stage in stages}
    )


def _error_summaries(
    scores: pa.Table, pipeline_code: np.ndarray, row_failed: np.ndarray, pipeline_count: int
) -> list[dict[str, int]]:
    error_types = _string_array(scores, "error_type", nullable=True).to_pylist()
    summaries: list[dict[str, int]] = [{} for _ in range(pipeline_count)]
    for row in np.flatnonzero(row_failed):
        summary = summaries[int(pipeline_code[row])]
        error_type = error_types[row] or UNKNOWN_ERROR
        summary[error_type] = summary.get(error_type, 0) + 1
    return [dict(sorted(summary.items())) for summary in summaries]


def _alignment_metrics(
    grid: _ScoreGrid,
    index: int,
    reference_ndcg: np.ndarray,
    group: np.ndarray,
    group_count: int,
    epsilon: float,
    cutoffs: Sequence[int],
) -> list[dict[str, Any]]:
    """AlignmentMetrics of pipeline `index` for each session group (group -1: in no group)."""
    scored = grid.scored[index] & (group >= 0)
    sessions = group[scored]

    def total(name: str) -> np.ndarray:
        return np.bincount(
            sessions, weights=grid.values[name][index][scored], minlength=group_count
        )

    def counted(mask: np.ndarray) -> np.ndarray:
        return np.bincount(group[scored & mask], minlength=group_count)

    session_count = np.bincount(sessions, minlength=group_count)
    ndcg = {k: _ratio(total(ndcg_column(k)), session_count) for k in cutoffs}
    recall = {k: _ratio(total(recall_column(k)), session_count) for k in cutoffs}
    clicked = total("clicked_count")
    clicked_rank = _ratio(total("clicked_rank_sum"), clicked)
    purchased = total("purchased_count")
    purchased_rank = _ratio(total("purchased_rank_sum"), purchased)
    position_delta = _ratio(total("position_delta_sum"), total("interacted_count"))
    promoted = total("promoted")
    demoted = total("demoted")
    own_ndcg = np.where(grid.scored[index], grid.values[PRIMARY_NDCG][index], np.nan)
    with np.errstate(invalid="ignore"):
        delta = own_ndcg - reference_ndcg
    paired = ~np.isnan(delta)
    improved = counted(paired & (delta > epsilon))
    degraded = counted(paired & (delta < -epsilon))
    neutral = counted(paired & (np.abs(delta) <= epsilon))
    return [
        {
            "ndcg_at_k": {str(k): _number(ndcg[k][g]) for k in cutoffs},
            "recall_at_k": {str(k): _number(recall[k][g]) for k in cutoffs},
            "mean_rank_clicked": _number(clicked_rank[g]),
            "mean_rank_purchased": _number(purchased_rank[g]) if purchased[g] > 0 else None,
            "avg_position_delta": _number(position_delta[g]),
            "items_promoted": int(np.rint(promoted[g])),
            "items_demoted": int(np.rint(demoted[g])),
            "sessions_improved": int(improved[g]),
            "sessions_degraded": int(degraded[g]),
            "sessions_neutral": int(neutral[g]),
        }
        for g in range(group_count)
    ]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0.0 where the denominator is 0 (a metric over nothing)."""
    safe = np.where(denominator > 0, denominator, 1)
    return np.where(denominator > 0, numerator / safe, 0.0)


def _number(value: float) -> float:
    """A plain, finite Python float for a JSON record (-0.0 becomes 0.0)."""
    number = float(value) + 0.0
    if not math.isfinite(number):
        raise ValueError(f"internal error: metric value {number} is not finite")
    return number


def _replay_agreement(grid: _ScoreGrid, index: int) -> dict[str, Any]:
    """How much of the logged top 10 the pipeline's replays keep (None where nothing says)."""
    overlap = grid.logged_overlap[index]
    known = overlap[~np.isnan(overlap)]
    return {
        "logged_overlap_at_10": _number(known.mean()) if known.size else None,
        "sessions": int(known.size),
    }


def _latency_metrics(grid: _ScoreGrid, index: int) -> dict[str, Any]:
    latency = grid.latency[index]
    measured = latency[~np.isnan(latency)]
    if measured.size:
        p50, p90, p99 = np.percentile(measured, [50, 90, 99])
        mean = measured.mean()
    else:
        p50 = p90 = p99 = mean = 0.0
    stages = {}
    for stage, matrix in grid.stage_latency.items():
        reported = matrix[index][~np.isnan(matrix[index])]
        if reported.size:
            stages[stage] = _number(reported.mean())
    return {
        "p50_ms": _number(p50),
        "p90_ms": _number(p90),
        "p99_ms": _number(p99),
        "mean_ms": _number(mean),
        "stage_latencies": stages,
    }


def _candidate_test(grid: _ScoreGrid, index: int, settings: InferenceSettings) -> CandidateTest:
    """The primary (failures count) and completed-only estimates of candidate `index` vs the baseline.

    Every candidate's tests draw the same bootstrap signs (streams 0, 1, 2 of the seed), so two
    candidates that rank alike get the same p-values and intervals."""
    ndcg = grid.values[PRIMARY_NDCG]
    both = grid.present[index] & grid.present[0]
    scorable = both & grid.scorable
    outcome = np.where(grid.completed, np.nan_to_num(ndcg), 0.0)
    primary_differences = outcome[index][scorable] - outcome[0][scorable]
    primary, too_few = estimate(
        primary_differences, grid.cluster[scorable], settings, settings.min_clusters, 0
    )
    paired = grid.scored[index] & grid.scored[0]
    completed_only, _ = estimate(
        ndcg[index][paired] - ndcg[0][paired], grid.cluster[paired], settings, 2, 1
    )
    taxonomy_sessions, taxonomy_tests = taxonomy_estimates(
        primary_differences,
        grid.cluster[scorable],
        grid.node[scorable],
        grid.node_names,
        settings,
        2,
    )
    if not (grid.scored[index].any() and grid.scored[0].any()):
        taxonomy_tests = {}  # a side that scored nothing gives no node a win or a loss
    present = both.sum()

    def failure_rate(row: int) -> float:
        return float((both & ~grid.completed[row]).sum() / present) if present else 0.0

    return CandidateTest(
        primary=primary,
        completed_only=completed_only,
        baseline_mean=float(outcome[0][scorable].mean()) if scorable.any() else 0.0,
        candidate_failure_rate=failure_rate(index),
        baseline_failure_rate=failure_rate(0),
        candidate_scored=int(grid.scored[index].sum()),
        baseline_scored=int(grid.scored[0].sum()),
        failed_sessions=int((both & ~grid.completed[index]).sum()),
        too_few=too_few,
        taxonomy_sessions=taxonomy_sessions,
        taxonomy_tests=taxonomy_tests,
    )


def _not_testable(grid: _ScoreGrid, index: int, test: CandidateTest) -> list[str]:
    """Why candidate `index` cannot be tested at all (empty when it can)."""
    if not grid.scorable.any():
        return ["no session with interactions"]
    for row, who in ((0, "the baseline"), (index, "the candidate")):
        if not grid.scored[row].any():
            failed = int((grid.present[row] & ~grid.completed[row]).sum())
            errors = ", ".join(f"{k} {v}" for k, v in grid.error_summaries[row].items())
            return [
                f"{who} scored no session ({failed} of {int(grid.present[row].sum())} failed"
                f"{': ' + errors if errors else ''})"
            ]
    return list(test.too_few)


def _rounded(value: float | None) -> float | None:
    return None if value is None else _number(value)


def _interval(found: Estimate) -> list[float] | None:
    if found.ci_low is None or found.ci_high is None:
        return None
    return [_number(found.ci_low), _number(found.ci_high)]


def _pipeline_comparison(
    grid: _ScoreGrid,
    index: int,
    retriever_id: str,
    test: CandidateTest,
    verdict: Verdict,
    settings: InferenceSettings,
    cutoffs: Sequence[int],
) -> dict[str, Any]:
    """PipelineComparison of candidate `index` with the baseline, with its verdict and evidence."""
    paired = grid.scored[index] & grid.scored[0]

    def mean_difference(name: str) -> float:
        differences = grid.values[name][index][paired] - grid.values[name][0][paired]
        return _number(differences.mean()) if differences.size else 0.0

    both_completed = grid.completed[index] & grid.completed[0]
    latency_differences = grid.latency[index][both_completed] - grid.latency[0][both_completed]
    primary, completed_only = test.primary, test.completed_only
    if not (test.candidate_scored and test.baseline_scored):
        # A side that scored nothing leaves no ranking to judge: its zeros are no evidence.
        primary = replace(primary, p_value=None, ci_low=None, ci_high=None)
    wins, losses = taxonomy_verdicts(test.taxonomy_tests, settings.alpha)
    relative = primary.delta / test.baseline_mean if test.baseline_mean > 0 else None
    standardized = primary.delta / primary.spread if primary.spread else None
    return {
        "candidate_retriever_id": retriever_id,
        "ndcg_delta": {str(k): mean_difference(ndcg_column(k)) for k in cutoffs},
        "recall_delta": {str(k): mean_difference(recall_column(k)) for k in cutoffs},
        "latency_delta_ms": (
            _number(latency_differences.mean()) if latency_differences.size else 0.0
        ),
        "p_value": _rounded(primary.p_value),
        "p_value_adjusted": _rounded(verdict.p_adjusted),
        "confidence_interval": _interval(primary),
        "taxonomy_wins": wins,
        "taxonomy_losses": losses,
        "taxonomy_untested": {
            name: count
            for name, count in sorted(test.taxonomy_sessions.items())
            if name not in test.taxonomy_tests
        },
        "paired_sessions": int(paired.sum()),
        "verdict": verdict.verdict,
        "verdict_reasons": verdict.reasons,
        "effect": {
            "estimand": "intention_to_treat",
            "delta": _number(primary.delta),
            "confidence_interval": _interval(primary),
            "relative_change": _rounded(relative),
            "standardized": _rounded(standardized),
            "minimum_detectable_effect": _rounded(verdict.minimum_detectable_effect),
            "power": settings.power,
            "design_effect": _rounded(primary.design_effect),
        },
        "completed_only": {
            "delta": _number(completed_only.delta),
            "confidence_interval": _interval(completed_only),
            "p_value": _rounded(completed_only.p_value),
            "sessions": completed_only.sessions,
        },
        "failures": {
            "candidate_rate": _number(test.candidate_failure_rate),
            "baseline_rate": _number(test.baseline_failure_rate),
            "tolerance": settings.max_failure_excess,
        },
        "inference": {
            "unit": settings.unit,
            "method": primary.method,
            "clusters": primary.clusters,
            "sessions": primary.sessions,
            "bootstrap_draws": BOOTSTRAP_DRAWS if primary.testable else None,
            "seed": settings.seed,
            "standard_error": _rounded(primary.standard_error),
            "degrees_of_freedom": _rounded(primary.degrees_of_freedom),
            "estimand": ESTIMANDS[settings.unit],
        },
    }


def _recommendation(
    grid: _ScoreGrid,
    pipelines: Sequence[PipelineInfo],
    comparisons: Sequence[dict[str, Any]],
    tests: Sequence[CandidateTest],
    verdicts: Sequence[Verdict],
    settings: InferenceSettings,
) -> str:
    """A deterministic sentence: the candidate to promote, or why the baseline stays."""
    baseline = pipelines[0].retriever_id
    if not tests:
        return f"Keep the baseline {baseline}: there is no candidate to compare."
    if not grid.execution_ids:
        return f"No verdict: the benchmark has no session, so nothing was compared with {baseline}."
    if not grid.scored[0].any():
        sessions = int(grid.present[0].sum())
        failed = int((grid.present[0] & ~grid.completed[0]).sum())
        return (
            f"No verdict: the baseline {baseline} scored no session ({failed} of {sessions}"
            " failed), so no candidate could be compared with it."
        )
    return recommendation(
        baseline,
        [p.retriever_id for p in pipelines[1:]],
        tests,
        verdicts,
        [c["latency_delta_ms"] for c in comparisons],
        settings,
    )
