"""Ingest log files into the normalized executions / interactions tables, quarantining bad rows.

One call reads and checks every file before writing anything, so a file that cannot be parsed leaves
the data directory untouched. Writes are new Parquet parts named by their content digest:
- rows whose key (execution_id / interaction_id) is already stored, or that repeat an earlier row of
  the same input exactly, are counted as `already_present` and not written again;
- a row reusing an id of the same input with different content is quarantined (the first one wins);
- a quarantined row already stored for the same table with the same raw content is not stored again.
Interactions are checked against the executions already ingested, so ingest executions first.
Counts: `rows_read` and `quarantined` count source rows; `ingested` and `already_present` count
output rows (an interaction row with several types yields one output row per type).
"""

from __future__ import annotations

import gc
import hashlib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.logs.contract import (
    DUPLICATE_EXECUTION_ID,
    DUPLICATE_INTERACTION_ID,
    EXECUTIONS_SCHEMA,
    INTERACTIONS_SCHEMA,
    QUARANTINE_SCHEMA,
    InteractionDraft,
    LoggedExecution,
    RowRejected,
    complete_interaction,
    normalize_execution,
    normalize_interaction,
    raw_json,
)
from eval_pipelines.core.logs.readers import (
    FORMATS,
    LogParseError,
    SourceRecord,
    read_records,
    resolve_format,
)
from eval_pipelines.core.paths import DataPaths, validate_id
from eval_pipelines.core.storage import (
    content_digest,
    parquet_files,
    read_parquet_dir,
    write_parquet_atomic,
)

__all__ = ["LOG_TABLES", "IngestReport", "LogParseError", "LogTable", "ingest_files"]

LogTable = Literal["executions", "interactions"]
LOG_TABLES: tuple[str, ...] = ("executions", "interactions")
_KEY_COLUMN = {"executions": "execution_id", "interactions": "interaction_id"}
_SCHEMAS = {"executions": EXECUTIONS_SCHEMA, "interactions": INTERACTIONS_SCHEMA}
_DUPLICATE_REASON = {
    "executions": DUPLICATE_EXECUTION_ID,
    "interactions": DUPLICATE_INTERACTION_ID,
}


@dataclass
class IngestReport:
    """What one ingest call did, for the CLI and for asset metadata."""

    table: str
    files: list[str]
    rows_read: int = 0
    ingested: int = 0
    already_present: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)
    quarantine_already_present: int = 0

    def summary_lines(self) -> list[str]:
        total = sum(self.quarantined.values())
        reasons = ", ".join(f"{reason}: {count}" for reason, count in self.quarantined.items())
        lines = [
            f"{self.table}: read {self.rows_read}, ingested {self.ingested},"
            f" already present {self.already_present}, quarantined {total}"
            + (f" ({reasons})" if reasons else "")
        ]
        if self.quarantine_already_present:
            lines.append(
                f"quarantine: {self.quarantine_already_present} of those rows were already"
                " quarantined by an earlier ingest"
            )
        lines.extend(f"wrote {path}" for path in self.written)
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "files": list(self.files),
            "rows_read": self.rows_read,
            "ingested": self.ingested,
            "already_present": self.already_present,
            "quarantined": dict(self.quarantined),
            "quarantine_already_present": self.quarantine_already_present,
            "written": [str(path) for path in self.written],
        }


