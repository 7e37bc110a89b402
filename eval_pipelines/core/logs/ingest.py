"""Ingest log files into the normalized executions / interactions tables, quarantining bad rows.

One call reads and checks every file before writing anything, so a file that cannot be parsed leaves
the data directory untouched. Writes are new Parquet parts named by their content digest:
- rows whose key (execution_id / interaction_id) is already stored with the same normalized content,
  or that repeat an earlier row of the same input exactly, are counted as `already_present`;
- a row reusing an id with different content is quarantined: `duplicate_*_id` when the id came
  earlier in the same input (the first one wins), `conflicting_duplicate_id` when it is stored;
- a quarantined row already stored for the same table with the same raw content is not stored again.
Interactions are checked against the executions already ingested, so ingest executions first.
Everything from reading the stored rows to writing the new parts holds an exclusive lock on the logs
directory, so concurrent ingests (any tables) behave as if run one after the other.
Counts: `rows_read` and `quarantined` count source rows; `ingested` and `already_present` count
output rows (an interaction row with several types yields one output row per type).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.gc_pause import gc_paused
from eval_pipelines.core.logs.contract import (
    InteractionDraft,
    LoggedExecution,
    complete_interaction,
    normalize_execution,
    normalize_interaction,
)
from eval_pipelines.core.logs.quarantine import (
    CONFLICTING_DUPLICATE_ID,
    DUPLICATE_EXECUTION_ID,
    DUPLICATE_INTERACTION_ID,
    RowRejected,
    raw_json,
    utf8_safe,
)
from eval_pipelines.core.logs.readers import (
    FORMATS,
    LogParseError,
    SourceRecord,
    read_records,
    resolve_format,
)
from eval_pipelines.core.logs.tables import (
    EXECUTIONS_SCHEMA,
    INTERACTIONS_SCHEMA,
    QUARANTINE_SCHEMA,
)
from eval_pipelines.core.paths import DataPaths, shown, validate_id
from eval_pipelines.core.storage import (
    content_digest,
    directory_lock,
    parquet_files,
    write_parquet_atomic,
)
from eval_pipelines.core.warehouse import LOG_VIEWS, with_added_columns

__all__ = [
    "LOG_TABLES",
    "DuplicateIds",
    "IngestReport",
    "LogParseError",
    "LogTable",
    "find_duplicate_ids",
    "ingest_files",
]

LogTable = Literal["executions", "interactions"]
LOG_TABLES: tuple[str, ...] = ("executions", "interactions")
_KEY_COLUMN = {"executions": "execution_id", "interactions": "interaction_id"}
_SCHEMAS = {"executions": EXECUTIONS_SCHEMA, "interactions": INTERACTIONS_SCHEMA}
_DUPLICATE_REASON = {
    "executions": DUPLICATE_EXECUTION_ID,
    "interactions": DUPLICATE_INTERACTION_ID,
}
# Generous: a waiting ingest should outwait a large one, not fail beside it.
INGEST_LOCK_TIMEOUT_S = 3600.0


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
    """Rows of one ingest call that are new (input order), and what was repeated or rejected."""

    rows: pa.Table
    quarantine: list[tuple[SourceRecord, RowRejected]]
    repeated: int


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
    with gc_paused():
        return _ingest(paths, table, sources, fmt, default_retriever_id)


def _ingest(
    paths: DataPaths,
    table: LogTable,
    sources: list[Path],
    fmt: str,
    default_retriever_id: str | None,
) -> IngestReport:
    records = [record for source in sources for record in read_records(source, table, fmt)]
    report = IngestReport(table=table, files=[str(s) for s in sources], rows_read=len(records))
    if not records:
        return report
    # The checks of a row's own fields need nothing stored, so they run before taking the lock.
    if table == "executions":
        outcomes, drafts = _execution_outcomes(records, default_retriever_id), []
    else:
        outcomes, drafts = [], _interaction_drafts(records)
    # Reading what is stored and writing what is new must be one step: two ingests at once would
    # otherwise both take an id (or a quarantined row) for new and both store it. The executions
    # an interaction is checked against are read under the same lock.
    with directory_lock(paths.logs_dir, timeout_s=INGEST_LOCK_TIMEOUT_S):
        if table == "interactions":
            outcomes = _interaction_outcomes(drafts, paths.log_table_dir("executions"))
        _write(paths, table, _deduplicated(table, outcomes, paths.log_table_dir(table)), report)
    return report


def _write(paths: DataPaths, table: LogTable, batch: _Batch, report: IngestReport) -> None:
    """Store the batch's new rows and new quarantine rows (call under the logs lock)."""
    report.ingested = batch.rows.num_rows
    report.already_present = batch.repeated
    report.quarantined = dict(
        sorted(Counter(rejected.reason for _, rejected in batch.quarantine).items())
    )
    quarantine_rows = _quarantine_table(table, batch.quarantine)
    new_quarantine = _without_stored_quarantine(quarantine_rows, paths.log_table_dir("quarantine"))
    report.quarantine_already_present = quarantine_rows.num_rows - new_quarantine.num_rows
    for target, rows in ((table, batch.rows), ("quarantine", new_quarantine)):
        if rows.num_rows:
            path = paths.log_table_dir(target) / f"part-{content_digest(rows)}.parquet"
            report.written.append(write_parquet_atomic(rows, path))


