"""Atomic Parquet and text writes: readers never see a half-written file (a rename on a file
system, one whole-object PUT on object storage), and short critical sections under a lock.

Files and directories are created with the modes a plain open() and mkdir() ask for (0666 and
0777), so the kernel applies the process umask to them exactly as it does to theirs: with umask
022 another account (the Dagster service user, an analyst) can read the results. The umask is
never read or changed here: os.umask() can only read it by setting it, which is process-wide and
would race with other threads creating files.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from eval_pipelines.core import object_store
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPath, is_remote

_FILE_MODE = 0o666
_DIRECTORY_MODE = 0o777
_NAME_ATTEMPTS = 100
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


def _create_unique(
    directory: Path, prefix: str, suffix: str, create: Callable[[str], None]
) -> Path:
    """A new entry named prefix + random + suffix in directory, made by create (which must fail
    with FileExistsError if the name is taken)."""
    for _ in range(_NAME_ATTEMPTS):
        candidate = directory / f"{prefix}{secrets.token_hex(8)}{suffix}"
        try:
            create(str(candidate))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{directory}: no free temporary name after {_NAME_ATTEMPTS} tries")


def new_temporary_file(directory: Path, prefix: str, suffix: str = ".tmp") -> Path:
    """An empty file that did not exist before, mode 0666 minus the umask (as open() makes it)."""
    return _create_unique(
        directory, prefix, suffix, lambda name: os.close(os.open(name, _NEW_FILE_FLAGS, _FILE_MODE))
    )


def new_staging_directory(directory: Path, prefix: str, suffix: str = "") -> Path:
    """An empty directory that did not exist before, mode 0777 minus the umask (as mkdir makes it);
    unlike tempfile.mkdtemp (always 0700), it stays readable by others once renamed into place."""
    directory.mkdir(parents=True, exist_ok=True)
    return _create_unique(directory, prefix, suffix, lambda name: os.mkdir(name, _DIRECTORY_MODE))


@contextmanager
def atomic_path(path: DataPath) -> Iterator[Path]:
    """Yield a temporary sibling of path; rename it over path only if the block succeeds.
    On object storage the temporary file is local and is uploaded as one object instead.

    Renaming over a device or a link to one (say /dev/stdout, as root) would replace it, so only a
    regular file or nothing may stand at path. The file ends with the umask's mode, not mkstemp's
    0600 (see the module docstring).
    """
    if is_remote(path):
        with tempfile.TemporaryDirectory(prefix="eval-pipelines-upload-") as staging:
            local = Path(staging) / path.name
            local.touch()
            yield local
            object_store.upload_file(local, path)
        return
    if not path.is_file() and (path.exists() or path.is_symlink()):
        raise InvalidInputError(f"{path}: not a regular file; refusing to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_temporary_file(path.parent, prefix=f".{path.name}.")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def exclusive_lock_within(handle: int, timeout_s: float, poll_s: float = 0.01) -> bool:
    """flock(LOCK_EX) on an open file or directory, waiting at most timeout_s; True once held."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)


LEASE_NAME = ".lock"


@contextmanager
def directory_lock(directory: DataPath, timeout_s: float = 60.0) -> Iterator[None]:
    """Exclusive among processes for a short critical section, held on the directory itself (no
    lock file left behind); the kernel releases it if the holder dies. On object storage it is a
    lease object in the directory, expired if its holder dies."""
    if is_remote(directory):
        with object_store.lease(directory / LEASE_NAME, timeout_s) as held:
            if not held:
                raise TimeoutError(
                    f"{directory}: another process held its lock for {timeout_s:g} s"
                )
            yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    handle = os.open(directory, os.O_RDONLY)
    try:
        if not exclusive_lock_within(handle, timeout_s):
            raise TimeoutError(f"{directory}: another process held its lock for {timeout_s:g} s")
        yield
    finally:
        os.close(handle)


def read_whole(path: DataPath, limit: int | None = None) -> bytes:
    """The file (or its first `limit` bytes) in one read. On object storage that is one GET: a HEAD
    then a ranged GET fails with FileExpired when a writer replaces the object in between."""
    if is_remote(path):
        return path.fs.cat_file(path.path, end=limit, max_concurrency=1)
    with path.open("rb") as handle:
        return handle.read() if limit is None else handle.read(limit)


def remove_tree(directory: DataPath) -> None:
    """The directory and everything under it, gone, and no error if it was not there (on object
    storage: every object under its prefix; S3 has no folders, so an unwritten one is simply absent)."""
    if not is_remote(directory):
        shutil.rmtree(directory, ignore_errors=True)
        return
    with contextlib.suppress(FileNotFoundError):
        directory.fs.rm(directory.path, recursive=True)


def write_parquet_atomic(table: pa.Table, path: DataPath) -> DataPath:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def write_text_atomic(text: str, path: DataPath) -> DataPath:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def content_digest(table: pa.Table, length: int = 16) -> str:
    """A stable name for a table's content, so identical writes land on identical file names."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()[:length]


def parquet_files(directory: DataPath) -> list[DataPath]:
    """Finished Parquet parts of a table directory, in a stable order (temporary files excluded)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.parquet") if not p.name.startswith("."))


def read_parquet_dir(directory: DataPath, columns: list[str] | None = None) -> pa.Table | None:
    files = parquet_files(directory)
    if not files:
        return None
    return pa.concat_tables(pq.read_table(str(f), columns=columns) for f in files)
