"""What a data root on object storage (S3, or an S3-compatible store at AWS_ENDPOINT_URL) needs that
a file system gives for free: whole-object uploads instead of renames, leases instead of flock, and
DuckDB reading the root through fsspec (DuckDB's own httpfs is not installable from a registry).

A lease is an object created only if absent (a conditional PUT, If-None-Match: *), renewed by its
holder while held and deleted on release; one left by a dead holder expires after its time to live
and is taken over by a PUT conditional on its ETag (If-Match), so two waiters never both get it.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPath, is_remote
from eval_pipelines.core.processes import process_ended, this_process

LEASE_TTL_S = 60.0
_RENEW_FRACTION = 3


def upload_file(local: Path, target: DataPath) -> None:
    """One object, whole or not at all: S3 shows a PUT (or a completed multipart upload) only once
    it is complete, so readers never see part of it."""
    target.fs.put_file(str(local), target.path)


def check_reachable(root: DataPath, source: str) -> None:
    """Fail before any work when the bucket is missing or the store does not answer."""
    if not is_remote(root):
        return
    bucket = root.path.split("/", 1)[0]
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or "AWS"
    try:
        found = root.fs.exists(bucket)
    except Exception as exc:  # botocore raises many kinds; each means the same to the user
        raise InvalidInputError(
            f"{source}: {root} cannot be reached at {endpoint}: {type(exc).__name__}: {exc}"
        ) from exc
    if not found:
        raise InvalidInputError(f"{source}: bucket {bucket!r} does not exist at {endpoint}")


def connect_duckdb(root: DataPath, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that reads the data root, wherever it is."""
    connection = duckdb.connect(database)
    if is_remote(root):
        connection.register_filesystem(root.fs)
    return connection


@dataclass(frozen=True)
class LeaseHolder:
    host: str
    pid: int
    expires_at: float
    process: str = ""  # this_process() of the holder: host/pid/start ticks

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"

    @property
    def ended(self) -> bool:
        """Expired, or held by a process of this host that is certainly gone (killed, crashed):
        a file system's lock is released when its holder dies, so the lease is too, not a time to
        live later."""
        return self.expires_at <= time.time() or bool(self.process and process_ended(self.process))


def _parse_holder(raw: bytes) -> LeaseHolder:
    try:
        body: dict[str, Any] = json.loads(raw)
        return LeaseHolder(
            str(body["host"]),
            int(body["pid"]),
            float(body["expires_at"]),
            str(body.get("process") or ""),
        )
    except (ValueError, KeyError, TypeError):  # a lease nobody can read is treated as expired
        return LeaseHolder("?", 0, 0.0)


def _read_holder(target: DataPath) -> tuple[LeaseHolder, str] | None:
    """The holder and the ETag it was read under, or None when there is no lease. The ETag comes
    from a HEAD before the GET: if the object changed in between, a write conditional on it fails."""
    try:
        etag = str(target.fs.info(target.path)["ETag"])
        # One GET: a renewal between a size check and the read would fail a read_bytes().
        return _parse_holder(target.fs.cat_file(target.path, max_concurrency=1)), etag
    except FileNotFoundError:
        return None


def lease_holder(target: DataPath) -> LeaseHolder | None:
    """The live holder of a lease, or None when it is free or expired."""
    seen = _read_holder(target)
    return seen[0] if seen is not None and not seen[0].ended else None


def _body(ttl_s: float) -> bytes:
    holder = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "expires_at": time.time() + ttl_s,
        "process": this_process(),
    }
    return json.dumps(holder).encode()


def _put(target: DataPath, ttl_s: float, **condition: str) -> str | None:
    """Write the lease under an S3 condition (If-None-Match: * as mode="create", or IfMatch=ETag):
    the new ETag, or None when the condition did not hold (someone else wrote first)."""
    try:
        written = target.fs.pipe_file(target.path, _body(ttl_s), **condition)
    except FileExistsError:
        return None
    except OSError as exc:
        if exc.errno == errno.EINVAL and "pre-condition" in str(exc):
            return None
        raise
    return str(written["ETag"])


def acquire_within(
    target: DataPath, wait_s: float, ttl_s: float, poll_s: float = 0.05
) -> str | None:
    """Create the lease object, waiting at most wait_s; its ETag once held. A lease whose holder
    ended is taken over by a write conditional on the ETag it was read under, so of two waiters
    that find it ended only one gets it."""
    deadline = time.monotonic() + wait_s
    while True:
        etag = _put(target, ttl_s, mode="create")
        if etag is not None:
            return etag
        seen = _read_holder(target)
        if seen is not None and seen[0].ended:
            etag = _put(target, ttl_s, IfMatch=seen[1])
            if etag is not None:
                return etag
            continue
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll_s)


@contextmanager
def lease(target: DataPath, wait_s: float, ttl_s: float = LEASE_TTL_S) -> Iterator[bool]:
    """Hold the lease for the block (yields False, holding nothing, if it was not free in time).
    A thread renews it every ttl/3 until the block ends, each renewal conditional on the last one,
    and release deletes it only if it is still this holder's."""
    etag = acquire_within(target, wait_s, ttl_s)
    if etag is None:
        yield False
        return
    held = [etag]
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl_s / _RENEW_FRACTION):
            renewed = _put(target, ttl_s, IfMatch=held[0])
            if renewed is None:  # taken over after this holder stalled past its lease
                held.clear()
                return
            held[0] = renewed

    renewer = threading.Thread(target=renew, name=f"lease {target.name}", daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        stop.set()
        renewer.join()
        if held:
            _delete_if_unchanged(target, held[0])


def _delete_if_unchanged(target: DataPath, etag: str) -> None:
    bucket, key, _ = target.fs.split_path(target.path)
    try:
        target.fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=etag)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if not (exc.errno == errno.EINVAL and "pre-condition" in str(exc)):
            raise
    target.fs.invalidate_cache(target.path)
