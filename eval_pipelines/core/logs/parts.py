"""The stored Parquet parts of a log table as local files, so DuckDB scans a local disk.

On a file system they are the parts themselves. On object storage each part is fetched once into
the local cache (`<local_cache>/log_parts/<table>/<part name>/<ETag>.parquet`) and read from there:
reading the logs over the network costs a round trip per Parquet range, many per part, and the
click model and ingest's checks read every part. The cache is keyed on the object's name and ETag
(the store's digest of its bytes), so a part rewritten under its old name is fetched again; the
paths sort as the part names do, so "first stored part wins" rules see the same order. Copies are
never removed here: another process may be reading any of them, and since ingest never deletes or
rewrites a part the cache holds one copy of the logs at most.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from eval_pipelines.core.paths import DataPath, DataPaths
from eval_pipelines.core.storage import parquet_files

CACHE_FOLDER = "log_parts"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def local_parts(paths: DataPaths, table: str) -> list[Path]:
    """Finished parts of logs/<table> in name order, each a local file."""
    directory = paths.log_table_dir(table)
    if not paths.is_remote:
        return [Path(part) for part in parquet_files(directory)]
    entries = sorted(_listing(directory), key=lambda entry: entry["name"])
    cache = paths.local_cache / CACHE_FOLDER / table
    wanted = {_part_name(entry): cache / _part_name(entry) / _tag(entry) for entry in entries}
    missing = [entry for entry in entries if not wanted[_part_name(entry)].is_file()]
    if missing:
        _fetch(directory.fs, missing, wanted, cache)
    return [wanted[_part_name(entry)] for entry in entries]


def stored_part(paths: DataPaths, table: str, part: Path) -> DataPath:
    """The stored part a path from local_parts stands for, to name it in messages."""
    return paths.log_table_dir(table) / part.parent.name if paths.is_remote else part


def _listing(directory: Any) -> list[dict[str, Any]]:
    """The finished parts' listing entries (name, size, ETag); one LIST request."""
    try:
        entries = directory.fs.ls(directory.path, detail=True, refresh=True)
    except FileNotFoundError:
        return []
    return [
        entry
        for entry in entries
        if entry.get("type") == "file"
        and _part_name(entry).endswith(".parquet")
        and not _part_name(entry).startswith(".")
    ]


def _part_name(entry: dict[str, Any]) -> str:
    return str(entry["name"]).rsplit("/", 1)[-1]


def _tag(entry: dict[str, Any]) -> str:
    tag = _UNSAFE.sub("", str(entry.get("ETag") or entry.get("etag") or ""))
    return f"{tag or 'size' + str(entry.get('size'))}.parquet"


def _fetch(fs: Any, entries: list[dict[str, Any]], wanted: dict[str, Path], cache: Path) -> None:
    """Download the missing parts together, each renamed into place once whole."""
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=cache) as staging:
        landed = [Path(staging) / f"{index}.parquet" for index in range(len(entries))]
        fs.get([str(entry["name"]) for entry in entries], [str(path) for path in landed])
        for entry, path in zip(entries, landed, strict=True):
            target = wanted[_part_name(entry)]
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