# What one source record became: its normalized rows (an interaction: one per type), or why not.
_Outcome = tuple[SourceRecord, list[tuple[Any, ...]] | RowRejected]


def _execution_outcomes(
    records: list[SourceRecord], default_retriever_id: str | None
) -> list[_Outcome]:
    outcomes: list[_Outcome] = []
    for record in records:
        try:
            if record.problem is not None:
                raise record.problem
            row = normalize_execution(record.fields, record.labels, default_retriever_id)
            outcomes.append((record, [row]))
        except RowRejected as rejected:
            outcomes.append((record, rejected))
    return outcomes


def _interaction_drafts(
    records: list[SourceRecord],
) -> list[tuple[SourceRecord, InteractionDraft | RowRejected]]:
    drafts: list[tuple[SourceRecord, InteractionDraft | RowRejected]] = []
    for record in records:
        try:
            if record.problem is not None:
                raise record.problem
            drafts.append((record, normalize_interaction(record.fields, record.labels)))
        except RowRejected as rejected:
            drafts.append((record, rejected))
    return drafts


def _interaction_outcomes(
    drafts: list[tuple[SourceRecord, InteractionDraft | RowRejected]], executions_dir: Path
) -> list[_Outcome]:
    """Each draft joined with its stored execution (call under the logs lock)."""
    executions = _stored_executions(
        executions_dir, {d.execution_id for _, d in drafts if isinstance(d, InteractionDraft)}
    )
    outcomes: list[_Outcome] = []
    for record, draft in drafts:
        try:
            if isinstance(draft, RowRejected):
                raise draft
            outcomes.append(
                (record, complete_interaction(draft, executions.get(draft.execution_id)))
            )
        except RowRejected as rejected:
            outcomes.append((record, rejected))
    return outcomes


def _deduplicated(table: LogTable, outcomes: list[_Outcome], directory: Path) -> _Batch:
    """Keep rows whose id is new; the same content again is `already present`, different content
    under a known id is quarantined with the record that carried it (call under the logs lock).

    "Content" is the whole normalized row: spelling that normalization removes (key order, a
    timestamp's offset, a type's case) does not make a row different.
    """
    candidates = _to_table(
        [row for _, rows in outcomes if not isinstance(rows, RowRejected) for row in rows],
        _SCHEMAS[table],
    )
    stored = _stored_differences(candidates, table, directory)
    quarantine: list[tuple[SourceRecord, RowRejected]] = []
    kept: list[int] = []
    repeated = 0
    first_seen: dict[str, tuple[tuple[Any, ...], SourceRecord]] = {}
    index = 0
    for record, rows in outcomes:
        if isinstance(rows, RowRejected):
            quarantine.append((record, rows))
            continue
        first, index = index, index + len(rows)
        try:
            fresh = []
            for row_index, row in enumerate(rows, start=first):
                differing = stored.get(row_index)
                if differing:
                    raise RowRejected(
                        CONFLICTING_DUPLICATE_ID,
                        f"{_KEY_COLUMN[table]} {shown(row[0])} is already stored with different"
                        f" content (differs in {differing}); the stored row is kept",
                    )
                earlier = first_seen.get(row[0])
                if differing is None and earlier is None:
                    fresh.append((row_index, row))
                elif earlier is not None and earlier[0] != row:
                    raise RowRejected(
                        _DUPLICATE_REASON[table],
                        f"{_KEY_COLUMN[table]} {shown(row[0])} already appears with different"
                        f" content at {earlier[1].source_file}:{earlier[1].line} (the first one"
                        " is kept)",
                    )
            for row_index, row in fresh:
                first_seen[row[0]] = (row, record)
                kept.append(row_index)
            repeated += len(rows) - len(fresh)
        except RowRejected as rejected:
            quarantine.append((record, rejected))
    return _Batch(candidates.take(pa.array(kept, pa.int64())), quarantine, repeated)


