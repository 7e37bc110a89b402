"""DuckDB as the query layer: a view per Parquet table, over the files as they are when it is read.

Nothing here holds a DuckDB file lock another process could trip over: `query` builds its views in an
in-memory database, and the warehouse file (for DuckDB clients outside the project) is rebuilt under a
temporary name and renamed into place, so its readers never see it half-made and never block a writer.

One unreadable file (truncated, say) must not take every table down with it: each file's Parquet
footer is checked before a view names it. A bad file is left out of its view and reported by name;
a query that reads that view is refused with the file's name instead of answering without its rows.
"""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from eval_pipelines.core import table_names as names
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.object_store import connect_duckdb
from eval_pipelines.core.paths import DataPath, DataPaths, is_remote, is_valid_id
from eval_pipelines.core.storage import atomic_path, directory_lock

_log = logging.getLogger(__name__)


def table_globs(paths: DataPaths) -> dict[str, str]:
    """View name -> glob (relative to the data directory) of the Parquet files that make the table."""
    tables = {
        **{view: f"logs/{table}/*.parquet" for table, view in LOG_VIEWS.items()},
        "quarantine": "logs/quarantine/*.parquet",
        "executions": "executions/*/*.parquet",
        **{
            f"benchmark_{table}": f"{names.BENCHMARKS}/*/{table}.parquet"
            for table in (
                names.SESSIONS,
                names.SESSION_INTERACTIONS,
                names.REPLAYS,
                names.SESSION_SCORES,
            )
        },
        **{
            f"evaluation_{table}": f"{names.EVALUATIONS}/*/{table}.parquet"
            for table in (names.QUERIES, names.RUNS, names.QUERY_METRICS)
        },
    }
    if paths.collections_dir.is_dir():
        # Only folders named as collections can be (a view name is SQL text, never a value).
        for collection in sorted(
            p for p in paths.collections_dir.iterdir() if p.is_dir() and is_valid_id(p.name)
        ):
            tables[f"collection_{collection.name.replace('-', '_').replace('.', '_')}"] = (
                f"collections/{collection.name}/*.parquet"
            )
    return tables


@dataclass(frozen=True)
class UnreadableFile:
    """A file a view would read that DuckDB could not: kept out of the view, reported by name."""

    view: str
    path: DataPath
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class UnreadableTableError(InvalidInputError):
    """A query reads a view with unreadable files: answering without their rows would mislead."""

    def __init__(self, files: Sequence[UnreadableFile]) -> None:
        self.files = list(files)
        views = sorted({file.view for file in self.files})
        super().__init__(
            f"view {', '.join(views)} cannot be queried: "
            + "; ".join(str(file) for file in self.files)
            + " (move the file away or write it again)"
        )


# Columns that are typed now and were JSON text in files written by earlier versions, with their
# DuckDB type: a view (or find_execution) casts the text of such a file, so old and new files read as
# one table instead of failing to unify.
TYPED_COLUMNS: dict[str, str] = {
    "stage_statistics": "MAP(VARCHAR, STRUCT(input_count BIGINT, output_count BIGINT,"
    " duration_ms DOUBLE, efficiency DOUBLE, cache_hit BOOLEAN, error VARCHAR, metadata VARCHAR))",
    "stage_latencies": "MAP(VARCHAR, DOUBLE)",
}
# Columns renamed since (old name -> name): files written by earlier versions read under the new one.
RENAMED_COLUMNS: dict[str, str] = {
    "stage_latencies_json": "stage_latencies",
    "pipeline_id": "retriever_id",
}

# Columns added to a table since its first files (view -> column -> DuckDB type): a file written
# before reads them as NULL, and a view over such files only still has them.
ADDED_COLUMNS: dict[str, dict[str, str]] = {"logged_executions": {"metadata": "VARCHAR"}}
# The view of each normalized log table.
LOG_VIEWS: dict[str, str] = {"executions": "logged_executions", "interactions": "interactions"}


def with_added_columns(select: str, view: str) -> str:
    """select with view's ADDED_COLUMNS present whether or not its files hold them (no row added)."""
    added = ADDED_COLUMNS.get(view)
    if not added:
        return select
    columns = ", ".join(f'NULL::{kind} AS "{name}"' for name, kind in added.items())
    return f"SELECT * FROM ({select}) UNION ALL BY NAME SELECT {columns} WHERE false"


# path -> (identity, (problem or None, text columns of TYPED_COLUMNS)): a rewritten file has a new
# identity, so it is checked again and an unchanged one is not (thousands of parts).
_footer_checks: dict[
    str, tuple[tuple[object, ...], tuple[str | None, tuple[tuple[str, bool], ...]]]
] = {}