@dataclass
class _Batch:
    """Rows of one ingest call, in input order, before comparing with what is stored."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    quarantine: list[tuple[SourceRecord, RowRejected]] = field(default_factory=list)
    repeated: int = 0


def ingest_files(
    paths: DataPaths,
    table: LogTable,
    files: Sequence[Path],
    fmt: str = "auto",
    default_retriever_id: str | None = None,
) -> IngestReport:
    """Read every file (all-or-nothing on parse errors), then write new rows and new quarantine rows."""
    if table not in LOG_TABLES:
        raise InvalidInputError(f"table: {table!r} is not one of {', '.join(LOG_TABLES)}")
    if fmt not in FORMATS:
        raise InvalidInputError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if default_retriever_id is not None:
        validate_id(default_retriever_id, "default retriever_id")
    sources = [Path(f) for f in files]
    for source in sources:
        resolve_format(source, fmt)
    with _gc_paused():
        return _ingest(paths, table, sources, fmt, default_retriever_id)


def _ingest(
    paths: DataPaths,
    table: LogTable,
    sources: list[Path],
    fmt: str,
    default_retriever_id: str | None,
) -> IngestReport:
    records = [record for source in sources for record in read_records(source, table, fmt)]
    if table == "executions":
        batch = _executions_batch(records, default_retriever_id)
    else:
        batch = _interactions_batch(records, paths.log_table_dir("executions"))

    report = IngestReport(table=table, files=[str(s) for s in sources], rows_read=len(records))
    new_rows = _without_stored_keys(
        _to_table(batch.rows, _SCHEMAS[table]),
        _KEY_COLUMN[table],
        paths.log_table_dir(table),
    )
    report.ingested = new_rows.num_rows
    report.already_present = batch.repeated + len(batch.rows) - new_rows.num_rows
    report.quarantined = dict(
        sorted(Counter(rejected.reason for _, rejected in batch.quarantine).items())
    )

    quarantine_rows = _quarantine_table(table, batch.quarantine)
    new_quarantine = _without_stored_quarantine(quarantine_rows, paths.log_table_dir("quarantine"))
    report.quarantine_already_present = quarantine_rows.num_rows - new_quarantine.num_rows

    for target, rows in ((table, new_rows), ("quarantine", new_quarantine)):
        if rows.num_rows:
            path = paths.log_table_dir(target) / f"part-{content_digest(rows)}.parquet"
            report.written.append(write_parquet_atomic(rows, path))
    return report


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Reading 10^5 rows allocates millions of acyclic objects; cyclic GC passes over them cost ~2x."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _executions_batch(records: list[SourceRecord], default_retriever_id: str | None) -> _Batch:
    batch = _Batch()
    first_seen: dict[str, tuple[tuple[Any, ...], SourceRecord]] = {}
    for record in records:
        try:
            if record.problem is not None:
                raise record.problem
            row = normalize_execution(record.fields, record.labels, default_retriever_id)
            earlier = first_seen.get(row.execution_id)
            if earlier is None:
                first_seen[row.execution_id] = (row, record)
                batch.rows.append(row)
            elif earlier[0] == row:
                batch.repeated += 1
            else:
                raise _duplicate("executions", "execution_id", row.execution_id, earlier[1])
        except RowRejected as rejected:
            batch.quarantine.append((record, rejected))
    return batch


def _interactions_batch(records: list[SourceRecord], executions_dir: Path) -> _Batch:
    drafts: list[tuple[SourceRecord, InteractionDraft | RowRejected]] = []
    for record in records:
        try:
            if record.problem is not None:
                raise record.problem
            drafts.append((record, normalize_interaction(record.fields, record.labels)))
        except RowRejected as rejected:
            drafts.append((record, rejected))
    valid = [d for _, d in drafts if isinstance(d, InteractionDraft)]
    executions = _stored_executions(
        executions_dir,
        wanted={d.execution_id for d in valid},
        documents_wanted={d.execution_id for d in valid if d.position is None},
    )

    batch = _Batch()
    first_seen: dict[str, tuple[tuple[Any, ...], SourceRecord]] = {}
    for record, draft in drafts:
        try:
            if isinstance(draft, RowRejected):
                raise draft
            rows = complete_interaction(draft, executions.get(draft.execution_id))
            fresh = []
            for row in rows:
                earlier = first_seen.get(row.interaction_id)
                if earlier is None:
                    fresh.append(row)
                elif earlier[0] != row:
                    raise _duplicate(
                        "interactions", "interaction_id", row.interaction_id, earlier[1]
                    )
            for row in fresh:
                first_seen[row.interaction_id] = (row, record)
            batch.rows.extend(fresh)
            batch.repeated += len(rows) - len(fresh)
        except RowRejected as rejected:
            batch.quarantine.append((record, rejected))
    return batch


def _duplicate(table: str, key: str, value: str, earlier: SourceRecord) -> RowRejected:
    return RowRejected(
        _DUPLICATE_REASON[table],
        f"{key} {value!r} already appears with different content at"
        f" {earlier.source_file}:{earlier.line} (the first one is kept)",
    )


def _stored_executions(
    directory: Path, wanted: set[str], documents_wanted: set[str]
) -> dict[str, LoggedExecution]:
    """The stored executions the batch refers to, filtered column-wise before conversion.

    Served documents are converted only for executions whose interactions need a derived position
    (the others get an empty tuple): that conversion is the costly part.
    """
    columns = ["execution_id", "session_id", "user_id"]
    stored = read_parquet_dir(directory, [*columns, "documents"] if documents_wanted else columns)
    if stored is None or not wanted:
        return {}
    stored = stored.filter(pc.is_in(stored["execution_id"], value_set=pa.array(sorted(wanted))))
    ids = stored["execution_id"].to_pylist()
    documents: list[Sequence[str]] = [()] * len(ids)
    if documents_wanted:
        needed = pc.is_in(stored["execution_id"], value_set=pa.array(sorted(documents_wanted)))
        indices = pc.indices_nonzero(needed)
        for index, served in zip(
            indices.to_pylist(), stored["documents"].take(indices).to_pylist(), strict=True
        ):
            documents[index] = served
    found: dict[str, LoggedExecution] = {}
    for execution_id, session_id, user_id, served in zip(
        ids,
        stored["session_id"].to_pylist(),
        stored["user_id"].to_pylist(),
        documents,
        strict=True,
    ):
        found.setdefault(execution_id, LoggedExecution(session_id, user_id, served))
    return found


def _to_table(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    return pa.table(
        [pa.array(column, type=f.type) for column, f in zip(columns, schema, strict=True)],
        schema=schema,
    )


def _without_stored_keys(rows: pa.Table, key: str, directory: Path) -> pa.Table:
    stored = read_parquet_dir(directory, [key])
    if stored is None or rows.num_rows == 0:
        return rows
    return rows.filter(pc.invert(pc.is_in(rows[key], value_set=stored[key].combine_chunks())))


def _quarantine_table(
    table: str, rejected_rows: list[tuple[SourceRecord, RowRejected]]
) -> pa.Table:
    rows = [
        (
            table,
            record.source_file,
            record.line,
            rejected.reason,
            rejected.detail,
            raw_json(record.raw),
        )
        for record, rejected in rejected_rows
    ]
    return _to_table(rows, QUARANTINE_SCHEMA)


def quarantine_key(table: str, raw: str) -> str:
    """Identity of a quarantined row: the same source content for the same table is stored once."""
    return hashlib.sha256(f"{table}\n{raw}".encode()).hexdigest()


def _without_stored_quarantine(rows: pa.Table, directory: Path) -> pa.Table:
    files = parquet_files(directory)
    if not files or rows.num_rows == 0:
        return rows
    with duckdb.connect() as con:
        stored = con.sql(
            'SELECT DISTINCT sha256("table" || chr(10) || raw) AS key FROM read_parquet($files)',
            params={"files": [str(f) for f in files]},
        ).to_arrow_table()
    keys = pa.array(
        [
            quarantine_key(t, r)
            for t, r in zip(rows["table"].to_pylist(), rows["raw"].to_pylist(), strict=True)
        ],
        pa.string(),
    )
    return rows.filter(pc.invert(pc.is_in(keys, value_set=stored["key"].combine_chunks())))
