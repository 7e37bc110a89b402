"""One run of a request at a time in this data directory: an exclusive lock held while it runs here.

`benchmark rerun` checks that no run is going before it starts one; two of them at once could both
pass that check. The lock makes the check and the run one step: the process holding it is the one
running the request, and the kernel releases it when that process ends, however it ends. On
object storage the lock is a lease object, renewed while the run goes on and expired once its holder
is gone.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from eval_pipelines.core import object_store
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPath, is_remote
from eval_pipelines.core.storage import exclusive_lock_within

LOCK_FILE = ".run.lock"
# How long to wait for the lock: a sensor probing it holds it for microseconds.
WAIT_S = 2.0


class AlreadyRunning(InvalidInputError):
    """Another process holds the request's run lock."""


@contextmanager
def run_lock(folder: DataPath, what: str, wait_s: float = WAIT_S) -> Iterator[None]:
    """Hold the request folder's run lock for the block; AlreadyRunning names the holder's pid."""
    if is_remote(folder):
        with object_store.lease(folder / LOCK_FILE, wait_s) as held:
            if not held:
                holder = object_store.lease_holder(folder / LOCK_FILE)
                raise AlreadyRunning(
                    f"{what} is running in another process"
                    + (f" ({holder.describe()})" if holder else "")
                    + "; wait for it to end"
                )
            yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    handle = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if not exclusive_lock_within(handle, wait_s, poll_s=0.05):
            holder = os.pread(handle, 32, 0).decode("ascii", "replace").strip()
            raise AlreadyRunning(
                f"{what} is running in another process"
                + (f" (pid {holder})" if holder.isdigit() else "")
                + "; wait for it to end"
            )
        os.ftruncate(handle, 0)
        os.pwrite(handle, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(handle)


def run_lock_held(folder: DataPath) -> bool:
    """True while some process runs the request here (holds its run lock)."""
    if is_remote(folder):
        return object_store.lease_holder(folder / LOCK_FILE) is not None
    try:
        handle = os.open(folder / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(handle)
    return False
