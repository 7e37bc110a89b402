"""Log files read in bounded batches, so no reader holds a whole file.

JSON Lines come as blocks of lines for the fast path; every other format (and UBI) as batches of
SourceRecords for the exact rules.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from eval_pipelines.core.logs.line_blocks import LineBlock, iter_line_blocks
from eval_pipelines.core.logs.quarantine import RowRejected
from eval_pipelines.core.logs.readers import (
    LogParseError,
    SourceRecord,
    csv_columns,
    decode_csv_cell,
    jsonl_record,
    python_timestamps,
    read_text,
    resolve_format,
)
from eval_pipelines.core.logs.ubi import DEFAULT_OPTIONS, ReadOptions, map_ubi_event, map_ubi_query

RECORD_BATCH = 20_000


@dataclass(frozen=True)
class RecordBatch:
    """Records for the exact rules; offsets (line -> byte offset) when the source is JSON Lines."""

    records: list[SourceRecord]
    offsets: dict[int, int] | None = None


def iter_batches(
    file: Path, table: str, fmt: str, options: ReadOptions | None = None
) -> Iterator[LineBlock | RecordBatch]:
    """The file's content in file order: LineBlocks (plain JSON Lines) or RecordBatches."""
    concrete = resolve_format(file, fmt)
    if concrete == "jsonl":
        yield from iter_line_blocks(file)
    elif concrete == "ubi":
        mapper = map_ubi_query if table == "executions" else map_ubi_event
        chosen = options or DEFAULT_OPTIONS
        for block in iter_line_blocks(file):
            batch = line_records(file, block.lines)
            mapped = [r if r.problem is not None else mapper(r, chosen) for r in batch.records]
            yield RecordBatch(mapped, batch.offsets)
    elif concrete == "csv":
        yield from _csv_batches(file)
    else:
        yield from _parquet_batches(file)


def read_records(
    file: Path, table: str, fmt: str = "auto", options: ReadOptions | None = None
) -> list[SourceRecord]:
    """Every record of one file at once (for tests and tools); the ingest streams iter_batches."""
    records: list[SourceRecord] = []
    for batch in iter_batches(file, table, fmt, options):
        if isinstance(batch, LineBlock):
            batch = line_records(file, batch.lines)
        records.extend(batch.records)
    return records


def line_records(file: Path, lines: pa.Table) -> RecordBatch:
    """JSON lines (columns line, line_no, offset) as SourceRecords; blank lines are skipped."""
    records = []
    offsets = {}
    for text, number, offset in zip(
        lines.column("line").to_pylist(),
        lines.column("line_no").to_pylist(),
        lines.column("offset").to_pylist(),
        strict=True,
    ):
        record = jsonl_record(file, number, text[:-1] if text.endswith("\n") else text)
        if record is not None:
            records.append(record)
            offsets[number] = offset
    return RecordBatch(records, offsets)


def _csv_batches(file: Path) -> Iterator[RecordBatch]:
    name = str(file)
    try:
        handle = file.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise LogParseError(file, None, f"cannot read the file ({exc.strerror or exc})") from exc
    with handle:
        reader = csv.reader(handle, strict=True)
        try:
            columns = csv_columns(file, next(reader, None))
            if columns is None:
                return
            batch: list[SourceRecord] = []
            start = reader.line_num + 1
            for cells in reader:
                line, start = start, reader.line_num + 1
                if not cells:
                    continue
                if len(cells) != len(columns):
                    raise LogParseError(
                        file, line, f"{len(cells)} cells, but the header has {len(columns)} columns"
                    )
                batch.append(_csv_record(name, line, dict(zip(columns, cells, strict=True))))
                if len(batch) >= RECORD_BATCH:
                    yield RecordBatch(batch)
                    batch = []
            if batch:
                yield RecordBatch(batch)
        except csv.Error as exc:
            raise LogParseError(file, reader.line_num or 1, f"malformed CSV ({exc})") from exc
        except UnicodeDecodeError:
            read_text(file)  # raises the LogParseError naming the line and byte
            raise


def _csv_record(name: str, line: int, raw: dict[str, str]) -> SourceRecord:
    fields: dict[str, object] = {}
    problem = None
    for column, cell in raw.items():
        try:
            fields[column] = decode_csv_cell(column, cell)
        except RowRejected as rejected:
            problem = problem or rejected
            fields[column] = cell
    return SourceRecord(name, line, raw, fields, {}, problem)


def _parquet_batches(file: Path) -> Iterator[RecordBatch]:
    name = str(file)
    try:
        parquet = pq.ParquetFile(file)
        first = 1
        for batch in parquet.iter_batches(batch_size=RECORD_BATCH):
            table = pa.Table.from_batches([batch])
            problems: dict[int, RowRejected] = {}
            for index, column_field in enumerate(table.schema):
                if pa.types.is_timestamp(column_field.type):
                    table = table.set_column(
                        index,
                        column_field.name,
                        python_timestamps(table.column(index), column_field.name, problems),
                    )
            rows = table.to_pylist()
            yield RecordBatch(
                [
                    SourceRecord(name, number, row, row, {}, problems.get(number - first))
                    for number, row in enumerate(rows, start=first)
                ]
            )
            first += len(rows)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise LogParseError(file, None, f"not a readable Parquet file ({exc})") from exc


__all__ = ["RecordBatch", "iter_batches", "line_records", "read_records"]
