"""Records (benchmark and evaluation) and the requests behind them, as atomically written JSON files.

Benchmarks and evaluations share this machinery: a request is stored once accepted, its record is
rewritten whole on every status change, and readers never see a half-written file.
"""

from __future__ import annotations

import json
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths, is_valid_id, validate_id
from eval_pipelines.core.storage import directory_lock, write_parquet_atomic, write_text_atomic

FINAL_STATUSES = frozenset({"completed", "failed"})


def utc_timestamp(moment: datetime | None = None) -> str:
    """ISO 8601 in UTC with a Z, the form every record uses."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def with_record_id(table: pa.Table, column: str, record_id: str) -> pa.Table:
    """Tag every row with its benchmark/evaluation id, so the DuckDB views over all partitions can tell them apart."""
    if column in table.column_names:
        return table
    return table.add_column(0, column, pa.array([record_id] * table.num_rows, pa.string()))


@dataclass(frozen=True)
class RecordStore:
    """`<data>/<kind>/<id>/`: request.json, record.json and the partition's tables, one folder per request."""

    paths: DataPaths
    kind: str  # "benchmarks" or "evaluations"

    @property
    def root(self) -> Path:
        return self.paths.root / self.kind

    def folder(self, record_id: str) -> Path:
        return self.root / validate_id(record_id, "id")

    def _read(self, file: Path) -> dict[str, Any] | None:
        """The file's JSON object, None when absent; anything else is named, not a bare decode error."""
        try:
            value = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"{file}: not UTF-8 text ({exc.reason})") from None
        except json.JSONDecodeError as exc:
            raise InvalidInputError(
                f"{file}: not valid JSON ({exc.msg} at line {exc.lineno})"
            ) from None
        if not isinstance(value, dict):
            raise InvalidInputError(f"{file}: expected a JSON object, got {type(value).__name__}")
        return value

    def _write(self, value: dict[str, Any], file: Path) -> None:
        write_text_atomic(json.dumps(value, indent=2, sort_keys=False) + "\n", file)

    def accept(self, record_id: str, record: dict[str, Any], request: dict[str, Any]) -> None:
        """The pending record first, then the request: the request sensor keys off request.json."""
        self.save(record_id, record)
        self.save_request(record_id, request)

    def save_request(self, record_id: str, request: dict[str, Any]) -> None:
        self._write(request, self.folder(record_id) / "request.json")

    def request(self, record_id: str) -> dict[str, Any] | None:
        return self._read(self.folder(record_id) / "request.json")

    def stored_request(self, record_id: str) -> dict[str, Any]:
        """The request a run works from; its absence is a failure of the run, not of user input."""
        request = self.request(record_id)
        if request is None:
            raise FileNotFoundError(f"{self.kind}/{record_id} has no stored request")
        return request

    def save(
        self, record_id: str, record: dict[str, Any], run_id: str | None = None
    ) -> dict[str, Any]:
        """The record and, beside it, which Dagster run produced its current state; returns the
        record that stands after the call.

        Several writers sync one record at once (the record sensor, a user's `get`, an in-process
        run): one that looked at the run before it ended must not put a non-final state back over
        the final state of that same run.
        """
        folder = self.folder(record_id)
        with directory_lock(folder):
            current = self.entry(record_id)
            if (
                current is not None
                and run_id is not None
                and current.get("run_id") == run_id
                and current["record"]["status"] in FINAL_STATUSES
                and record["status"] not in FINAL_STATUSES
            ):
                return current["record"]
            self._write({"record": record, "run_id": run_id}, folder / "record.json")
            return record

    def entry(self, record_id: str) -> dict[str, Any] | None:
        """{"record": {...}, "run_id": ...} as saved, None when absent; a file of another shape is named."""
        file = self.folder(record_id) / "record.json"
        entry = self._read(file)
        if entry is not None and not (
            isinstance(entry.get("record"), dict) and isinstance(entry["record"].get("status"), str)
        ):
            raise InvalidInputError(f"{file}: expected an object with a record and its status")
        return entry

    def get(self, record_id: str) -> dict[str, Any] | None:
        entry = self.entry(record_id)
        return entry["record"] if entry else None

    def _request_folders(self) -> list[tuple[int, str]]:
        if not self.root.is_dir():
            return []
        found = []
        for folder in self.root.iterdir():
            try:
                request = (folder / "request.json").stat()
            except OSError:  # no request, or a folder removed while listing
                continue
            if stat.S_ISREG(request.st_mode):
                found.append((request.st_mtime_ns, folder.name))
        return sorted(found)

    def ids(self) -> list[str]:
        """Ids with a stored request, oldest first (by the request's acceptance time, then id)."""
        return [name for _, name in self._request_folders() if is_valid_id(name)]

    def unusable_folders(self) -> list[str]:
        """Folders holding a request.json under a name that is no valid id (dropped there by hand)."""
        return [name for _, name in self._request_folders() if not is_valid_id(name)]

    def write_table(self, record_id: str, name: str, table: pa.Table) -> Path:
        """One of the partition's Parquet tables, replaced atomically."""
        return write_parquet_atomic(table, self.folder(record_id) / f"{name}.parquet")

    def read_table(self, record_id: str, name: str) -> pa.Table:
        return pq.read_table(self.folder(record_id) / f"{name}.parquet")

    def write_json(self, record_id: str, name: str, value: dict[str, Any]) -> Path:
        return write_text_atomic(
            json.dumps(value, indent=2) + "\n", self.folder(record_id) / f"{name}.json"
        )

    def read_json(self, record_id: str, name: str) -> dict[str, Any]:
        return json.loads((self.folder(record_id) / f"{name}.json").read_text(encoding="utf-8"))

    def records(self) -> Iterator[dict[str, Any]]:
        for record_id in self.ids():
            record = self.get(record_id)
            if record is not None:
                yield record
