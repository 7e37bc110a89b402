"""Stage latencies in a scores table: a typed map column (as replays will store them) reads as its
JSON text does, through a real Parquet file; JSON text that json.loads or Arrow cannot take as a
number of milliseconds is named by row and stage, never a crash or an infinite mean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eval_pipelines.core.benchmarks.comparison import benchmark_results
from eval_pipelines_tests.core.benchmarks.test_comparison import (
    BASE,
    CAND,
    completed,
    failed,
    table,
)

STAGES = "stage_latencies"
LATENCIES_TYPE = pa.map_(pa.string(), pa.float64())


def rows() -> list[dict[str, Any]]:
    """Two pipelines over three sessions; a failed replay's stages must not count."""
    timed_out = failed("e3", "base", "timeout", latency=5000.0)
    timed_out[STAGES] = json.dumps({"feature_search": 4990.0})
    return [
        completed("e1", "base", 0.5, stages={"feature_search": 4, "rerank": 2.5}),
        completed("e2", "base", 0.4, stages={"feature_search": 6}),
        timed_out,
        completed("e1", "cand", 0.6, stages={"rerank": 1.0}),
        completed("e2", "cand", 0.6, stages=None),
        completed("e3", "cand", 0.6, stages={"rerank": 3.0, "fuse": 0.5}),
    ]


def as_map_column(scores: pa.Table) -> pa.Table:
    texts = scores.column(STAGES).to_pylist()
    maps = [None if text is None else list(json.loads(text).items()) for text in texts]
    position = scores.column_names.index(STAGES)
    return scores.set_column(position, STAGES, pa.array(maps, LATENCIES_TYPE))


def test_a_map_column_from_parquet_gives_the_stage_latencies_its_json_text_gives(
    tmp_path: Path,
) -> None:
    from_text = table(rows())
    path = tmp_path / "session_scores.parquet"
    pq.write_table(as_map_column(from_text), path)
    from_map = pq.read_table(path)
    assert pa.types.is_map(from_map.schema.field(STAGES).type)
    results_text, comparison_text = benchmark_results(from_text, [BASE, CAND])
    results_map, comparison_map = benchmark_results(from_map, [BASE, CAND])
    assert results_map == results_text
    assert comparison_map == comparison_text
    stages = [result["latency"]["stage_latencies"] for result in results_map]
    assert stages == [{"feature_search": 5.0, "rerank": 2.5}, {"fuse": 0.5, "rerank": 2.0}]


def test_a_map_column_with_an_infinite_latency_names_its_row_and_stage() -> None:
    scores = as_map_column(table(rows()))
    maps = scores.column(STAGES).to_pylist()
    maps[3] = [("rerank", float("inf"))]
    broken = scores.set_column(
        scores.column_names.index(STAGES), STAGES, pa.array(maps, LATENCIES_TYPE)
    )
    with pytest.raises(ValueError, match=r"stage_latencies: row 3, stage 'rerank': inf"):
        benchmark_results(broken, [BASE, CAND])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"rerank": 1e999}', r"stage_latencies: row 1, stage 'rerank': inf is not a number"),
        ('{"rerank": ' + "7" * 5000 + "}", r"stage_latencies: row 1"),
        ('{"rerank": ' + "[" * 100_000 + "]" * 100_000 + "}", r"stage_latencies: row 1"),
    ],
    ids=["overflowing float", "5000 digits", "nested 100,000 deep"],
)
def test_json_text_no_latency_can_come_from_names_its_row(text: str, message: str) -> None:
    broken = completed("e2", "base", 0.5)
    broken[STAGES] = text
    scores = table([completed("e1", "base", 0.5, stages={"rerank": 1.0}), broken])
    with pytest.raises(ValueError, match=message):
        benchmark_results(scores, [BASE])