Identity = tuple[object, ...] | None


def _object_identity(info: Mapping[str, Any]) -> Identity:
    return (str(info.get("ETag")), info.get("size")) if info.get("type") == "file" else None


def _identity(path: DataPath) -> Identity:
    """What changes whenever path is written again, None when it is not a regular file: on a file
    system (device, inode, size, mtime), as a rename makes a new inode; on object storage (ETag,
    size), as every PUT makes a new ETag while its second-resolution mtime may not change."""
    if is_remote(path):
        return _object_identity(path.fs.info(path.path))
    status = path.stat()
    if not stat.S_ISREG(status.st_mode):
        return None
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def _inspect(
    path: DataPath, known: Mapping[str, Identity] | None = None
) -> tuple[str | None, tuple[tuple[str, bool], ...]]:
    """Why path cannot be read as Parquet (None when it can), and its TYPED_COLUMNS held as text.
    known: identities a listing gave already (one request per thousand objects, not one each)."""
    identity = known[str(path)] if known is not None and str(path) in known else _identity(path)
    if identity is None:
        return "not a regular file", ()
    cached = _footer_checks.get(str(path))
    if cached is not None and cached[0] == identity:
        return cached[1]
    try:
        schema = pq.read_metadata(str(path)).schema.to_arrow_schema()
        found: tuple[str | None, tuple[tuple[str, bool], ...]] = (None, _text_columns(schema))
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowException) as exc:
        found = (f"not a readable Parquet file ({str(exc).strip() or type(exc).__name__})", ())
    _footer_checks[str(path)] = (identity, found)
    return found


def _text_columns(schema: pa.Schema) -> tuple[tuple[str, bool], ...]:
    """The columns a file holds under an old name or as JSON text where a type is due now, each
    with whether it is text."""
    found = []
    for name in schema.names:
        current = RENAMED_COLUMNS.get(name, name)
        text = current in TYPED_COLUMNS and pa.types.is_string(schema.field(name).type)
        if text or name in RENAMED_COLUMNS:
            found.append((name, text))
    return tuple(found)


def _current(file_column: str, text: bool) -> str:
    """The expression reading a file's old-named or JSON-text column as today's column."""
    name = RENAMED_COLUMNS.get(file_column, file_column)
    value = f'"{file_column}"'
    if text and name in TYPED_COLUMNS:
        value = f"CAST(CAST({value} AS JSON) AS {TYPED_COLUMNS[name]})"
    return f'{value} AS "{name}"'


def parquet_problem(path: DataPath) -> str | None:
    """Why DuckDB could not read path as Parquet (its footer is parsed), None when it can.

    Raises FileNotFoundError when the file is gone: a vanished file is not a bad one.
    """
    return _inspect(path)[0]


def parquet_select(
    files: Sequence[DataPath],
    source: str | None = None,
    known: Mapping[str, Identity] | None = None,
) -> str:
    """A SELECT over readable Parquet files (or source, a glob matching exactly them) in which
    TYPED_COLUMNS a file holds as JSON text are cast to their type, and RENAMED_COLUMNS read under
    their current names."""
    groups: dict[tuple[str, ...], list[DataPath]] = {}
    for file in files:
        groups.setdefault(_inspect(file, known)[1], []).append(file)
    if set(groups) <= {()}:
        listed = source or "[" + ", ".join(_sql_string(str(f)) for f in files) + "]"
        return f"SELECT * FROM read_parquet({listed}, union_by_name = true)"
    selects = []
    for columns, group in sorted(groups.items()):
        listed = "[" + ", ".join(_sql_string(str(f)) for f in group) + "]"
        if not columns:
            selects.append(f"SELECT * FROM read_parquet({listed}, union_by_name = true)")
            continue
        excluded = ", ".join(f'"{c}"' for c, _ in columns)
        current = ", ".join(_current(c, text) for c, text in columns)
        selects.append(
            f"SELECT * EXCLUDE ({excluded}), {current}"
            f" FROM read_parquet({listed}, union_by_name = true)"
        )
    return " UNION ALL BY NAME ".join(selects)


def _finished(root: DataPath, file: DataPath) -> bool:
    """Not a writer's temporary (those start with '.'), at any level under the data directory."""
    return not any(part.startswith(".") for part in file.relative_to(root).parts)


