"""One ingest's staging database: drafts and rejections go in batch by batch, the checks across rows
(an interaction's execution, ids repeated in the input or already stored) run once in DuckDB, and the
new rows come out as Parquet parts, one per day.

The database lives in a directory under the logs directory and spills to disk past its memory limit,
so an ingest's memory does not grow with its input. Only rows that a cross-row check refuses come
back to Python, where the contract's own functions word the reason.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eval_pipelines.core.logs.contract import (
    InteractionDraft,
    LoggedExecution,
    complete_interaction,
)
from eval_pipelines.core.logs.exact_rows import DRAFT_SCHEMAS, REJECTED_SCHEMA
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
from eval_pipelines.core.storage import parquet_files
from eval_pipelines.core.warehouse import LOG_VIEWS, with_added_columns

MEMORY_LIMIT = "1GB"
FETCH_ROWS = 50_000
WRITE_ROWS = 500_000
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
    """The staging database of one ingest of one table."""

    def __init__(self, directory: Path, table: str) -> None:
        self.directory = directory
        self.table = table
        directory.mkdir(parents=True, exist_ok=True)
        # In memory, spilling to the directory past the limit: a database file would be written twice.
        self.con = duckdb.connect(":memory:")
        self.con.execute(
            f"SET threads = {min(2, os.cpu_count() or 1)}; SET TimeZone = 'UTC';"
            f" SET memory_limit = '{MEMORY_LIMIT}'; SET preserve_insertion_order = false; SET enable_progress_bar = false;"
            f" SET temp_directory = '{directory / 'spill'}'"
        )
        self._create("drafts", DRAFT_SCHEMAS[table])
        self._create("rejected", REJECTED_SCHEMA)

    def _create(self, name: str, schema: pa.Schema) -> None:
        self.con.register("empty_schema", schema.empty_table())
        self.con.execute(f"CREATE TABLE {name} AS SELECT * FROM empty_schema")
        self.con.unregister("empty_schema")

    def close(self) -> None:
        self.con.close()

    def add(self, name: str, rows: pa.Table) -> None:
        if rows.num_rows:
            self.con.register("incoming", rows)
            self.con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM incoming")
            self.con.unregister("incoming")

    def stage_block(
        self, block: LineBlock, file_index: int, source_file: str, default_retriever_id: str | None
    ) -> tuple[int, pa.Table]:
        """Store the rows of a block the fast path accepts; returns their count and the other lines."""
        self.con.register("block_lines", block.lines)
        stage_fast_rows(self.con, self.table, default_retriever_id)
        columns = [f.name for f in DRAFT_SCHEMAS[self.table]][5:]
        if self.table == "interactions":
            columns.remove("note")
        count = self.con.execute(
            "INSERT INTO drafts BY NAME SELECT"
            f" (CAST($file AS BIGINT) << 40) | line_no AS ordinal, $name AS source_file,"
            f' line_no AS line, "offset" AS raw_offset, NULL AS raw, {", ".join(columns)}'
            " FROM fast_block WHERE fast",
            {"file": file_index, "name": source_file},
        ).fetchall()
        slow = self.con.sql(
            'SELECT line, line_no, "offset" FROM block_lines WHERE line_no NOT IN'
            " (SELECT line_no FROM fast_block WHERE fast) ORDER BY line_no"
        ).to_arrow_table()
        self.con.unregister("block_lines")
        return (int(count[0][0]) if count else 0), slow

    def judge(self, stored_dir: Path, executions_dir: Path, quarantine_dir: Path) -> Outcome:
        """The cross-row checks (call under the logs lock), then the staged output files."""
        if self.table == "interactions":
            self._complete_interactions(executions_dir)
        else:
            self.con.execute("CREATE TABLE candidates AS SELECT *, 0 AS type_index FROM drafts")
        self._deduplicate(stored_dir)
        outcome = Outcome()
        self._write_rows(outcome)
        self._write_quarantine(outcome, quarantine_dir)
        return outcome

    def _complete_interactions(self, executions_dir: Path) -> None:
        files = [str(f) for f in parquet_files(executions_dir)]
        stored = (
            "SELECT execution_id, session_id AS e_session_id, user_id AS e_user_id,"
            " documents AS e_documents, created_at AS e_created_at"
            " FROM read_parquet($files, filename = true, file_row_number = true)"
            " WHERE execution_id IN (SELECT execution_id FROM drafts)"
            " QUALIFY row_number() OVER (PARTITION BY execution_id"
            " ORDER BY filename, file_row_number) = 1"
            if files
            else "SELECT NULL::VARCHAR AS execution_id, NULL::VARCHAR AS e_session_id,"
            " NULL::VARCHAR AS e_user_id, NULL::VARCHAR[] AS e_documents,"
            " NULL::TIMESTAMPTZ AS e_created_at WHERE false"
        )
        self.con.execute(
            f"CREATE TABLE joined AS SELECT d.*, e.* EXCLUDE (execution_id),"
            " e.execution_id IS NOT NULL AS known,"
            " coalesce(d.position, list_position(e.e_documents, d.document_id) - 1) AS served_at"
            f" FROM drafts d LEFT JOIN ({stored}) e USING (execution_id)",
            {"files": files} if files else {},
        )
        agrees = (
            "coalesce(known AND served_at >= 0 AND served_at < len(e_documents)"
            " AND e_documents[served_at + 1] = document_id AND timestamp >= e_created_at, false)"
        )
        self._reject_disagreeing(agrees)
        content = " || chr(31) || ".join(
            [
                "execution_id",
                "document_id",
                "interaction_type",
                "CAST(position AS VARCHAR)",
                "session_id",
                "coalesce(user_id, '')",
                _ISO_UTC.format(t="timestamp"),
                "coalesce(metadata, '')",
            ]
        )
        # Most records have one type: only the others are unnested.
        one_per_type = (
            f"SELECT *, 0 AS type_index FROM joined WHERE len(interaction_types) = 1 AND {agrees}"
            " UNION ALL SELECT *, unnest(range(len(interaction_types))) AS type_index FROM joined"
            f" WHERE len(interaction_types) > 1 AND {agrees}"
        )
        completed = (
            "SELECT ordinal, source_file, line, raw_offset, raw, interaction_id AS given_id,"
            " execution_id, document_id, interaction_types[type_index + 1] AS interaction_type,"
            " type_index, len(interaction_types) AS type_count,"
            " CAST(served_at AS INTEGER) AS position,"
            " coalesce(session_id, e_session_id) AS session_id,"
            " CASE WHEN user_id IS NOT NULL THEN user_id ELSE e_user_id END AS user_id,"
            f" timestamp, metadata FROM ({one_per_type})"
        )
        self.con.execute(
            "CREATE TABLE candidates AS SELECT * EXCLUDE (given_id, type_count),"
            f" CASE WHEN given_id IS NULL THEN 'int_' || left(sha256({content}), 16)"
            " WHEN type_count > 1 THEN given_id || ':' || interaction_type"
            f" ELSE given_id END AS interaction_id FROM ({completed})"
        )

    def _reject_disagreeing(self, agrees: str) -> None:
        """Interactions whose execution is unknown or disagrees, worded by complete_interaction."""
        query = (
            "SELECT ordinal, source_file, line, raw_offset, raw, interaction_id, execution_id,"
            " document_id, interaction_types, position, session_id, user_id, timestamp, metadata,"
            " known, e_session_id, e_user_id, e_documents, e_created_at, note"
            f" FROM joined WHERE NOT ({agrees})"
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
            self.add("rejected", pa.Table.from_pylist(rows, REJECTED_SCHEMA))

    def _deduplicate(self, stored_dir: Path) -> None:
        """Mark each candidate row kept or repeated; quarantine records whose id conflicts.

        As the row-by-row rule: a row whose id is stored with other content rejects its record; one
        stored identically is repeated; among the others, the first record (input order) with an id
        wins, a later identical row is repeated, a later different one rejects its record.
        """
        key = KEY_COLUMN[self.table]
        names = [f.name for f in _SCHEMAS[self.table]]
        others = [name for name in names if name != key]
        files = [str(f) for f in parquet_files(stored_dir)]
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
                "CREATE TABLE stored_diffs AS SELECT 0::BIGINT AS ordinal,"
                " 0::BIGINT AS type_index, ''::VARCHAR AS diff WHERE false"
            )
        self.con.execute(
            "CREATE TABLE marked AS SELECT c.*, d.diff FROM candidates c"
            " LEFT JOIN stored_diffs d USING (ordinal, type_index)"
        )
        conflicts = self._fetch(
            f'SELECT ordinal, source_file, line, raw_offset, raw, arg_min("{key}", type_index),'
            " arg_min(diff, type_index) FROM marked WHERE diff <> '' GROUP BY ALL"
        )
        for chunk in conflicts:
            self._reject(
                chunk,
                lambda values: RowRejected(
                    CONFLICTING_DUPLICATE_ID,
                    f"{key} {shown(values[5])} is already stored with different content"
                    f" (differs in {values[6]}); the stored row is kept",
                ),
            )
        same = " AND ".join(f'e."{n}" IS NOT DISTINCT FROM f."{n}"' for n in others)
        self.con.execute(
            "CREATE TABLE eligible AS SELECT * FROM marked WHERE diff IS NULL"
            " AND ordinal NOT IN (SELECT ordinal FROM marked WHERE diff <> '')"
        )
        self.con.execute(
            f'CREATE TABLE firsts AS SELECT "{key}", min(ordinal) AS first_ordinal,'
            f' count(*) AS rows FROM eligible GROUP BY "{key}"'
        )
        duplicates = self._fetch(
            f"SELECT e.ordinal, e.source_file, e.line, e.raw_offset, e.raw,"
            f' arg_min(e."{key}", e.type_index), arg_min(f.source_file, e.type_index),'
            " arg_min(f.line, e.type_index)"
            f' FROM eligible e JOIN firsts USING ("{key}")'
            f' JOIN eligible f ON f."{key}" = e."{key}" AND f.ordinal = firsts.first_ordinal'
            f" WHERE firsts.rows > 1 AND e.ordinal > firsts.first_ordinal AND NOT ({same})"
            " GROUP BY ALL"
        )
        reason = _DUPLICATE_REASON[self.table]
        for chunk in duplicates:
            self._reject(
                chunk,
                lambda values: RowRejected(
                    reason,
                    f"{key} {shown(values[5])} already appears with different content at"
                    f" {values[6]}:{values[7]} (the first one is kept)",
                ),
            )
        self.con.execute(
            "CREATE TABLE accepted AS SELECT m.*,"
            " coalesce(m.diff IS NULL AND m.ordinal = f.first_ordinal, false) AS kept"
            f' FROM marked m LEFT JOIN firsts f USING ("{key}")'
            " WHERE m.ordinal NOT IN (SELECT ordinal FROM rejected)"
        )

    def _reject(
        self, chunk: list[tuple[Any, ...]], why: Callable[[tuple[Any, ...]], RowRejected]
    ) -> None:
        rows = [self._quarantine_row(*values[:5], why(values)) for values in chunk]
        self.add("rejected", pa.Table.from_pylist(rows, REJECTED_SCHEMA))

    def _write_rows(self, outcome: Outcome) -> None:
        """The kept rows as one Parquet part per day, in input order, with the table's exact schema."""
        counts = self.con.execute(
            "SELECT count(*) FILTER (WHERE kept), count(*) FILTER (WHERE NOT kept) FROM accepted"
        ).fetchall()[0]
        outcome.ingested, outcome.already_present = int(counts[0]), int(counts[1])
        if not outcome.ingested:
            return
        schema = _SCHEMAS[self.table]
        day = _DAY_COLUMN[self.table]
        query = (
            f"SELECT {', '.join(schema.names)}, strftime({day}, '%Y-%m-%d') AS day"
            " FROM accepted WHERE kept ORDER BY day, ordinal, type_index"
        )
        writer: pq.ParquetWriter | None = None
        current = None
        try:
            for batch in self.con.sql(query).to_arrow_reader(WRITE_ROWS):
                days = batch.column(len(schema)).to_numpy(zero_copy_only=False)
                starts = [0, *(np.flatnonzero(days[1:] != days[:-1]) + 1).tolist(), len(days)]
                for begin, end in itertools.pairwise(starts):
                    if days[begin] != current:
                        if writer is not None:
                            writer.close()
                        current = days[begin]
                        path = self.directory / f"rows-{current}.parquet"
                        writer = pq.ParquetWriter(path, schema, compression="zstd")
                        outcome.parts.append((path, str(current)))
                    rows = pa.Table.from_batches([batch.slice(begin, end - begin)])
                    writer.write_table(rows.drop_columns(["day"]).cast(schema))
        finally:
            if writer is not None:
                writer.close()
        outcome.parts = [
            (path, f"part-{day_value}-{_file_digest(path)}.parquet")
            for path, day_value in outcome.parts
        ]

    def _write_quarantine(self, outcome: Outcome, quarantine_dir: Path) -> None:
        rows = self.con.execute(
            "SELECT reason, count(*) FROM rejected GROUP BY reason ORDER BY reason"
        ).fetchall()
        outcome.quarantined = {reason: int(count) for reason, count in rows}
        if not rows:
            return
        files = [str(f) for f in parquet_files(quarantine_dir)]
        known = (
            'SELECT DISTINCT sha256("table" || chr(10) || raw) AS key FROM read_parquet($files)'
            if files
            else "SELECT ''::VARCHAR AS key WHERE false"
        )
        self.con.execute(
            'CREATE TABLE new_quarantine AS SELECT "table", source_file, line, reason,'
            " detail, raw, ordinal FROM rejected"
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
