"""Per-session (benchmark) and per-query (evaluation) scores as CSV, for spreadsheets and notebooks.

The rows are the record's partition table as stored (session_scores: one row per sampled session x
replayed retriever; query_metrics: one row per query x measure x k), so a CSV always agrees with the
record and the warehouse views. Columns CSV cannot hold (maps, lists, structs, such as
stage_latencies) are written as JSON text, not left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pa_csv

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.records import RecordStore
from eval_pipelines.core.storage import atomic_path
from eval_pipelines.core.table_names import QUERY_METRICS, SESSION_SCORES

SCORE_TABLES = {"benchmark": SESSION_SCORES, "evaluation": QUERY_METRICS}
SORT_KEYS = {
    "benchmark": [("execution_id", "ascending"), ("retriever_id", "ascending")],
    "evaluation": [("query_id", "ascending"), ("metric", "ascending"), ("k", "ascending")],
}


def _json_cell(value: Any, is_map: bool) -> str | None:
    if value is None:
        return None
    if is_map:
        value = dict(value)  # a map cell reads as (key, value) pairs
    return json.dumps(value, sort_keys=True, allow_nan=False, default=str)


def csv_ready(table: pa.Table) -> pa.Table:
    """table with each nested column (map, list, struct) replaced by its JSON text."""
    for index, field in enumerate(table.schema):
        if pa.types.is_nested(field.type):
            is_map = pa.types.is_map(field.type)
            cells = [_json_cell(v, is_map) for v in table.column(index).to_pylist()]
            table = table.set_column(
                index, pa.field(field.name, pa.string()), pa.array(cells, pa.string())
            )
    return table


def score_table(store: RecordStore, kind: str, record: dict[str, Any]) -> pa.Table:
    """The record's scores, sorted; InvalidInputError when the record has none (yet)."""
    record_id = record[f"{kind}_id"]
    if record["status"] != "completed":
        raise InvalidInputError(
            f"{kind}_id: {record_id} is {record['status']}, not completed: it has no scores to"
            " export"
        )
    name = SCORE_TABLES[kind]
    path = store.tables.path(record_id, name)
    if not path.exists():
        raise InvalidInputError(
            f"{kind}_id: {record_id} is completed but its scores table {path} is missing"
        )
    return store.read_table(record_id, name).sort_by(SORT_KEYS[kind])


def write_scores_csv(table: pa.Table, destination: Path | BinaryIO) -> int:
    """Write table as CSV with a header, atomically to a file or to an open stream; rows written."""
    ready = csv_ready(table)
    if isinstance(destination, Path):
        with atomic_path(destination) as tmp:
            pa_csv.write_csv(ready, tmp)
    else:
        pa_csv.write_csv(ready, destination)
    return ready.num_rows