@dataclass(frozen=True)
class Views:
    """Each view's SELECT, and the files left out of the views because they cannot be read."""

    definitions: dict[str, str]
    unreadable: list[UnreadableFile]


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _matched(root: DataPath, pattern: str) -> tuple[list[DataPath], dict[str, Identity]]:
    """The files a view's glob matches, and on object storage their identities from the listing."""
    if not is_remote(root):
        return sorted(root.glob(pattern)), {}
    found = root.fs.glob(f"{root.path}/{pattern}", detail=True)
    files = {root / key.removeprefix(f"{root.path}/"): info for key, info in found.items()}
    return sorted(files), {str(file): _object_identity(info) for file, info in files.items()}


def scan_views(paths: DataPaths) -> Views:
    """Every table with at least one readable finished file, and the files that are not readable.

    A view whose glob matches exactly its readable files reads the glob (so it sees parts written
    later); one with a file left out lists its readable files instead.
    """
    definitions: dict[str, str] = {}
    unreadable: list[UnreadableFile] = []
    for name, pattern in sorted(table_globs(paths).items()):
        matched, known = _matched(paths.root, pattern)
        readable: list[DataPath] = []
        for file in matched:
            if not _finished(paths.root, file):
                continue
            try:
                problem = _inspect(file, known)[0]
            except FileNotFoundError:
                continue
            if problem is None:
                readable.append(file)
            else:
                unreadable.append(UnreadableFile(name, file, problem))
        if not readable:
            continue
        glob = _sql_string(str(paths.root / pattern)) if readable == matched else None
        definitions[name] = with_added_columns(parquet_select(readable, glob, known), name)
    return Views(definitions, unreadable)


def view_definitions(paths: DataPaths) -> dict[str, str]:
    """View name -> its SELECT, for each table with at least one readable finished file."""
    return scan_views(paths).definitions


def refresh_views(paths: DataPaths, report: Callable[[str], None] = _log.warning) -> list[str]:
    """Rebuild the warehouse file with one view per table that has files; returns the view names.

    An unreadable file is left out of its view and a view DuckDB still cannot build is left out of
    the file: each is passed to report, by name, and the rest of the warehouse is built. One rebuild
    at a time, so the file renamed in last was made from the newest listing of files (the lock is
    where the file is: a remote root's warehouse file is this machine's own).
    """
    with directory_lock(paths.local_cache):
        views = scan_views(paths)
        for file in views.unreadable:
            report(f"{file}; left out of view {file.view}")
        built = []
        with atomic_path(paths.warehouse) as tmp:
            tmp.unlink()  # DuckDB creates its database file itself; it refuses an empty one
            with connect_duckdb(paths.root, str(tmp)) as con:
                for name, select in views.definitions.items():
                    try:
                        con.execute(f'CREATE VIEW "{name}" AS {select}')
                    except duckdb.Error as exc:
                        report(f"view {name} left out of {paths.warehouse}: {exc}")
                        continue
                    built.append(name)
                con.execute("CHECKPOINT")
    return built


def _table_names(node: Any, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        if node.get("type") == "BASE_TABLE" and isinstance(node.get("table_name"), str):
            found.add(node["table_name"].lower())
        for value in node.values():
            _table_names(value, found)
    elif isinstance(node, list):
        for value in node:
            _table_names(value, found)
    return found


def referenced_tables(con: duckdb.DuckDBPyConnection, sql: str) -> set[str] | None:
    """The table names a SELECT reads (lower case), from DuckDB's own parse of it.

    Empty when it does not parse (DuckDB then reports the syntax error itself); None when it is not
    a SELECT, whose reads cannot be told apart.
    """
    parsed = json.loads(con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()[0])
    if parsed.get("error"):
        return set() if parsed.get("error_type") == "parser" else None
    return _table_names(parsed.get("statements"), set())


def query(paths: DataPaths, sql: str, parameters: Sequence[Any] | None = None) -> pa.Table:
    """Run one query against the views, built afresh in memory; values go in as parameters only.

    Only the views the query names are built. One that would read an unreadable file is refused
    with UnreadableTableError naming the file; the other views answer as usual.
    """
    views = scan_views(paths)
    with connect_duckdb(paths.root) as con:
        wanted = referenced_tables(con, sql)
        refused = [f for f in views.unreadable if wanted is None or f.view in wanted]
        if refused:
            raise UnreadableTableError(refused)
        for name, select in views.definitions.items():
            if wanted is None or name in wanted:
                con.execute(f'CREATE VIEW "{name}" AS {select}')
        return con.sql(sql, params=list(parameters or [])).to_arrow_table()
