"""Collections a pipeline retriever searches: `<data>/collections/<name>/documents.parquet`, and
their BM25 indexes cached in `<local cache>/collections/<name>/bm25/` (the data root itself when it is
a directory; this machine's cache when it is on object storage)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPath, DataPaths, validate_id
from eval_pipelines.core.retrieval.file_cache import file_stamp, read_cached
from eval_pipelines.core.storage import write_parquet_atomic

DOCUMENTS_FILE = "documents.parquet"
ID_COLUMN = "document_id"

STRING, NUMERIC, BOOL = "string", "numeric", "bool"


class CollectionError(InvalidInputError):
    """A collection that breaks its contract (document_id unique, non-null; scalar columns)."""


def collection_file(paths: DataPaths, name: str) -> DataPath:
    return paths.collection_dir(name) / DOCUMENTS_FILE


def index_cache_dir(paths: DataPaths, name: str) -> Path:
    """Where the collection's BM25 indexes are kept: bm25s saves to and loads from a local folder."""
    return paths.local_cache / "collections" / validate_id(name, "collection") / "bm25"


def column_kind(arrow_type: pa.DataType) -> str | None:
    """How stages treat a column: text, number or flag; None for types stages cannot use."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return STRING
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return NUMERIC
    if pa.types.is_boolean(arrow_type):
        return BOOL
    return None


def schema_column_kinds(schema: pa.Schema) -> dict[str, str]:
    return {f.name: kind for f in schema if (kind := column_kind(f.type)) is not None}


def collection_column_kinds(paths: DataPaths, name: str) -> dict[str, str] | None:
    """Column kinds from the Parquet footer only (cheap), or None when the collection does not exist."""
    file = collection_file(paths, name)
    if not file.is_file():
        return None
    return dict(read_cached(file, "collection_column_kinds", _read_column_kinds))


def _read_column_kinds(file: DataPath) -> dict[str, str]:
    try:
        schema = pq.read_schema(str(file))
    except (OSError, pa.ArrowException) as exc:
        raise CollectionError(f"{file}: not a readable Parquet file ({exc})") from None
    return schema_column_kinds(schema)


def _as_table(documents: pa.Table | pd.DataFrame | Sequence[Mapping[str, Any]]) -> pa.Table:
    if isinstance(documents, pa.Table):
        return documents
    if isinstance(documents, pd.DataFrame):
        return pa.Table.from_pandas(documents, preserve_index=False)
    return pa.Table.from_pylist([dict(d) for d in documents])


def validate_collection_table(table: pa.Table, source: str) -> pa.Table:
    """Check the contract and normalise dictionary/large strings to plain strings; raise naming the problem."""
    if table.num_rows == 0:
        raise CollectionError(f"{source}: the collection has no documents")
    if ID_COLUMN not in table.column_names:
        raise CollectionError(
            f"{source}: {ID_COLUMN}: column missing (columns: {', '.join(table.column_names)})"
        )
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_dictionary(column.type) and pa.types.is_string(column.type.value_type):
            column = column.cast(pa.string())
        if pa.types.is_large_string(column.type):
            column = column.cast(pa.string())
        if column_kind(column.type) is None:
            raise CollectionError(
                f"{source}: {name}: unsupported column type {column.type} "
                "(expected string, integer, floating point or boolean)"
            )
        if pa.types.is_floating(column.type):
            infinite = pc.is_inf(column)
            if pc.any(infinite).as_py():
                raise CollectionError(
                    f"{source}: {name}: infinite value at row {pc.index(infinite, True).as_py()}"
                    " (numbers must be finite; leave a value empty when it is unknown)"
                )
        columns[name] = column
    ids = columns[ID_COLUMN]
    if column_kind(ids.type) != STRING:
        raise CollectionError(f"{source}: {ID_COLUMN}: expected strings, got {ids.type}")
    if ids.null_count:
        row = pc.index(pc.is_null(ids), True).as_py()
        raise CollectionError(f"{source}: {ID_COLUMN}: null at row {row} ({ids.null_count} nulls)")
    empty = pc.equal(pc.utf8_length(ids), 0)
    if pc.any(empty).as_py():
        raise CollectionError(
            f"{source}: {ID_COLUMN}: empty string at row {pc.index(empty, True).as_py()}"
        )
    counts = pc.value_counts(ids)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1))
    if len(repeated):
        shown = ", ".join(repr(v) for v in repeated.field("values")[:5].to_pylist())
        raise CollectionError(
            f"{source}: {ID_COLUMN}: {len(repeated)} duplicated value(s), e.g. {shown}"
        )
    return pa.table(columns)


def write_collection(
    paths: DataPaths,
    name: str,
    documents: pa.Table | pd.DataFrame | Sequence[Mapping[str, Any]],
) -> DataPath:
    """Validate documents and write them atomically as the collection `name`."""
    validate_id(name, "collection")
    table = validate_collection_table(_as_table(documents), f"collection {name!r}")
    return write_parquet_atomic(table, collection_file(paths, name))


def read_collection_files(files: Sequence[Path]) -> pa.Table:
    """Documents from JSONL, CSV or Parquet files (by extension), concatenated; unreadable -> CollectionError."""
    readers = {
        ".parquet": pq.read_table,
        ".jsonl": pa_json.read_json,
        ".ndjson": pa_json.read_json,
        ".csv": pa_csv.read_csv,
    }
    tables = []
    for file in files:
        reader = readers.get(Path(file).suffix.lower())
        if reader is None:
            raise CollectionError(
                f"{file}: unknown extension (expected one of {', '.join(sorted(readers))})"
            )
        try:
            tables.append(reader(file))
        except (OSError, pa.ArrowException) as exc:
            raise CollectionError(f"{file}: cannot be read ({exc})") from None
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowException as exc:
        raise CollectionError(f"the files' columns do not agree ({exc})") from None


def import_collection(paths: DataPaths, name: str, files: Sequence[Path]) -> tuple[DataPath, int]:
    """Replace collection `name` with the documents of files; returns the file written and its row count."""
    table = read_collection_files(files)
    return write_collection(paths, name, table), table.num_rows


class Collection:
    """A loaded collection: the Arrow table plus per-column arrays that stages reuse across queries."""

    def __init__(
        self, name: str, path: DataPath, table: pa.Table, index_cache: Path | None = None
    ) -> None:
        self.name = name
        self.path = path
        self.index_cache = index_cache or Path(path).parent / "bm25"
        self.table = table.combine_chunks()
        self.size = self.table.num_rows
        self.kinds = schema_column_kinds(self.table.schema)
        self.document_ids: np.ndarray = self.table.column(ID_COLUMN).to_numpy(zero_copy_only=False)
        self._arrow: dict[str, pa.Array] = {}
        self._numeric: dict[str, np.ndarray] = {}

    def require(self, column: str) -> str:
        """The column's kind; a KeyError naming the valid columns when it does not exist."""
        if column not in self.kinds:
            raise KeyError(
                f"collection {self.name!r} has no column {column!r} "
                f"(columns: {', '.join(sorted(self.kinds))})"
            )
        return self.kinds[column]

    def arrow(self, column: str) -> pa.Array:
        if column not in self._arrow:
            self.require(column)
            self._arrow[column] = self.table.column(column).combine_chunks()
        return self._arrow[column]

    def numeric(self, column: str) -> np.ndarray:
        """float64 values, NaN where null; booleans become 0/1."""
        if column not in self._numeric:
            kind = self.require(column)
            if kind == STRING:
                raise TypeError(f"column {column!r} of collection {self.name!r} is not numeric")
            values = self.arrow(column).cast(pa.float64())
            self._numeric[column] = values.to_numpy(zero_copy_only=False).astype(np.float64)
        return self._numeric[column]

    def texts(self, fields: Sequence[str]) -> list[str]:
        """Each document's chosen fields joined by newlines (nulls skipped), for indexing."""
        parts = [self.arrow(f).cast(pa.string()).fill_null("") for f in fields]
        joined = pc.binary_join_element_wise(*parts, "\n") if len(parts) > 1 else parts[0]
        return joined.to_pylist()

    @cached_property
    def content_digest(self) -> str:
        """sha256 of the Parquet file's bytes: indexes built from other content never match."""
        digest = hashlib.sha256()
        with self.path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


_cache: dict[str, tuple[tuple[object, ...], Collection]] = {}
_cache_lock = threading.Lock()


def load_collection(paths: DataPaths, name: str) -> Collection:
    """Load a collection once per process; reloaded when the file is replaced or changes.

    An import replaces the file by a rename, so its inode and ctime change even when its size and
    mtime (coarse on some filesystems) do not; on object storage every PUT changes its ETag."""
    file = collection_file(paths, name)
    try:
        stamp, _ = file_stamp(file)
    except FileNotFoundError:
        raise CollectionError(f"collection {name!r}: {file} does not exist") from None
    key = str(file.resolve())
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            raw = pq.read_table(str(file))
        except (OSError, pa.ArrowException) as exc:
            raise CollectionError(f"{file}: not a readable Parquet file ({exc})") from None
        table = validate_collection_table(raw, str(file))
        collection = Collection(name, file, table, index_cache_dir(paths, name))
        _cache[key] = (stamp, collection)
        return collection
