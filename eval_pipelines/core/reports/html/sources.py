"""What a report is built from: a completed record and its partition's tables, read as stored.

A report shows a finished decision, so a record that is not completed (or an unknown id) is the
user's error, named with its status; the tables are read, never recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPath, DataPaths, validate_id
from eval_pipelines.core.records import RecordStore, Status
from eval_pipelines.core.table_names import BENCHMARKS, EVALUATIONS

KINDS = (BENCHMARKS, EVALUATIONS)
REPORT_FILE = "report.html"


@dataclass(frozen=True)
class Partition:
    """One completed record, its request and its store (for the partition's tables)."""

    kind: str
    record_id: str
    record: dict[str, Any]
    request: dict[str, Any]
    store: RecordStore
    _tables: dict[str, pa.Table] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @property
    def folder(self) -> DataPath:
        return self.store.folder(self.record_id)

    @property
    def report_path(self) -> DataPath:
        return self.folder / REPORT_FILE

    def table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """Each table read once per report, however many sections use it: on object storage
        every read is a GET of the whole object."""
        if name not in self._tables:
            self._tables[name] = self.store.read_table(self.record_id, name)
        table = self._tables[name]
        return table.select(columns) if columns else table

    def facts(self, name: str) -> dict[str, Any]:
        return self.store.read_facts(self.record_id, name)


def kind_of(paths: DataPaths, record_id: str, field: str = "id") -> str:
    """Which kind holds record_id; an id no kind holds is the user's error."""
    validate_id(record_id, field)
    found = [kind for kind in KINDS if RecordStore(paths, kind).get(record_id) is not None]
    if not found:
        raise InvalidInputError(
            f"{field}: no benchmark or evaluation {record_id!r} in {paths.root}"
        )
    return found[0]


def completed_partition(
    paths: DataPaths, kind: str, record_id: str, field: str = "id"
) -> Partition:
    """The completed record of kind `kind`; absent or not completed raises InvalidInputError."""
    store = RecordStore(paths, kind)
    singular = kind.removesuffix("s")
    record = store.get(validate_id(record_id, field))
    if record is None:
        raise InvalidInputError(f"{field}: no {singular} {record_id!r} in {paths.root}")
    if record["status"] != Status.COMPLETED:
        raise InvalidInputError(
            f"{field}: {singular} {record_id} is {record['status']}, not completed; a report"
            " shows a completed record"
        )
    return Partition(kind, record_id, record, store.request(record_id) or {}, store)


def resolve(
    paths: DataPaths, record_id: str, kind: str | None = None, against: str | None = None
) -> tuple[Partition, Partition | None]:
    """The completed record to report on and its completed baseline evaluation (`against`, for
    an evaluation only); every id that cannot be reported on raises InvalidInputError."""
    partition = completed_partition(paths, kind or kind_of(paths, record_id), record_id)
    if against is None:
        return partition, None
    if partition.kind == BENCHMARKS:
        raise InvalidInputError(
            f"--against: {record_id} is a benchmark; --against names a baseline evaluation for an"
            " evaluation's report"
        )
    if kind_of(paths, against, "--against") == BENCHMARKS:
        raise InvalidInputError(f"--against: {against} is a benchmark; name a completed evaluation")
    return partition, completed_partition(paths, EVALUATIONS, against, "--against")
