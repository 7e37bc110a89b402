"""The contract's row rules in Python (contract.py), for the records the fast path does not take.

Each record becomes a draft row (the staging table's columns) or a quarantine row with the rule's
own reason and sentence. Rows are plain tuples, turned into Arrow once per batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from eval_pipelines.core.logs.contract import normalize_execution, normalize_interaction
from eval_pipelines.core.logs.quarantine import RowRejected, raw_json, utf8_safe
from eval_pipelines.core.logs.readers import SourceRecord
from eval_pipelines.core.logs.tables import EXECUTIONS_SCHEMA, UTC_MICROS

_SOURCE_FIELDS = [
    pa.field("ordinal", pa.int64()),
    pa.field("source_file", pa.string()),
    pa.field("line", pa.int64()),
    pa.field("raw_offset", pa.int64()),
    pa.field("raw", pa.string()),
]
DRAFT_SCHEMAS = {
    "executions": pa.schema(_SOURCE_FIELDS + [f.with_nullable(True) for f in EXECUTIONS_SCHEMA]),
    "interactions": pa.schema(
        [
            *_SOURCE_FIELDS,
            pa.field("interaction_id", pa.string()),
            pa.field("execution_id", pa.string()),
            pa.field("document_id", pa.string()),
            pa.field("interaction_types", pa.list_(pa.string())),
            pa.field("position", pa.int32()),
            pa.field("session_id", pa.string()),
            pa.field("user_id", pa.string()),
            pa.field("timestamp", UTC_MICROS),
            pa.field("metadata", pa.string()),
            pa.field("note", pa.string()),
        ]
    ),
}
REJECTED_SCHEMA = pa.schema(
    [
        pa.field("ordinal", pa.int64()),
        pa.field("table", pa.string()),
        pa.field("source_file", pa.string()),
        pa.field("line", pa.int64()),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("raw", pa.string()),
    ]
)


def ordinal(file_index: int, line: int) -> int:
    """A record's place in the whole input: files in the order given, then lines."""
    return (file_index << 40) | line


@dataclass
class ExactBatch:
    """What the Python rules made of a batch of records."""

    drafts: list[tuple[Any, ...]] = field(default_factory=list)
    rejected: list[tuple[Any, ...]] = field(default_factory=list)
    rejected_raws: list[Any] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    remarks: dict[str, int] = field(default_factory=dict)
    records: int = 0

    def draft_table(self, table: str) -> pa.Table:
        return _to_table(self.drafts, DRAFT_SCHEMAS[table])

    def rejected_table(self) -> pa.Table:
        return _to_table(self.rejected, REJECTED_SCHEMA)


def apply_rules(
    table: str,
    file_index: int,
    records: Iterable[SourceRecord],
    default_retriever_id: str | None,
    offsets: dict[int, int] | None = None,
) -> ExactBatch:
    """Each record through the contract's row rules; offsets (line -> byte offset) are kept for drafts."""
    batch = ExactBatch()
    for record in records:
        skipped = getattr(record, "skipped", None)
        if skipped:
            batch.skipped[skipped] = batch.skipped.get(skipped, 0) + 1
            continue
        batch.records += 1
        if record.remark:
            batch.remarks[record.remark] = batch.remarks.get(record.remark, 0) + 1
        place = ordinal(file_index, record.line)
        try:
            if record.problem is not None:
                raise record.problem
            if table == "executions":
                row: tuple[Any, ...] = normalize_execution(
                    record.fields, record.labels, default_retriever_id
                )
            else:
                draft = normalize_interaction(record.fields, record.labels)
                row = (*draft[:3], list(draft.interaction_types), *draft[4:], record.note)
        except RowRejected as rejected:
            batch.rejected.append(quarantine_row(place, table, record, rejected))
            batch.rejected_raws.append(record.raw)
            batch.reasons[rejected.reason] = batch.reasons.get(rejected.reason, 0) + 1
            continue
        offset = None if offsets is None else offsets.get(record.line)
        batch.drafts.append(
            (place, record.source_file, record.line, offset, raw_json(record.raw), *row)
        )
    return batch


def quarantine_row(
    place: int, table: str, record: SourceRecord, rejected: RowRejected
) -> tuple[Any, ...]:
    return (
        place,
        table,
        utf8_safe(record.source_file),
        record.line,
        rejected.reason,
        utf8_safe(rejected.detail),
        raw_json(record.raw),
    )


def _to_table(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    return pa.table(
        [pa.array(column, type=f.type) for column, f in zip(columns, schema, strict=True)],
        schema=schema,
    )
