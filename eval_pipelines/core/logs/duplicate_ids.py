"""Which ids occur more than once in a log table, and which stored parts hold them (a health check)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.logs.staging import KEY_COLUMN
from eval_pipelines.core.object_store import connect_duckdb
from eval_pipelines.core.paths import DataPaths, shown
from eval_pipelines.core.storage import parquet_files


@dataclass(frozen=True)
class DuplicateIds:
    """Ids that occur more than once among those checked, and where the log table stores each.

    `stored` maps at most `limit` such ids (sorted) to {Parquet file (relative to the data directory):
    rows holding the id}; `duplicated` counts them all.
    """

    table: str
    key: str
    checked: int
    distinct: int
    duplicated: int
    stored: dict[str, dict[str, int]]

    @property
    def passed(self) -> bool:
        return self.duplicated == 0

    def describe(self) -> str:
        """One paragraph naming the ids, their files and the likely cause."""
        if self.passed:
            return f"no {self.key} occurs more than once among the {self.checked} checked"
        parts = []
        for value, files in self.stored.items():
            rows = sum(files.values())
            where = ", ".join(files) or "no file"
            parts.append(f"{shown(value)}: {rows} row{'s' if rows != 1 else ''} in {where}")
        more = self.duplicated - len(self.stored)
        listed = "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
        text = (
            f"{self.duplicated} {self.key}s occur more than once among the {self.checked} checked."
            f" Where logs/{self.table} stores them: {listed}."
        )
        if any(sum(files.values()) > 1 for files in self.stored.values()):
            text += (
                f" The logs hold the same {self.key} in several rows (two ingests of overlapping"
                " files that ran at the same time could store both, before ingest took a lock);"
                f" keep one row per {self.key}, e.g. re-ingest the logs into a new data directory."
            )
        return text


def find_duplicate_ids(
    paths: DataPaths,
    table: str,
    ids: pa.Array | pa.ChunkedArray | Sequence[str],
    limit: int = 20,
) -> DuplicateIds:
    """Which of ids occur more than once, and which stored Parquet parts of the table hold them."""
    key = KEY_COLUMN[table]
    values = ids if isinstance(ids, pa.Array | pa.ChunkedArray) else pa.array(ids, pa.string())
    counts = pc.value_counts(values)
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    duplicated = sorted(repeated.to_pylist())
    stored: dict[str, dict[str, int]] = {value: {} for value in duplicated[:limit]}
    files = parquet_files(paths.log_table_dir(table))
    if stored and files:
        wanted = pa.table({"id": pa.array(list(stored), pa.string())})
        with connect_duckdb(paths.root) as con:
            con.register("wanted", wanted)
            found = con.execute(
                f'SELECT "{key}", filename, count(*) FROM read_parquet($files, filename = true)'
                f' WHERE "{key}" IN (SELECT id FROM wanted) GROUP BY ALL ORDER BY ALL',
                {"files": [str(f) for f in files]},
            ).fetchall()
        for value, filename, rows in found:
            stored[value][_relative(paths, filename)] = rows
    return DuplicateIds(table, key, len(values), len(counts), len(duplicated), stored)


def _relative(paths: DataPaths, filename: str) -> str:
    """filename (as DuckDB names it: a path or an s3:// URL) relative to the data root."""
    root = str(paths.root).rstrip("/") + "/"
    return filename[len(root) :] if filename.startswith(root) else filename
