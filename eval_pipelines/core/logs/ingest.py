"""Ingest log files into the normalized executions / interactions tables, quarantining bad rows.

Files are read in bounded batches (sources.py) into a staging database (staging.py): plain JSON lines
through the contract's rules in SQL (fast_rows.py), everything else through the same rules in Python
(exact_rows.py). Memory does not grow with the input; DuckDB spills what does not fit.
All or nothing: a file that cannot be parsed, or whose every row breaks the contract because it looks
like another format, stops the call before anything is stored. Then, under an exclusive lock on the
logs directory (concurrent ingests behave as if run one after the other), the checks across rows:
- an interaction's execution must be stored and agree with it (contract.complete_interaction);
- a row whose id is stored with the same normalized content, or that repeats an earlier row of the
  input exactly, is `already_present`; a different row under an id stored earlier is quarantined
  (`conflicting_duplicate_id`), one under an id seen earlier in the input too (`duplicate_*_id`,
  the first one wins);
- a quarantined row stored earlier for the same table with the same raw content is not stored again.
New rows are stored as Parquet parts, one per day (of created_at / timestamp, UTC), named
part-<day>-<content digest>.parquet, so scans of a period read only its days.
Counts: `rows_read` and `quarantined` count source records (`rows_read` includes records that are no
row of the table, such as UBI `on_search` events, counted under `skipped`); `ingested` and
`already_present` count output rows (an interaction record with several types yields one per type).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.gc_pause import gc_paused
from eval_pipelines.core.logs.exact_rows import ExactBatch, apply_rules
from eval_pipelines.core.logs.format_hint import refuse_misread_file
from eval_pipelines.core.logs.line_blocks import LineBlock
from eval_pipelines.core.logs.parts import local_parts
from eval_pipelines.core.logs.readers import (
    FORMATS,
    LogParseError,
    ReaderTally,
    resolve_format,
)
from eval_pipelines.core.logs.sources import RecordBatch, iter_batches, line_records
from eval_pipelines.core.logs.staging import Outcome, Staging
from eval_pipelines.core.logs.ubi import ReadOptions
from eval_pipelines.core.paths import DataPath, DataPaths, validate_id
from eval_pipelines.core.progress import ProgressOutput
from eval_pipelines.core.storage import atomic_path, directory_lock

__all__ = ["LOG_TABLES", "IngestReport", "LogParseError", "LogTable", "ingest_files"]

LogTable = Literal["executions", "interactions"]
LOG_TABLES: tuple[str, ...] = ("executions", "interactions")
# Generous: a waiting ingest should outwait a large one, not fail beside it.
INGEST_LOCK_TIMEOUT_S = 3600.0
_HINT_SAMPLE = 1000


@dataclass
class IngestReport:
    """What one ingest call did, for the CLI and for asset metadata."""

    table: str
    files: list[str]
    rows_read: int = 0
    ingested: int = 0
    already_present: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    written: list[DataPath] = field(default_factory=list)
    quarantine_already_present: int = 0
    reading: ReaderTally = field(default_factory=ReaderTally)

    def summary_lines(self) -> list[str]:
        total = sum(self.quarantined.values())
        reasons = ", ".join(f"{reason}: {count}" for reason, count in self.quarantined.items())
        lines = [
            f"{self.table}: read {self.rows_read}, ingested {self.ingested},"
            f" already present {self.already_present}, quarantined {total}"
            + (f" ({reasons})" if reasons else "")
        ]
        lines.extend(self.reading.summary_lines())
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
            **self.reading.to_dict(),
            "written": [str(path) for path in self.written],
        }


@dataclass
class _FileTally:
    """One file's records and row-local rejections, for the format hint."""

    records: int = 0
    drafts: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    raws: list[Any] = field(default_factory=list)

    def add(self, batch: ExactBatch, drafts: int) -> None:
        self.records += batch.records
        self.drafts += drafts
        for reason, count in batch.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count
        self.raws.extend(batch.rejected_raws[: _HINT_SAMPLE - len(self.raws)])


