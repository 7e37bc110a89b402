"""Atomic Parquet and text writes: readers never see a half-written file."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from eval_pipelines.core.errors import InvalidInputError


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of path; rename it over path only if the block succeeds.

    Renaming over a device or a link to one (say /dev/stdout, as root) would replace it, so only a
    regular file or nothing may stand at path.
    """
    if not path.is_file() and (path.exists() or path.is_symlink()):
        raise InvalidInputError(f"{path}: not a regular file; refusing to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def directory_lock(directory: Path, timeout_s: float = 60.0) -> Iterator[None]:
    """Exclusive among processes for a short critical section, held on the directory itself (no
    lock file left behind); the kernel releases it if the holder dies."""
    directory.mkdir(parents=True, exist_ok=True)
    handle = os.open(directory, os.O_RDONLY)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{directory}: another process held its lock for {timeout_s:g} s"
                    ) from None
                time.sleep(0.01)
        yield
    finally:
        os.close(handle)


def write_parquet_atomic(table: pa.Table, path: Path) -> Path:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def write_text_atomic(text: str, path: Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def content_digest(table: pa.Table, length: int = 16) -> str:
    """A stable name for a table's content, so identical writes land on identical file names."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()[:length]


def parquet_files(directory: Path) -> list[Path]:
    """Finished Parquet parts of a table directory, in a stable order (temporary files excluded)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.parquet") if not p.name.startswith("."))


def read_parquet_dir(directory: Path, columns: list[str] | None = None) -> pa.Table | None:
    files = parquet_files(directory)
    if not files:
        return None
    return pa.concat_tables(pq.read_table(f, columns=columns) for f in files)
