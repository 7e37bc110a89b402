"""What was read from a small file, kept for the process while the file is provably unchanged.

A benchmark run loads the retriever files and their collections' schemas several times (request
check, each asset); each load must see an edit made in between. An entry is keyed by the path and
the file's device, inode, size, mtime and ctime, so a rewrite (in place, or a new file renamed
over it) is a miss. A file changed less than RACY_NS before it was read is not kept: a second edit
within the same timestamp tick could leave every stat field as it was.

On object storage there is no inode and mtime has whole seconds, so an object is keyed by its ETag
(which every PUT of new content changes), its size and its LastModified instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from eval_pipelines.core.paths import DataPath, is_remote

RACY_NS = 1_000_000_000
MAX_ENTRIES = 4096

T = TypeVar("T")
_Stamp = tuple[object, ...]


@dataclass
class CacheInfo:
    hits: int = 0
    misses: int = 0
    entries: int = 0


_lock = threading.Lock()
_entries: dict[tuple[str, str], tuple[_Stamp, Any]] = {}
_info = CacheInfo()


def file_stamp(path: DataPath) -> tuple[_Stamp, bool]:
    """What changes whenever the file's content may have, and whether the stamp is settled (a
    file changed within RACY_NS may change again without changing its stamp).

    Raises OSError (FileNotFoundError) when the file cannot be examined.
    """
    if is_remote(path):
        info = path.fs.info(path.path)
        etag = info.get("ETag")
        return ("object", etag, info.get("size"), str(info.get("LastModified"))), bool(etag)
    started = time.time_ns()
    status = path.stat()
    stamp = (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
    settled = started - max(status.st_mtime_ns, status.st_ctime_ns) > RACY_NS
    return stamp, settled


def read_cached(path: DataPath, kind: str, read: Callable[[DataPath], T]) -> T:
    """read(path), or what it returned for this path and kind while the file is unchanged.

    The value is shared between callers: they must not change it. An exception is never kept.
    """
    try:
        stamp, settled = file_stamp(path)
    except OSError:
        return read(path)
    key = (kind, str(path))
    with _lock:
        entry = _entries.get(key)
        if entry is not None and entry[0] == stamp:
            _info.hits += 1
            return entry[1]
        _info.misses += 1
    value = read(path)
    if settled:
        with _lock:
            if len(_entries) >= MAX_ENTRIES:
                _entries.clear()
            _entries[key] = (stamp, value)
    return value


def cache_info() -> CacheInfo:
    """Hits and misses since the process started (or the last clear), and the entries kept."""
    with _lock:
        return CacheInfo(_info.hits, _info.misses, len(_entries))


def clear_cache() -> None:
    with _lock:
        _entries.clear()
        _info.hits = _info.misses = 0
