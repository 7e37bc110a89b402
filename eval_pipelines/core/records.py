"""Records (benchmark and evaluation) and the requests behind them, as atomically written JSON files.

Benchmarks and evaluations share this machinery: a request is stored once accepted, its record is
rewritten whole on every status change, and readers never see a half-written file. On object storage
each file is one object, written with one PUT and read with one GET, so a reader gets one whole
version of it however often a run rewrites it.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import GenericAlias, UnionType
from typing import Any, get_args, get_origin

import pyarrow as pa

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.json_input import JsonProblem, decode_json
from eval_pipelines.core.partition_tables import PartitionTables
from eval_pipelines.core.paths import (
    ID_RULE,
    DataPath,
    DataPaths,
    is_remote,
    is_valid_id,
    shown,
    validate_id,
)
from eval_pipelines.core.storage import directory_lock, read_whole, write_text_atomic


class Status(StrEnum):
    """Every status a record can show (benchmarks show their stage, evaluations in_progress)."""

    PENDING = "pending"
    BUILDING_SESSIONS = "building_sessions"
    REPLAYING = "replaying"
    COMPUTING_METRICS = "computing_metrics"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


FINAL_STATUSES = frozenset({Status.COMPLETED, Status.FAILED})
REQUEST_FILE = "request.json"
RECORD_FILE = "record.json"


class StoredFileError(InvalidInputError):
    """A stored request.json or record.json that cannot be used: the file and its problem apart, so a
    listing can name the entry (`benchmarks/<id>: record.json: problem`) and `get` the whole path."""

    def __init__(self, file: DataPath, problem: str) -> None:
        self.file = file
        self.problem = problem
        super().__init__(f"{file}: {problem}")


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
    def root(self) -> DataPath:
        return self.paths.root / self.kind

    def folder(self, record_id: str) -> DataPath:
        return self.root / validate_id(record_id, "id")

    @property
    def id_field(self) -> str:
        """The record's own id field: benchmark_id, evaluation_id."""
        return f"{self.kind.removesuffix('s')}_id"

    def _read(self, file: DataPath) -> dict[str, Any] | None:
        """The file's JSON object, None when absent; anything else raises StoredFileError naming it."""
        data = _object_bytes(file) if is_remote(file) else _file_bytes(file)
        if data is None:
            return None
        if not data.strip():
            raise StoredFileError(file, "empty file, expected a JSON object")
        try:
            value = decode_json(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise StoredFileError(file, f"not UTF-8 text ({exc.reason})") from None
        except JsonProblem as exc:
            detail = exc.problem.removeprefix("invalid JSON (").removesuffix(")")
            line = f" at line {exc.line}" if exc.line else ""
            raise StoredFileError(file, f"not valid JSON ({detail}{line})") from None
        if not isinstance(value, dict):
            raise StoredFileError(file, f"expected a JSON object, got {type(value).__name__}")
        return value

    def _write(self, value: dict[str, Any], file: DataPath) -> None:
        write_text_atomic(json.dumps(value, indent=2, sort_keys=False) + "\n", file)

    def accept(self, record_id: str, record: dict[str, Any], request: dict[str, Any]) -> None:
        """The pending record first, then the request: the request sensor keys off request.json."""
        self.save(record_id, record)
        self.save_request(record_id, request)

    def save_request(self, record_id: str, request: dict[str, Any]) -> None:
        self._write(request, self.folder(record_id) / REQUEST_FILE)

    def request(self, record_id: str) -> dict[str, Any] | None:
        return self._read(self.folder(record_id) / REQUEST_FILE)

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

        Several writers touch one record at once (the run's steps, the run-failure sensor, `get`):
        one that looked at the run before it ended must not put a non-final state back over the
        final state of that same run.
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
            self._write({"record": record, "run_id": run_id}, folder / RECORD_FILE)
            return record

    def entry(self, record_id: str) -> dict[str, Any] | None:
        """{"record": {...}, "run_id": ...} as saved, None when absent; a file of another shape, or
        a record of another id than its folder's, raises StoredFileError naming the file."""
        file = self.folder(record_id) / RECORD_FILE
        entry = self._read(file)
        if entry is None:
            return None
        record = entry.get("record")
        if not (isinstance(record, dict) and isinstance(record.get("status"), str)):
            raise StoredFileError(file, "expected an object with a record and its status")
        if self.id_field in record and record[self.id_field] != record_id:
            raise StoredFileError(
                file,
                f"{self.id_field} is {shown(record[self.id_field])}, not its folder's {record_id!r}",
            )
        return entry

    def get(self, record_id: str) -> dict[str, Any] | None:
        entry = self.entry(record_id)
        return entry["record"] if entry else None

    def _scan(self) -> list[_Folder]:
        """Each folder holding a request.json or a record.json, in any form: a directory in a file's
        place is there too, to be reported when it is read."""
        if is_remote(self.root):
            return _scan_objects(self.root)
        if not self.root.is_dir():
            return []
        found = []
        for folder in self.root.iterdir():
            times: list[int | None] = []
            for name in (REQUEST_FILE, RECORD_FILE):
                try:
                    times.append(os.lstat(folder / name).st_mtime_ns)
                except OSError:  # absent, not a folder, or removed while listing
                    times.append(None)
            if times != [None, None]:
                found.append(_Folder(folder.name, *times))
        return found

    def request_ids(self) -> list[str]:
        """Ids with a stored request (what the request sensor runs), oldest request first."""
        return [
            name
            for _, name in sorted(
                (f.request_mtime, f.name)
                for f in self._scan()
                if f.request_mtime is not None and is_valid_id(f.name)
            )
        ]

    def ids(self) -> list[str]:
        """Ids with a record.json, the ones `get` looks up: oldest first (by the request's acceptance
        time, or the record's own when the request is gone, then id)."""
        return _record_ids(self._scan())

    def unusable_folders(self) -> list[str]:
        """Folders holding a request.json under a name that is no valid id (dropped there by hand)."""
        return sorted(
            f.name for f in self._scan() if f.request_mtime is not None and not is_valid_id(f.name)
        )

    def listing(self, fields: Mapping[str, Any] | None = None) -> Listing:
        """Every record `get` finds, oldest first, and one `<kind>/<id>: problem` per entry left out.

        fields: field -> expected type (str, int, list[str], str | None) of what the caller reads from
        each record; a record without them is reported, not listed, so no caller trips over it.
        """
        folders = self._scan()
        problems: list[str] = []
        for folder in sorted(folders, key=lambda f: f.name):
            if not is_valid_id(folder.name):
                problems.append(
                    f"{self.kind}/{shown(folder.name)}: the folder name is not a valid id"
                    f" ({ID_RULE})"
                )
            elif folder.record_mtime is None:
                problems.append(
                    f"{self.kind}/{folder.name}: a {REQUEST_FILE} without a {RECORD_FILE}"
                    " (`get` does not find it either)"
                )
        listed: list[tuple[str, dict[str, Any]]] = []
        for record_id in _record_ids(folders):
            try:
                entry = self.entry(record_id)
            except StoredFileError as exc:
                problems.append(f"{self.kind}/{record_id}: {exc.file.name}: {exc.problem}")
                continue
            if entry is None:
                continue  # removed since the listing
            record = entry["record"]
            wrong = [
                f"{name} {_type_problem(record.get(name, _MISSING), expected)}"
                for name, expected in (fields or {}).items()
                if not _conforms(record.get(name, _MISSING), expected)
            ]
            if wrong:
                problems.append(f"{self.kind}/{record_id}: {RECORD_FILE}: " + "; ".join(wrong))
                continue
            listed.append((record_id, record))
        return Listing(_oldest_first(listed, folders), problems)

    @property
    def tables(self) -> PartitionTables:
        """The partitions' tables, through the filesystem abstraction."""
        return PartitionTables(self.root)

    def write_table(
        self, record_id: str, name: str, table: pa.Table, facts: dict[str, Any] | None = None
    ) -> DataPath:
        return self.tables.write(validate_id(record_id, "id"), name, table, facts)

    def read_table(self, record_id: str, name: str) -> pa.Table:
        return self.tables.read(validate_id(record_id, "id"), name)

    def read_facts(self, record_id: str, name: str) -> dict[str, Any]:
        return self.tables.read_facts(validate_id(record_id, "id"), name)

    def records(self) -> Iterator[dict[str, Any]]:
        """The record of every id, as `get` returns it; raises StoredFileError on a bad one (use
        `listing` to report bad entries and go on)."""
        for record_id in self.ids():
            record = self.get(record_id)
            if record is not None:
                yield record


@dataclass(frozen=True)
class _Folder:
    name: str
    request_mtime: int | None
    record_mtime: int | None


def _file_bytes(file: Path) -> bytes | None:
    """Opened without blocking and checked to be a regular file first, so a directory, a FIFO or a
    device in its place is reported instead of failing with a bare OS error or hanging a reader."""
    try:
        handle = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoredFileError(file, f"cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(handle).st_mode):
        os.close(handle)
        raise StoredFileError(file, "not a regular file")
    with os.fdopen(handle, "rb") as stream:
        try:
            return stream.read()
        except OSError as exc:
            raise StoredFileError(file, f"cannot be read ({exc.strerror})") from None


def _object_bytes(file: DataPath) -> bytes | None:
    """One GET of the whole object: records are only ever PUT whole, so this is one version of it.
    (Not file.read_bytes(): it asks for the size first and then fails with FileExpired when a
    writer replaces the object in between.)"""
    try:
        return read_whole(file)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoredFileError(file, f"cannot be read ({type(exc).__name__}: {exc})") from None


def _scan_objects(root: DataPath) -> list[_Folder]:
    """_scan on object storage: one listing of the keys under root (a few requests per thousand
    keys) instead of two requests per folder."""
    times: dict[str, dict[str, int]] = {}
    prefix = root.path.rstrip("/") + "/"
    for key, info in root.fs.find(root.path, detail=True).items():
        folder, _, name = key.removeprefix(prefix).partition("/")
        if name in (REQUEST_FILE, RECORD_FILE) and info.get("type") == "file":
            modified = info.get("LastModified")
            stamp = int(modified.timestamp() * 1e9) if isinstance(modified, datetime) else 0
            times.setdefault(folder, {})[name] = stamp
    return [
        _Folder(name, found.get(REQUEST_FILE), found.get(RECORD_FILE))
        for name, found in times.items()
    ]


def _accepted_at(folder: _Folder) -> int:
    """When the request was accepted, as its files tell: the request's time, else the record's."""
    found = folder.request_mtime if folder.request_mtime is not None else folder.record_mtime
    return found or 0


def _record_ids(folders: list[_Folder]) -> list[str]:
    return [
        name
        for _, name in sorted(
            (_accepted_at(f), f.name)
            for f in folders
            if f.record_mtime is not None and is_valid_id(f.name)
        )
    ]


def _oldest_first(
    listed: list[tuple[str, dict[str, Any]]], folders: list[_Folder]
) -> list[dict[str, Any]]:
    """Records by acceptance time. S3 (and some shared file systems) keep modification times to the
    second, so within one the record's own created_at (milliseconds, set on acceptance) decides,
    then the id."""
    times = {f.name: _accepted_at(f) for f in folders}

    def key(pair: tuple[str, dict[str, Any]]) -> tuple[int, str, str]:
        record_id, record = pair
        created = record.get("created_at")
        return (times.get(record_id, 0), created if isinstance(created, str) else "", record_id)

    return [record for _, record in sorted(listed, key=key)]


@dataclass(frozen=True)
class Listing:
    """The readable records, and one `<kind>/<id>: problem` for each entry that is not."""

    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


_MISSING = object()


def _conforms(value: Any, expected: Any) -> bool:
    if value is _MISSING:
        return False
    if isinstance(expected, GenericAlias):  # list[str]
        (item,) = get_args(expected)
        return isinstance(value, get_origin(expected)) and all(isinstance(v, item) for v in value)
    if isinstance(value, bool) and expected in (int, float):
        return False
    return isinstance(value, expected)


def _type_problem(value: Any, expected: Any) -> str:
    wanted = str(expected) if isinstance(expected, GenericAlias | UnionType) else expected.__name__
    if value is _MISSING:
        return f"is missing (expected {wanted})"
    return f"is {shown(value)}, expected {wanted}"
