"""Benchmark: the click model's fit (cells in DuckDB, EM, 100 bootstrap draws) on demo-sized logs.

The log has the demo's structure, drawn from a known position-based model and written as normalized
Parquet straight with pyarrow: 60,000 searches of 24 results over 2,400 queries, a third of them
served by an earlier ranker (the same pairs at other positions), 5% with a shuffled top 12 recorded as
exploration. The measured step is fit_click_model alone; the check verifies the fit is available and
that every position's estimate is within 4 of its standard errors (plus 0.01) of the truth.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.click_model import ClickModel, fit_click_model
from eval_pipelines.core.logs.tables import EXECUTIONS_SCHEMA, INTERACTIONS_SCHEMA
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.storage import write_parquet_atomic
from perf.harness import BenchmarkResult, CorrectnessError, Target, run_contenders

NAME = "click_model"
SEARCHES: dict[str, int] = {"tiny": 6_000, "small": 20_000, "full": 60_000}
# 25 searches per query, as in the demo world (60,000 over 2,400 intents).
SEARCHES_PER_QUERY = 25
DEPTH = 24
CANDIDATES = 36
SHUFFLED_TOP = 12
EXPLORATION_SHARE = 0.05
PREVIOUS_SHARE = 12 / 35
THETA = 0.95 * 0.8 ** (np.arange(DEPTH) // 4) * np.where(np.arange(DEPTH) < 12, 1.0, 0.5)
TARGET_SECONDS = 10.0
SLACK = 0.01
_START = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")


def served_orders(
    rng: np.random.Generator, query: np.ndarray, queries: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each search's served candidate indexes (searches x DEPTH) and whether its top is shuffled."""
    searches = query.size
    previous = np.argsort(np.arange(CANDIDATES) + rng.normal(0, 6, (queries, CANDIDATES)), axis=1)
    order = np.tile(np.arange(DEPTH), (searches, 1))
    earlier = rng.random(searches) < PREVIOUS_SHARE
    order[earlier] = previous[query[earlier], :DEPTH]
    shuffled = ~earlier & (rng.random(searches) < EXPLORATION_SHARE)
    rows = np.flatnonzero(shuffled)
    permutation = np.argsort(rng.random((rows.size, SHUFFLED_TOP)), axis=1)
    order[rows, :SHUFFLED_TOP] = np.take_along_axis(order[rows, :SHUFFLED_TOP], permutation, axis=1)
    return order, shuffled


def write_log(paths: DataPaths, searches: int, seed: int) -> int:
    """Normalized executions and click interactions; returns the number of clicks."""
    rng = np.random.default_rng(seed)
    queries = searches // SEARCHES_PER_QUERY
    gamma = rng.beta(1.0, 3.0, (queries, CANDIDATES))
    query = rng.integers(0, queries, searches)
    order, shuffled = served_orders(rng, query, queries)
    document = query[:, None] * CANDIDATES + order
    clicked = (rng.random(order.shape) < THETA) & (
        rng.random(order.shape) < gamma[query[:, None], order]
    )
    metadata = json.dumps({"exploration": {"method": "shuffle_top_k", "k": SHUFFLED_TOP}})
    execution_ids = _ids("exec_", np.arange(searches))
    created = pa.array(
        _START + np.arange(searches, dtype=np.int64) * 1_000_000, pa.timestamp("us", tz="UTC")
    )
    executions = pa.table(
        {
            "execution_id": execution_ids,
            "retriever_id": pa.array(["prod"] * searches),
            "session_id": _ids("sess_", np.arange(searches)),
            "user_id": pa.nulls(searches, pa.string()),
            "query_text": _ids("query ", query),
            "query_input": _ids('{"text": "query ', query),
            "documents": pa.ListArray.from_arrays(
                pa.array(np.arange(searches + 1, dtype=np.int32) * DEPTH),
                _ids("doc_", document.ravel()),
            ),
            "taxonomy_node_ids": pa.array([[]] * searches, pa.list_(pa.string())),
            "created_at": created,
            "metadata": pa.array(np.where(shuffled, metadata, None), pa.string()),
        },
        schema=EXECUTIONS_SCHEMA,
    )
    write_parquet_atomic(executions, paths.log_table_dir("executions") / "part-00000.parquet")
    row, position = np.nonzero(clicked)
    interactions = pa.table(
        {
            "interaction_id": _ids("int_", np.arange(row.size)),
            "execution_id": pc.take(execution_ids, pa.array(row)),
            "document_id": _ids("doc_", document[row, position]),
            "interaction_type": pa.array(["click"] * row.size),
            "position": pa.array(position.astype(np.int32)),
            "session_id": _ids("sess_", row),
            "user_id": pa.nulls(row.size, pa.string()),
            "timestamp": pc.take(created, pa.array(row)),
            "metadata": pa.nulls(row.size, pa.string()),
        },
        schema=INTERACTIONS_SCHEMA,
    )
    write_parquet_atomic(interactions, paths.log_table_dir("interactions") / "part-00000.parquet")
    return int(row.size)


def check_model(model: ClickModel) -> dict[str, Any]:
    if not model.available:
        raise CorrectnessError(f"the fit is unavailable: {model.reason}")
    estimate = np.array(model.propensities.column("propensity").to_pylist(), dtype=np.float64)
    se = np.array(model.propensities.column("standard_error").to_pylist(), dtype=np.float64)
    truth = THETA / THETA[0]
    error = np.abs(estimate - truth)
    # Positions tied with position 1 sit on the bound theta = 1 in every bootstrap draw, where the
    # standard error collapses: they get SLACK on top of 4 standard errors.
    if np.any(error[1:] > 4 * se[1:] + SLACK):
        raise CorrectnessError(
            f"estimates off the truth by more than 4 SE: {error.round(3).tolist()}"
        )
    return {
        "errors": error.round(4).tolist(),
        "standard_errors": se.round(4).tolist(),
        "depth": model.depth,
        "max_abs_error": float(error.max()),
        "iterations": model.fit["iterations"],
        "bootstrap_draws": model.fit["bootstrap_draws"],
    }


def run(scale: str, repeat: int, workdir: Path, seed: int = 5) -> BenchmarkResult:
    paths = DataPaths(workdir / "data")
    searches = SEARCHES[scale]
    clicks = write_log(paths, searches, seed)
    results, outputs = run_contenders([("eval-pipelines", lambda: fit_click_model(paths))], repeat)
    checks = check_model(outputs["eval-pipelines"])
    outputs.clear()
    return BenchmarkResult(
        name=NAME,
        parameters={
            "searches": searches,
            "depth": DEPTH,
            "queries": searches // SEARCHES_PER_QUERY,
            "clicks": clicks,
            "seed": seed,
        },
        contenders=results,
        checks=checks,
        targets=[Target("median seconds", results[0].median_seconds, TARGET_SECONDS)],
    )
