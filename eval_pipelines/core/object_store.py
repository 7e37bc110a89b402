"""What a data root on object storage (S3, or an S3-compatible store at AWS_ENDPOINT_URL) needs that
a file system gives for free: whole-object uploads instead of renames, leases instead of flock, and
DuckDB reading the root through fsspec (DuckDB's own httpfs is not installable from a registry).

A lease is an object created only if absent (a conditional PUT, If-None-Match: *), renewed by its
holder while held and deleted on release; one left by a dead holder expires after its time to live.
"""

from __future__ import annotations

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


def _read_holder(target: DataPath) -> LeaseHolder | None:
    try:
        # One GET: a renewal between a size check and the read would fail a read_bytes().
        body: dict[str, Any] = json.loads(target.fs.cat_file(target.path, max_concurrency=1))
        return LeaseHolder(
            str(body["host"]),
            int(body["pid"]),
            float(body["expires_at"]),
            str(body.get("process") or ""),
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):  # a lease nobody can read is treated as expired
        return LeaseHolder("?", 0, 0.0)


def lease_holder(target: DataPath) -> LeaseHolder | None:
    """The live holder of a lease, or None when it is free or expired."""
    holder = _read_holder(target)
    return holder if holder is not None and not holder.ended else None


def _body(ttl_s: float) -> bytes:
    holder = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "expires_at": time.time() + ttl_s,
        "process": this_process(),
    }
    return json.dumps(holder).encode()


def _try_create(target: DataPath, ttl_s: float) -> bool:
    try:
        with target.fs.open(target.path, "xb") as sink:
            sink.write(_body(ttl_s))
    except FileExistsError:
        return False
    return True


def acquire_within(target: DataPath, wait_s: float, ttl_s: float, poll_s: float = 0.05) -> bool:
    """Create the lease object, waiting at most wait_s; an expired lease is removed and retried."""
    deadline = time.monotonic() + wait_s
    while True:
        if _try_create(target, ttl_s):
            return True
        holder = _read_holder(target)
        if holder is not None and holder.ended:
            target.fs.rm_file(target.path)  # its holder died: expired leases are free
            continue
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


@contextmanager
def lease(target: DataPath, wait_s: float, ttl_s: float = LEASE_TTL_S) -> Iterator[bool]:
    """Hold the lease for the block (yields False, holding nothing, if it was not free in time).
    A thread renews it every ttl/3 until the block ends."""
    if not acquire_within(target, wait_s, ttl_s):
        yield False
        return
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl_s / _RENEW_FRACTION):
            target.fs.pipe_file(target.path, _body(ttl_s))

    renewer = threading.Thread(target=renew, name=f"lease {target.name}", daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        stop.set()
        renewer.join()
        target.fs.rm_file(target.path)