def ingest_files(
    paths: DataPaths,
    table: LogTable,
    files: Sequence[Path],
    fmt: str = "auto",
    default_retriever_id: str | None = None,
    options: ReadOptions | None = None,
    progress: ProgressOutput | Callable[[str], None] | None = None,
) -> IngestReport:
    """Stage every file (all-or-nothing on parse errors), then store new rows and new quarantine rows.

    progress: records read, and the share of the input's bytes read (the record count is unknown
    until the end), while the files are staged."""
    if table not in LOG_TABLES:
        raise InvalidInputError(f"table: {table!r} is not one of {', '.join(LOG_TABLES)}")
    if fmt not in FORMATS:
        raise InvalidInputError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if default_retriever_id is not None:
        validate_id(default_retriever_id, "default retriever_id")
    sources = [Path(f) for f in files]
    for source in sources:
        resolve_format(source, fmt)
    report = IngestReport(table=table, files=[str(s) for s in sources])
    # Outside the data directory (always local, even for a root on object storage): a call that
    # fails leaves no trace there.
    directory = Path(tempfile.mkdtemp(prefix="eval-pipelines-ingest-"))
    try:
        with gc_paused():
            staging = Staging(directory, table)
            try:
                _stage_files(staging, report, sources, fmt, default_retriever_id, options, progress)
                if report.rows_read == 0:
                    return report
                with directory_lock(paths.logs_dir, timeout_s=INGEST_LOCK_TIMEOUT_S):
                    outcome = staging.judge(
                        local_parts(paths, table),
                        local_parts(paths, "executions"),
                        local_parts(paths, "quarantine"),
                    )
                    _store(paths, table, outcome, report)
            finally:
                staging.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return report


def _stage_files(
    staging: Staging,
    report: IngestReport,
    sources: list[Path],
    fmt: str,
    default_retriever_id: str | None,
    options: ReadOptions | None,
    progress: ProgressOutput | Callable[[str], None] | None,
) -> None:
    sizes = [_size(source) for source in sources]
    output = ProgressOutput.of(progress)
    with output.track(f"ingest {staging.table}", "records", None, sum(sizes)) as tracker:
        for index, source in enumerate(sources):
            start = sum(sizes[:index])
            for count, position in _stage_file(
                staging, report, index, source, fmt, default_retriever_id, options
            ):
                tracker.advance(count, bytes_done=None if position is None else start + position)
            tracker.advance(0, bytes_done=start + sizes[index])
        tracker.advance(0, detail="checking across rows and storing next")


def _stage_file(
    staging: Staging,
    report: IngestReport,
    index: int,
    source: Path,
    fmt: str,
    default_retriever_id: str | None,
    options: ReadOptions | None,
) -> Iterator[tuple[int, int | None]]:
    """Stage one file batch by batch, yielding each batch's records and the bytes read so far
    when the format tells (JSON Lines), for progress."""
    tally = _FileTally()
    for batch in iter_batches(source, staging.table, fmt, options):
        fast = 0
        position = _position(batch)
        if isinstance(batch, LineBlock):
            fast, slow_lines = staging.fast_rows(batch, default_retriever_id)
            batch = line_records(source, slow_lines)
        exact = apply_rules(
            staging.table, index, batch.records, default_retriever_id, batch.offsets
        )
        staging.add_batch(exact, index, str(source), with_fast=fast > 0)
        tally.add(exact, fast + len(exact.drafts))
        before = report.rows_read
        _count(report, exact, fast)
        yield report.rows_read - before, position
    if tally.records and not tally.drafts:
        refuse_misread_file(
            str(source), tally.records, tally.reasons, tally.raws, staging.table, fmt
        )


def _size(source: Path) -> int:
    """0 for a file that cannot be read: the reader then fails it naming the file."""
    try:
        return source.stat().st_size
    except OSError:
        return 0


def _position(batch: LineBlock | RecordBatch) -> int | None:
    """Bytes of the file read once this batch is: a block's end, or its last line's start."""
    if isinstance(batch, LineBlock):
        if batch.num_rows == 0:
            return None
        last = batch.lines.slice(batch.num_rows - 1)
        text = last.column("line")[0].as_py()
        return int(last.column("offset")[0].as_py()) + len(text.encode("utf-8"))
    if batch.offsets:
        return max(batch.offsets.values())
    return None


def _count(report: IngestReport, exact: ExactBatch, fast: int) -> None:
    report.rows_read += fast + exact.records + sum(exact.skipped.values())
    for name, count in exact.skipped.items():
        report.reading.skipped[name] = report.reading.skipped.get(name, 0) + count
    for name, count in exact.remarks.items():
        report.reading.remarks[name] = report.reading.remarks.get(name, 0) + count


def _store(paths: DataPaths, table: str, outcome: Outcome, report: IngestReport) -> None:
    """Move the staged parts into the log tables (call under the logs lock), each whole: renamed into
    place on a file system, one object uploaded on object storage."""
    report.ingested = outcome.ingested
    report.already_present = outcome.already_present
    report.quarantined = outcome.quarantined
    report.quarantine_already_present = outcome.quarantine_already_present
    target = paths.log_table_dir(table)
    moves = [(part, target / name) for part, name in outcome.parts]
    if outcome.quarantine_part is not None:
        quarantine = paths.log_table_dir("quarantine") / outcome.quarantine_name
        moves.append((outcome.quarantine_part, quarantine))
    for part, destination in moves:
        with atomic_path(destination) as landing:
            shutil.move(part, landing)
        report.written.append(destination)