def _stored_differences(candidates: pa.Table, table: LogTable, directory: Path) -> dict[int, str]:
    """For each candidate row whose id is stored: the columns where it differs from the stored row,
    comma-separated ("" when identical; for an id stored twice, the closer copy).

    Compared in DuckDB, column by column with IS NOT DISTINCT FROM (lists element-wise, timestamps
    as instants), so stored rows never become Python objects.
    """
    files = parquet_files(directory)
    if not files or candidates.num_rows == 0:
        return {}
    key, *others = candidates.schema.names
    differs = ", ".join(
        f'CASE WHEN c."{name}" IS DISTINCT FROM s."{name}" THEN \'{name}\' END' for name in others
    )
    numbered = candidates.append_column(
        "candidate_row", pa.array(range(candidates.num_rows), pa.int64())
    )
    # Parts written before a column was added lack it: they read it as NULL.
    stored = with_added_columns(
        "SELECT * FROM read_parquet($files, union_by_name = true)", LOG_VIEWS[table]
    )
    with duckdb.connect() as con:
        con.register("candidates", numbered)
        found = con.sql(
            f"SELECT candidate_row, arg_min(differs, length(differs)) FROM ("
            f" SELECT c.candidate_row, concat_ws(', ', {differs}) AS differs"
            f' FROM candidates c JOIN ({stored}) s ON c."{key}" = s."{key}")'
            " GROUP BY candidate_row",
            params={"files": [str(f) for f in files]},
        ).to_arrow_table()
    return dict(zip(found.column(0).to_pylist(), found.column(1).to_pylist(), strict=True))


def _read_matching(
    directory: Path, key: str, wanted: set[str], columns: list[str]
) -> pa.Table | None:
    """Stored rows whose key is in wanted (None when there are none), columns in the given order."""
    files = parquet_files(directory)
    if not files or not wanted:
        return None
    found = ds.dataset([str(f) for f in files], format="parquet").to_table(
        columns=columns, filter=ds.field(key).isin(pa.array(list(wanted), pa.string()))
    )
    return found if found.num_rows else None


def _stored_executions(directory: Path, wanted: set[str]) -> dict[str, LoggedExecution]:
    """The stored executions the interactions refer to, with what they must agree with."""
    columns = ["execution_id", "session_id", "user_id", "documents", "created_at"]
    stored = _read_matching(directory, "execution_id", wanted, columns)
    if stored is None:
        return {}
    found: dict[str, LoggedExecution] = {}
    for execution_id, *rest in zip(*(column.to_pylist() for column in stored.columns), strict=True):
        found.setdefault(execution_id, LoggedExecution(*rest))
    return found


def _to_table(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    return pa.table(
        [pa.array(column, type=f.type) for column, f in zip(columns, schema, strict=True)],
        schema=schema,
    )


def _quarantine_table(
    table: str, rejected_rows: list[tuple[SourceRecord, RowRejected]]
) -> pa.Table:
    rows = [
        (
            table,
            utf8_safe(record.source_file),
            record.line,
            rejected.reason,
            utf8_safe(rejected.detail),
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
    table: LogTable,
    ids: pa.Array | pa.ChunkedArray | Sequence[str],
    limit: int = 20,
) -> DuplicateIds:
    """Which of ids occur more than once, and which stored Parquet parts of the table hold them."""
    key = _KEY_COLUMN[table]
    values = ids if isinstance(ids, pa.Array | pa.ChunkedArray) else pa.array(ids, pa.string())
    counts = pc.value_counts(values)
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    duplicated = sorted(repeated.to_pylist())
    stored: dict[str, dict[str, int]] = {value: {} for value in duplicated[:limit]}
    files = parquet_files(paths.log_table_dir(table))
    if stored and files:
        wanted = pa.table({"id": pa.array(list(stored), pa.string())})
        with duckdb.connect() as con:
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
    path = Path(filename)
    return str(path.relative_to(paths.root)) if path.is_relative_to(paths.root) else filename
