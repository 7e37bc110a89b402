"""Per-stage latencies of replay rows, from their JSON text column or a map<string, number> column."""

from __future__ import annotations

import io
import math

import numpy as np
import pyarrow as pa
import pyarrow.json as pa_json

from eval_pipelines.core.json_input import JsonProblem, decode_json

STAGE_LATENCIES_COLUMN = "stage_latencies"


def stage_latencies(column: pa.Array, row_completed: np.ndarray) -> dict[str, np.ndarray]:
    """Per stage, each completed row's milliseconds (NaN when the row does not report the stage).
    The column holds {stage: ms} per row as JSON text, or as a map from stage to ms."""
    if pa.types.is_map(column.type):
        return _map_latencies(column, row_completed)
    lines = [
        text if done and text is not None else "{}"
        for text, done in zip(column.to_pylist(), row_completed, strict=True)
    ]
    table = read_json_lines(lines)
    stages: dict[str, np.ndarray] = {}
    for stage in sorted(table.column_names):
        rows = np.arange(table.num_rows)
        stages[stage] = _milliseconds(
            table.column(stage).combine_chunks(),
            rows,
            np.full(rows.size, stage),
            f"stage {stage!r}",
        )
    return stages


def _map_latencies(column: pa.MapArray, row_completed: np.ndarray) -> dict[str, np.ndarray]:
    """The map column's entries of completed rows, per stage (a null map reports no stage)."""
    offsets = column.offsets.to_numpy(zero_copy_only=False)
    entry_row = np.repeat(np.arange(len(column), dtype=np.int64), np.diff(offsets))
    start = int(offsets[0])
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    counted = (row_completed & valid)[entry_row]
    names = column.keys.slice(start, entry_row.size).to_numpy(zero_copy_only=False)[counted]
    rows = entry_row[counted]
    items = column.items.slice(start, entry_row.size).filter(counted)
    ms = _milliseconds(items, rows, names, "the map's stage")
    stages: dict[str, np.ndarray] = {}
    for stage in sorted(set(names.tolist())):
        entries = names == stage
        values = np.full(len(column), np.nan)
        values[rows[entries]] = ms[entries]
        stages[stage] = values
    return stages


def _milliseconds(values: pa.Array, rows: np.ndarray, stages: np.ndarray, what: str) -> np.ndarray:
    """Latency values as float milliseconds (NaN where null); entry i is of row rows[i] and
    stage stages[i], for an error naming them."""
    kind = values.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)):
        raise ValueError(f"scores.{STAGE_LATENCIES_COLUMN}: {what} has non-numeric values ({kind})")
    ms = values.cast(pa.float64()).to_numpy(zero_copy_only=False)
    infinite = np.flatnonzero(np.isinf(ms))
    if infinite.size:
        i = int(infinite[0])
        raise ValueError(
            f"scores.{STAGE_LATENCIES_COLUMN}: row {int(rows[i])}, stage {str(stages[i])!r}:"
            f" {float(ms[i])!r} is not a number of ms"
        )
    return ms


def read_json_lines(lines: list[str]) -> pa.Table:
    """Parse one JSON object per row at Arrow speed; per-row json for an error naming the row."""
    table = _arrow_json_lines(lines)
    if table is not None:
        return table
    rows = [_stage_row(index, line) for index, line in enumerate(lines)]
    stages = sorted({stage for row in rows for stage in row})
    return pa.table(
        {stage: pa.array([row.get(stage) for row in rows], pa.float64()) for stage in stages}
    )


def _arrow_json_lines(lines: list[str]) -> pa.Table | None:
    """The rows read by Arrow's JSON reader, or None where it cannot read them one per line."""
    if any("\n" in line or "\r" in line for line in lines):
        return None
    try:
        table = pa_json.read_json(io.BytesIO("\n".join(lines).encode("utf-8")))
    except pa.ArrowInvalid:
        return None
    return table if table.num_rows == len(lines) else None


def _stage_row(index: int, line: str) -> dict[str, float]:
    where = f"scores.{STAGE_LATENCIES_COLUMN}: row {index}"
    try:
        row = decode_json(line)
    except JsonProblem as error:
        raise ValueError(f"{where} is not JSON ({error.problem})") from error
    if not isinstance(row, dict):
        raise ValueError(f"{where} is not a JSON object")
    for stage, ms in row.items():
        if isinstance(ms, bool) or not isinstance(ms, int | float) or not math.isfinite(ms):
            raise ValueError(f"{where}, stage {stage!r}: {ms!r} is not a number of ms")
    return row
