"""One ingest's staging area, where the checks across rows run in DuckDB over staged Parquet files.

Drafts and rejections are written batch by batch as Parquet files; the checks across rows (an
interaction's execution, ids repeated in the input or already stored) run once over them, and the new
rows come out as Parquet parts, one per day.

Nothing of the input is held in memory: DuckDB streams the staged files and spills past its memory
limit into the staging directory. Only rows that a check across rows refuses come back to Python,
where the contract's own functions word the reason.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from eval_pipelines.core.logs.contract import (
    InteractionDraft,
    LoggedExecution,
    complete_interaction,
)
from eval_pipelines.core.logs.exact_rows import DRAFT_SCHEMAS, REJECTED_SCHEMA, ExactBatch
from eval_pipelines.core.logs.fast_rows import stage_fast_rows
from eval_pipelines.core.logs.line_blocks import LineBlock, read_line
from eval_pipelines.core.logs.quarantine import (
    CONFLICTING_DUPLICATE_ID,
    DUPLICATE_EXECUTION_ID,
    DUPLICATE_INTERACTION_ID,
    RowRejected,
    raw_json,
    utf8_safe,
)
from eval_pipelines.core.logs.readers import parse_json, with_note
from eval_pipelines.core.logs.tables import EXECUTIONS_SCHEMA, INTERACTIONS_SCHEMA
from eval_pipelines.core.paths import shown
from eval_pipelines.core.warehouse import LOG_VIEWS, with_added_columns

MEMORY_LIMIT = "1GB"
FETCH_ROWS = 50_000
WRITE_ROWS = 200_000
KEY_COLUMN = {"executions": "execution_id", "interactions": "interaction_id"}
_SCHEMAS = {"executions": EXECUTIONS_SCHEMA, "interactions": INTERACTIONS_SCHEMA}
_DAY_COLUMN = {"executions": "created_at", "interactions": "timestamp"}
_DUPLICATE_REASON = {
    "executions": DUPLICATE_EXECUTION_ID,
    "interactions": DUPLICATE_INTERACTION_ID,
}
# Python's datetime.isoformat() of a UTC instant, as derive_interaction_id hashes it.
_ISO_UTC = (
    "lpad(CAST(year({t}) AS VARCHAR), 4, '0') || strftime({t}, '-%m-%dT%H:%M:%S')"
    " || CASE WHEN (epoch_us({t}) % 1000000 + 1000000) % 1000000 = 0 THEN ''"
    " ELSE '.' || lpad(CAST((epoch_us({t}) % 1000000 + 1000000) % 1000000 AS VARCHAR), 6, '0')"
    " END || '+00:00'"
)


@dataclass
class Outcome:
    """The counts the report shows, and the staged files to move into place."""

    ingested: int = 0
    already_present: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    quarantine_already_present: int = 0
    parts: list[tuple[Path, str]] = field(default_factory=list)  # (staged file, target name)
    quarantine_part: Path | None = None
    quarantine_name: str = ""


class Staging:
    """The staging area of one ingest of one table."""

    def __init__(self, directory: Path, table: str) -> None:
        self.directory = directory
        self.table = table
        self._files = 0
        directory.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(":memory:")
        self.con.execute(
            f"SET threads = {min(2, os.cpu_count() or 1)}; SET TimeZone = 'UTC';"
            f" SET memory_limit = '{MEMORY_LIMIT}'; SET enable_progress_bar = false;"
            f" SET temp_directory = '{directory / 'spill'}'"
        )

    def close(self) -> None:
        self.con.close()

    def _next_file(self, kind: str) -> Path:
        self._files += 1
        return self.directory / f"{kind}-{self._files:08d}.parquet"

    def _staged(self, kind: str, schema: pa.Schema) -> str:
        """A FROM clause over the staged files of a kind (an empty table when there are none)."""
        if any(self.directory.glob(f"{kind}-*.parquet")):
            return f"read_parquet('{self.directory}/{kind}-*.parquet')"
        # A table, not a registered Arrow object: the second connection of _fetch sees it too.
        self.con.register("empty_schema", schema.empty_table())
        self.con.execute(f"CREATE OR REPLACE TABLE no_{kind} AS SELECT * FROM empty_schema")
        self.con.unregister("empty_schema")
        return f"no_{kind}"

    def fast_rows(self, block: LineBlock, default_retriever_id: str | None) -> tuple[int, pa.Table]:
        """Run the fast path over a block; returns how many rows it took and the other lines."""
        self.con.register("block_lines", block.lines)
        stage_fast_rows(self.con, self.table, default_retriever_id)
        taken = self.con.execute("SELECT count(*) FROM fast_block WHERE fast").fetchall()[0][0]
        slow = self.con.sql(
            'SELECT line, line_no, "offset" FROM block_lines WHERE line_no NOT IN'
            " (SELECT line_no FROM fast_block WHERE fast) ORDER BY line_no"
        ).to_arrow_table()
        self.con.unregister("block_lines")
        return int(taken), slow

    def add_batch(
        self, exact: ExactBatch, file_index: int, source_file: str, with_fast: bool
    ) -> None:
        """Stage one batch's drafts (the fast path's, when with_fast, and the exact rules') in input
        order, and its rejections."""
        drafts = exact.draft_table(self.table)
        params = {"file": file_index, "name": source_file}
        if with_fast and not drafts.num_rows:
            self.con.execute(
                f"COPY (SELECT {self._fast_columns()} FROM fast_block WHERE fast)"
                f" TO '{self._next_file('drafts')}' (FORMAT parquet)",
                params,
            )
        elif with_fast:
            self.con.register("exact_drafts", drafts)
            self.con.execute(
                f"COPY (SELECT {self._fast_columns()} FROM fast_block WHERE fast"
                " UNION ALL BY NAME SELECT * FROM exact_drafts ORDER BY ordinal)"
                f" TO '{self._next_file('drafts')}' (FORMAT parquet)",
                params,
            )
            self.con.unregister("exact_drafts")
        elif drafts.num_rows:
            pq.write_table(drafts, self._next_file("drafts"))
        self.add_rejected(exact.rejected_table())

    def _fast_columns(self) -> str:
        """The fast path's rows as drafts (parameters $file and $name)."""
        columns = [f.name for f in DRAFT_SCHEMAS[self.table]][5:]
        fast = ["CAST(NULL AS VARCHAR) AS note" if name == "note" else name for name in columns]
        return (
            "(CAST($file AS BIGINT) << 40) | line_no AS ordinal, CAST($name AS VARCHAR) AS"
            ' source_file, line_no AS line, "offset" AS raw_offset, CAST(NULL AS VARCHAR) AS raw,'
            f" {', '.join(fast)}"
        )

    def add_rejected(self, rows: pa.Table) -> None:
        if rows.num_rows:
            pq.write_table(rows.cast(REJECTED_SCHEMA), self._next_file("rejected"))

    def judge(
        self, stored: Sequence[Path], executions: Sequence[Path], quarantine: Sequence[Path]
    ) -> Outcome:
        """The cross-row checks (call under the logs lock) against the stored parts of the table,
        of executions and of quarantine (local files, logs/parts.py), then the staged output files."""
        drafts = self._staged("drafts", DRAFT_SCHEMAS[self.table])
        if self.table == "interactions":
            candidates = self.directory / "candidates.parquet"
            self._complete_interactions(drafts, executions, candidates)
            self.con.execute(
                f"CREATE VIEW candidates AS SELECT * FROM read_parquet('{candidates}') WHERE agrees"
            )
        else:  # an execution's draft is already its row: no second copy
            self.con.execute(f"CREATE VIEW candidates AS SELECT *, 0 AS type_index FROM {drafts}")
        self._deduplicate(stored)
        outcome = Outcome()
        self._write_rows(outcome)
        self._write_quarantine(outcome, quarantine)
        return outcome

    def _complete_interactions(self, drafts: str, executions: Sequence[Path], target: Path) -> None:
        """Join each interaction with its stored execution, fill what it borrows, one row per type
        (ids derived as contract.derive_interaction_id); a disagreeing one stays a single row."""
        files = [str(f) for f in executions]
        stored = (
            "SELECT execution_id, session_id AS e_session_id, user_id AS e_user_id,"
            " documents AS e_documents, created_at AS e_created_at"
            " FROM read_parquet($files, filename = true, file_row_number = true)"
            " QUALIFY row_number() OVER (PARTITION BY execution_id"
            " ORDER BY filename, file_row_number) = 1"
        )
        if not files:
            stored = (
                "SELECT CAST(NULL AS VARCHAR) AS execution_id, CAST(NULL AS VARCHAR) AS e_session_id,"
                " CAST(NULL AS VARCHAR) AS e_user_id, CAST(NULL AS VARCHAR[]) AS e_documents,"
                " CAST(NULL AS TIMESTAMPTZ) AS e_created_at WHERE false"
            )
        self.con.execute(f"CREATE TABLE executions AS {stored}", {"files": files} if files else {})
        joined = (
            "SELECT d.*, e.* EXCLUDE (execution_id), e.execution_id IS NOT NULL AS known,"
            " coalesce(d.position, list_position(e.e_documents, d.document_id) - 1) AS served_at"
            f" FROM {drafts} d LEFT JOIN executions e USING (execution_id)"
        )
        agrees = (
            "coalesce(known AND served_at >= 0 AND served_at < len(e_documents)"
            " AND e_documents[served_at + 1] = document_id AND timestamp >= e_created_at, false)"
        )
        exploded = (
            f"SELECT *, {agrees} AS agrees, unnest(CASE WHEN {agrees} AND len(interaction_types) > 1"
            f" THEN range(len(interaction_types)) ELSE [0] END) AS type_index FROM ({joined})"
        )
        content = " || chr(31) || ".join(
            [
                "execution_id",
                "document_id",
                "interaction_types[type_index + 1]",
                "CAST(served_at AS VARCHAR)",
                "coalesce(session_id, e_session_id)",
                "coalesce(user_id, e_user_id, '')",
                _ISO_UTC.format(t="timestamp"),
                "coalesce(metadata, '')",
            ]
        )
        self.con.execute(
            "COPY (SELECT ordinal, source_file, line, raw_offset, raw, agrees, type_index,"
            " interaction_id AS given_id, position AS given_position, note, known,"
            # What only a refused row's message needs is kept for those rows alone.
            " CASE WHEN NOT agrees THEN interaction_types END AS interaction_types,"
            " CASE WHEN NOT agrees THEN e_session_id END AS e_session_id,"
            " CASE WHEN NOT agrees THEN e_user_id END AS e_user_id,"
            " CASE WHEN NOT agrees THEN e_documents END AS e_documents,"
            " CASE WHEN NOT agrees THEN e_created_at END AS e_created_at,"
            " CASE WHEN NOT agrees THEN interaction_id"
            f" WHEN interaction_id IS NULL THEN 'int_' || left(sha256({content}), 16)"
            " WHEN len(interaction_types) > 1"
            " THEN interaction_id || ':' || interaction_types[type_index + 1]"
            " ELSE interaction_id END AS interaction_id,"
            " execution_id, document_id, interaction_types[type_index + 1] AS interaction_type,"
            " CAST(served_at AS INTEGER) AS position,"
            " coalesce(session_id, e_session_id) AS session_id,"
            " CASE WHEN user_id IS NOT NULL THEN user_id ELSE e_user_id END AS user_id,"
            " timestamp, metadata, session_id AS given_session_id, user_id AS given_user_id"
            f" FROM ({exploded})) TO '{target}' (FORMAT parquet)"
        )
        self._reject_disagreeing(target)

    def _reject_disagreeing(self, candidates: Path) -> None:
        """Interactions whose execution is unknown or disagrees, worded by complete_interaction."""
        query = (
            "SELECT ordinal, source_file, line, raw_offset, raw, given_id, execution_id,"
            " document_id, interaction_types, given_position, given_session_id, given_user_id,"
            " timestamp, metadata, known, e_session_id, e_user_id, e_documents, e_created_at, note"
            f" FROM read_parquet('{candidates}') WHERE NOT agrees"
        )
        for chunk in self._fetch(query):
            rows = []
            for values in chunk:
                (place, source, line, offset, raw, *draft, known) = values[:15]
                execution = LoggedExecution(*values[15:19]) if known else None
                try:
                    complete_interaction(InteractionDraft(*draft), execution)
                except RowRejected as rejected:
                    explained = with_note(rejected, values[19])
                    rows.append(self._quarantine_row(place, source, line, offset, raw, explained))
                    continue
                raise AssertionError(f"{source}:{line}: the SQL and Python agreement rules differ")
            self.add_rejected(pa.Table.from_pylist(rows, REJECTED_SCHEMA))

    def _deduplicate(self, stored: Sequence[Path]) -> None:
        """Decide which candidate rows are new; quarantine records whose id conflicts.

        As the row-by-row rule: a row whose id is stored with other content rejects its record; one
        stored identically is repeated; among the others, the first record (input order) with an id
        wins, a later identical row is repeated, a later different one rejects its record.
        """
        key = KEY_COLUMN[self.table]
        others = [name for name in _SCHEMAS[self.table].names if name != key]
        files = [str(f) for f in stored]
        if files:
            differs = ", ".join(
                f'CASE WHEN c."{n}" IS DISTINCT FROM s."{n}" THEN \'{n}\' END' for n in others
            )
            stored = with_added_columns(
                "SELECT * FROM read_parquet($files, union_by_name = true)", LOG_VIEWS[self.table]
            )
            self.con.execute(
                "CREATE TABLE stored_diffs AS SELECT ordinal, type_index,"
                " arg_min(differs, length(differs)) AS diff FROM ("
                f" SELECT c.ordinal, c.type_index, concat_ws(', ', {differs}) AS differs"
                f' FROM candidates c JOIN ({stored}) s ON c."{key}" = s."{key}")'
                " GROUP BY ALL",
                {"files": files},
            )
        else:
            self.con.execute(
                "CREATE TABLE stored_diffs (ordinal BIGINT, type_index BIGINT, diff VARCHAR)"
            )
        conflicts = (
            f'SELECT c.ordinal, c.source_file, c.line, c.raw_offset, c.raw, arg_min(c."{key}",'
            " c.type_index), arg_min(d.diff, c.type_index) FROM candidates c"
            " JOIN stored_diffs d USING (ordinal, type_index) WHERE d.diff <> '' GROUP BY ALL"
        )
        for chunk in self._fetch(conflicts):
            self._reject(
                chunk,
                lambda values: RowRejected(
                    CONFLICTING_DUPLICATE_ID,
                    f"{key} {shown(values[5])} is already stored with different content"
                    f" (differs in {values[6]}); the stored row is kept",
                ),
            )
        self.con.execute(
            "CREATE VIEW eligible AS SELECT * FROM candidates c WHERE NOT EXISTS (SELECT 1 FROM"
            " stored_diffs d WHERE d.ordinal = c.ordinal AND (d.type_index = c.type_index"
            " OR d.diff <> ''))"
        )
        self.con.execute(
            f'CREATE TABLE repeats AS SELECT "{key}", min(ordinal) AS first_ordinal FROM eligible'
            f' GROUP BY "{key}" HAVING count(*) > 1'
        )
        same = " AND ".join(f'e."{n}" IS NOT DISTINCT FROM f."{n}"' for n in others)
        duplicates = (
            "SELECT e.ordinal, e.source_file, e.line, e.raw_offset, e.raw,"
            f' arg_min(e."{key}", e.type_index), arg_min(f.source_file, e.type_index),'
            " arg_min(f.line, e.type_index)"
            f' FROM eligible e JOIN repeats r USING ("{key}")'
            f' JOIN eligible f ON f."{key}" = e."{key}" AND f.ordinal = r.first_ordinal'
            f" WHERE e.ordinal > r.first_ordinal AND NOT ({same}) GROUP BY ALL"
        )
        reason = _DUPLICATE_REASON[self.table]
        for chunk in self._fetch(duplicates):
            self._reject(
                chunk,
                lambda values: RowRejected(
                    reason,
                    f"{key} {shown(values[5])} already appears with different content at"
                    f" {values[6]}:{values[7]} (the first one is kept)",
                ),
            )
        rejected = self._staged("rejected", REJECTED_SCHEMA)
        self.con.execute(f"CREATE TABLE refused AS SELECT DISTINCT ordinal FROM {rejected}")
        self.con.execute(
            "CREATE VIEW accepted AS SELECT c.*, NOT EXISTS (SELECT 1 FROM stored_diffs d"
            " WHERE d.ordinal = c.ordinal AND d.type_index = c.type_index) AND"
            f" coalesce(r.first_ordinal = c.ordinal, true) AS kept FROM candidates c LEFT JOIN"
            f' repeats r USING ("{key}") WHERE c.ordinal NOT IN (SELECT ordinal FROM refused)'
        )

    def _reject(
        self, chunk: list[tuple[Any, ...]], why: Callable[[tuple[Any, ...]], RowRejected]
    ) -> None:
        rows = [self._quarantine_row(*values[:5], why(values)) for values in chunk]
        self.add_rejected(pa.Table.from_pylist(rows, REJECTED_SCHEMA))

    def _write_rows(self, outcome: Outcome) -> None:
        """The kept rows as one Parquet part per day, in input order, with the table's exact schema."""
        schema = _SCHEMAS[self.table]
        day = _DAY_COLUMN[self.table]
        query = (
            f"SELECT {', '.join(schema.names)}, strftime({day}, '%Y-%m-%d') AS day, kept"
            # Input order, whatever order the joins emitted: the same input gives the same bytes.
            " FROM accepted ORDER BY ordinal, type_index"
        )
        writers: dict[str, pq.ParquetWriter] = {}
        repeated = 0
        try:
            for batch in self.con.sql(query).to_arrow_reader(WRITE_ROWS):
                rows = pa.Table.from_batches([batch])
                kept = rows.column("kept")
                repeated += rows.num_rows - int(pa.compute.sum(kept).as_py() or 0)
                rows = rows.filter(kept)
                outcome.ingested += rows.num_rows
                for value in pa.compute.unique(rows.column("day")).to_pylist():
                    if value not in writers:
                        path = self.directory / f"rows-{value}.parquet"
                        writers[value] = pq.ParquetWriter(path, schema, compression="zstd")
                        outcome.parts.append((path, value))
                    day_rows = rows.filter(pa.compute.equal(rows.column("day"), value))
                    writers[value].write_table(day_rows.drop_columns(["day", "kept"]).cast(schema))
        finally:
            for writer in writers.values():
                writer.close()
        outcome.already_present = repeated
        outcome.parts = sorted(
            (path, f"part-{value}-{_file_digest(path)}.parquet") for path, value in outcome.parts
        )

    def _write_quarantine(self, outcome: Outcome, quarantine: Sequence[Path]) -> None:
        rejected = self._staged("rejected", REJECTED_SCHEMA)
        rows = self.con.execute(
            f"SELECT reason, count(*) FROM {rejected} GROUP BY reason ORDER BY reason"
        ).fetchall()
        outcome.quarantined = {reason: int(count) for reason, count in rows}
        if not rows:
            return
        files = [str(f) for f in quarantine]
        known = (
            'SELECT DISTINCT sha256("table" || chr(10) || raw) AS key FROM read_parquet($files)'
            if files
            else "SELECT ''::VARCHAR AS key WHERE false"
        )
        self.con.execute(
            'CREATE TABLE new_quarantine AS SELECT "table", source_file, line, reason,'
            f" detail, raw, ordinal FROM {rejected}"
            f' WHERE sha256("table" || chr(10) || raw) NOT IN ({known})',
            {"files": files} if files else {},
        )
        total = sum(outcome.quarantined.values())
        new = self.con.execute("SELECT count(*) FROM new_quarantine").fetchall()[0][0]
        outcome.quarantine_already_present = total - int(new)
        if new:
            path = self.directory / "quarantine.parquet"
            self.con.execute(
                "COPY (SELECT * EXCLUDE (ordinal) FROM new_quarantine ORDER BY ordinal)"
                f" TO '{path}' (FORMAT parquet, COMPRESSION zstd)"
            )
            outcome.quarantine_part = path
            outcome.quarantine_name = f"part-{_file_digest(path)}.parquet"

    def _quarantine_row(
        self,
        place: int,
        source: str,
        line: int,
        offset: int | None,
        raw: str | None,
        rejected: RowRejected,
    ) -> dict[str, Any]:
        if raw is None and offset is not None:
            raw = raw_json(parse_json(read_line(Path(source), offset)))
        return {
            "ordinal": place,
            "table": self.table,
            "source_file": utf8_safe(source),
            "line": line,
            "reason": rejected.reason,
            "detail": utf8_safe(rejected.detail),
            "raw": raw or "",
        }

    def _fetch(self, query: str) -> Iterator[list[tuple[Any, ...]]]:
        """Rows of a query in bounded chunks (refused rows are few, but a bad file's may not be),
        read on a second connection so the first can store what each chunk becomes."""
        cursor = self.con.cursor()
        try:
            for batch in cursor.sql(query).to_arrow_reader(FETCH_ROWS):
                columns = [column.to_pylist() for column in batch.columns]
                yield list(zip(*columns, strict=True))
        finally:
            cursor.close()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]
