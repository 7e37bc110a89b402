"""What was read from a small file, kept for the process while the file is provably unchanged.

A benchmark run loads the retriever files and their collections' schemas several times (request
check, each asset); each load must see an edit made in between. An entry is keyed by the path and
the file's device, inode, size, mtime and ctime, so a rewrite (in place, or a new file renamed
over it) is a miss. A file changed less than RACY_NS before it was read is not kept: a second edit
within the same timestamp tick could leave every stat field as it was.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

RACY_NS = 1_000_000_000
MAX_ENTRIES = 4096

T = TypeVar("T")
_Stamp = tuple[int, int, int, int, int]


@dataclass
class CacheInfo:
    hits: int = 0
    misses: int = 0
    entries: int = 0


_lock = threading.Lock()
_entries: dict[tuple[str, str], tuple[_Stamp, Any]] = {}
_info = CacheInfo()


def read_cached(path: Path, kind: str, read: Callable[[Path], T]) -> T:
    """read(path), or what it returned for this path and kind while the file is unchanged.

    The value is shared between callers: they must not change it. An exception is never kept.
    """
    started = time.time_ns()
    try:
        status = path.stat()
    except OSError:
        return read(path)
    stamp = (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
    key = (kind, str(path))
    with _lock:
        entry = _entries.get(key)
        if entry is not None and entry[0] == stamp:
            _info.hits += 1
            return entry[1]
        _info.misses += 1
    value = read(path)
    if started - max(status.st_mtime_ns, status.st_ctime_ns) > RACY_NS:
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
