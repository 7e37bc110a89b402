"""Ground-truth datasets on disk: stored whole under `<data>/datasets/<name>/`, listed and loaded back.

`<data>/datasets/<name>/` holds queries.parquet, judgments.parquet and dataset.json, and is replaced
as a whole (built in a hidden sibling, then renamed into place) so a reader never sees half a dataset.
Object storage cannot rename a folder: there the files go under a new version prefix
(`<name>/v-<time>-<random>/`), then dataset.json, the summary naming that version, is written in one
PUT. A reader follows the dataset.json it read, so it sees the old dataset or the new one, never a
mix, and a dataset without dataset.json (a writer that died) is not listed. The version replaced is
kept for readers still loading it; older ones are deleted once they are 10 minutes old.

The dataset_id is "ds_" + the first 12 hex digits of a sha256 over the canonical content: one line
`query_id<TAB>query_input` per query, then `j<TAB>query_id<TAB>document_id<TAB>relevance` per
judgment, both sorted. Ids hold no whitespace and query_input is compact JSON, so lines are
unambiguous; identical content imported again (from any format) gets the same id.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from eval_pipelines.core.datasets.readers import ParsedDataset, read_dataset_files
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.object_store import LEASE_TTL_S
from eval_pipelines.core.paths import (
    DataPath,
    DataPaths,
    is_remote,
    is_valid_id,
    shown,
    validate_id,
)
from eval_pipelines.core.records import utc_timestamp
from eval_pipelines.core.storage import (
    directory_lock,
    new_staging_directory,
    read_whole,
    remove_tree,
    write_parquet_atomic,
    write_text_atomic,
)

QUERIES_FILE = "queries.parquet"
JUDGMENTS_FILE = "judgments.parquet"
SUMMARY_FILE = "dataset.json"
DATASET_ID_PREFIX = "ds_"
# On object storage: dataset.json's key naming the folder that holds this version's files.
VERSION_KEY = "version"
VERSION_PREFIX = "v-"
_STAMP = "%Y%m%dT%H%M%S"
# Versions nothing names are deleted once older than this (several lease lifetimes).
_ABANDONED_AFTER_S = 10 * LEASE_TTL_S
# A replace renames the old folder away and deletes it; a load that raced it simply reads again.
_LOAD_ATTEMPTS = 3

QUERIES_SCHEMA = pa.schema(
    [
        pa.field("query_id", pa.string(), nullable=False),
        pa.field("query_input", pa.string(), nullable=False),
        pa.field("query_text", pa.string(), nullable=False),
    ]
)
JUDGMENTS_SCHEMA = pa.schema(
    [
        pa.field("query_id", pa.string(), nullable=False),
        pa.field("document_id", pa.string(), nullable=False),
        pa.field("relevance", pa.int32(), nullable=False),
    ]
)


@dataclass(frozen=True)
class DatasetSummary:
    """What `dataset list` shows; stored as dataset.json. relevant_count counts grades >= 1.

    ignored_queries: BEIR queries that no qrels file mentions, counted rather than stored.
    derivation: for a dataset derived from logs (datasets/from_logs.py), what it came from and how.
    """

    dataset_id: str
    name: str
    format: str
    query_count: int
    judgment_count: int
    relevant_count: int
    created_at: str
    source_files: list[str]
    ignored_queries: int = 0
    derivation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """An imported dataset's dict has no derivation key, as before derived datasets existed."""
        data = asdict(self)
        if self.derivation is None:
            del data["derivation"]
        return data

    @classmethod
    def from_dict(cls, data: Any, source: DataPath) -> DatasetSummary:
        names = {item.name for item in fields(cls)}
        if not isinstance(data, dict) or not names.issuperset(data):
            raise InvalidInputError(
                f"{source}: not a dataset summary (expected the keys {sorted(names)})"
            )
        try:
            return cls(**data)
        except TypeError as exc:
            raise InvalidInputError(f"{source}: not a dataset summary ({exc})") from exc


@dataclass(frozen=True)
class Dataset:
    """A stored dataset: queries (query_id, query_input JSON, query_text) sorted by query_id, and
    judgments (query_id, document_id, relevance int32) sorted by query_id then document_id."""

    summary: DatasetSummary
    queries: pa.Table
    judgments: pa.Table


def import_dataset(
    paths: DataPaths,
    name: str,
    files: Sequence[Path],
    fmt: str = "auto",
    replace: bool = False,
    source_files: Sequence[str] | None = None,
) -> DatasetSummary:
    """Read files (see readers.py for the formats) and store them as dataset `name`. source_files
    names where they came from when they are local copies (of files under an S3 root, say).

    Every problem in the files is reported at once (DatasetInputError) and nothing is stored then.
    """
    if dataset_exists(paths, name) and not replace:
        raise InvalidInputError(f"dataset {name} exists; use --replace")
    sources = [Path(file) for file in files]
    parsed = read_dataset_files(sources, fmt)
    queries, judgments = dataset_tables(parsed)
    return store_dataset(
        paths,
        name,
        queries,
        judgments,
        fmt=parsed.format,
        source_files=list(source_files or [str(source.resolve()) for source in sources]),
        replace=replace,
        ignored_queries=parsed.ignored_queries,
    )


def store_dataset(
    paths: DataPaths,
    name: str,
    queries: pa.Table,
    judgments: pa.Table,
    *,
    fmt: str,
    source_files: list[str],
    replace: bool = False,
    ignored_queries: int = 0,
    derivation: dict[str, Any] | None = None,
    side_tables: Mapping[str, pa.Table] | None = None,
) -> DatasetSummary:
    """Store tables already in the stored shape (sorted, as dataset_tables makes them) as `name`.

    side_tables (file name -> table) are written into the same folder, so they are replaced with it.
    """
    target = paths.dataset_dir(name)
    if dataset_exists(paths, name) and not replace:
        raise InvalidInputError(f"dataset {name} exists; use --replace")
    queries, judgments = queries.cast(QUERIES_SCHEMA), judgments.cast(JUDGMENTS_SCHEMA)
    summary = DatasetSummary(
        dataset_id=dataset_id(queries, judgments),
        name=name,
        format=fmt,
        query_count=queries.num_rows,
        judgment_count=judgments.num_rows,
        relevant_count=pc.sum(pc.greater_equal(judgments.column("relevance"), 1)).as_py() or 0,
        created_at=utc_timestamp(),
        source_files=source_files,
        ignored_queries=ignored_queries,
        derivation=derivation,
    )
    tables = {QUERIES_FILE: queries, JUDGMENTS_FILE: judgments, **(side_tables or {})}
    if is_remote(target):
        _install_version(target, tables, summary, replace)
    else:
        _install(paths, target, tables, summary, replace)
    return summary


def dataset_tables(parsed: ParsedDataset) -> tuple[pa.Table, pa.Table]:
    """The stored tables: queries sorted by id, judgments by (query id, document id)."""
    query_rows = sorted(parsed.queries)
    judgment_rows = sorted(parsed.judgments)
    queries = pa.table(
        {
            "query_id": [row[0] for row in query_rows],
            "query_input": [row[1] for row in query_rows],
            "query_text": [row[2] for row in query_rows],
        },
        schema=QUERIES_SCHEMA,
    )
    judgments = pa.table(
        {
            "query_id": [row[0] for row in judgment_rows],
            "document_id": [row[1] for row in judgment_rows],
            "relevance": [row[2] for row in judgment_rows],
        },
        schema=JUDGMENTS_SCHEMA,
    )
    return queries, judgments


def dataset_id(queries: pa.Table, judgments: pa.Table) -> str:
    """ "ds_" + 12 hex of the canonical content (see the module docstring); tables sorted as stored."""
    digest = hashlib.sha256()
    _hash_lines(digest, queries.select(["query_id", "query_input"]))
    marked = judgments.select(["query_id", "document_id", "relevance"])
    marked = marked.add_column(0, "mark", pa.repeat("j", marked.num_rows).cast(pa.string()))
    _hash_lines(digest, marked)
    return DATASET_ID_PREFIX + digest.hexdigest()[:12]


def _hash_lines(digest: Any, table: pa.Table, batch_rows: int = 1 << 18) -> None:
    """Feed the table to digest as tab-joined lines ending in a newline, a batch at a time."""
    for batch in table.to_batches(max_chunksize=batch_rows):
        cells = [column.cast(pa.string()) for column in batch.columns]
        lines = pc.binary_join_element_wise(*cells, "\t")
        lines = pc.binary_join_element_wise(lines, pa.scalar("\n"), "")
        if len(lines):
            _, offsets_buffer, data = lines.buffers()
            offsets = np.frombuffer(offsets_buffer, dtype=np.int32)
            first, last = lines.offset, lines.offset + len(lines)
            digest.update(memoryview(data)[offsets[first] : offsets[last]])


def _install(
    paths: DataPaths,
    target: Path,
    tables: Mapping[str, pa.Table],
    summary: DatasetSummary,
    replace: bool,
) -> None:
    """Build the dataset in a hidden sibling folder, then rename it into place (old one renamed away)."""
    staging = new_staging_directory(paths.datasets_dir, prefix=f".{target.name}.", suffix=".new")
    try:
        for file_name, table in tables.items():
            write_parquet_atomic(table, staging / file_name)
        write_text_atomic(json.dumps(summary.to_dict(), indent=2) + "\n", staging / SUMMARY_FILE)
        retired: Path | None = None
        if replace and target.exists():
            retired = target.with_name(f".{target.name}.{secrets.token_hex(6)}.old")
            os.rename(target, retired)
        try:
            os.rename(staging, target)
        except OSError as exc:
            if retired is not None:
                try:
                    os.rename(retired, target)
                except OSError:
                    shutil.rmtree(retired, ignore_errors=True)
            if target.exists():
                raise InvalidInputError(f"dataset {summary.name} exists; use --replace") from exc
            raise
        if retired is not None:
            shutil.rmtree(retired)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _install_version(
    target: DataPath, tables: Mapping[str, pa.Table], summary: DatasetSummary, replace: bool
) -> None:
    """Object storage: the files under a new version prefix, then dataset.json pointing at it (one
    PUT), under the dataset's lease so two writers of one name take turns."""
    pointer = target / SUMMARY_FILE
    with directory_lock(target):
        replaced = _version_of(pointer)
        if replaced is not None and not replace:
            raise InvalidInputError(f"dataset {summary.name} exists; use --replace")
        stamp = time.strftime(_STAMP, time.gmtime())
        version = f"{VERSION_PREFIX}{stamp}-{secrets.token_hex(4)}"
        try:
            for file_name, table in tables.items():
                write_parquet_atomic(table, target / version / file_name)
            body = {**summary.to_dict(), VERSION_KEY: version}
            write_text_atomic(json.dumps(body, indent=2) + "\n", pointer)
        except BaseException:
            remove_tree(target / version)
            raise
        for folder in target.iterdir():
            if folder.name not in (version, replaced) and _abandoned(folder.name):
                remove_tree(folder)


def _abandoned(name: str) -> bool:
    """A version folder nothing names and too old to be a writer's in progress: a writer paused
    past its lease could still point dataset.json at one written a moment ago."""
    if not name.startswith(VERSION_PREFIX):
        return False
    try:
        written = calendar.timegm(time.strptime(name[len(VERSION_PREFIX) :][:15], _STAMP))
    except ValueError:
        return True
    return time.time() - written > _ABANDONED_AFTER_S


def _version_of(pointer: DataPath) -> str | None:
    """The version a dataset.json on object storage names ("" for one whose files are beside it, as
    a copy of a local root has them); None when there is no dataset.json."""
    try:
        text = _read_text(pointer)
    except FileNotFoundError:
        return None
    return _summary_and_files(text, pointer)[1]


def list_datasets(paths: DataPaths) -> list[DatasetSummary]:
    """Every stored dataset's summary, sorted by name."""
    if not paths.datasets_dir.is_dir():
        return []
    summaries = []
    for folder in sorted(paths.datasets_dir.iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        summary = _read_summary_if_present(folder / SUMMARY_FILE)
        if summary is not None:
            summaries.append(summary)
    return sorted(summaries, key=lambda summary: summary.name)


def _stored(folder: DataPath) -> bool:
    """A folder renamed into place is whole; on object storage a dataset is there once its
    dataset.json is (files of a version nothing names are not a dataset)."""
    return (folder / SUMMARY_FILE).exists() if is_remote(folder) else folder.is_dir()


def dataset_exists(paths: DataPaths, name: str) -> bool:
    return _stored(paths.dataset_dir(name))


def _read_summary_if_present(file: DataPath) -> DatasetSummary | None:
    for _ in range(_LOAD_ATTEMPTS):
        try:
            text = _read_text(file)
        except FileNotFoundError:
            if not _stored(file.parent):
                return None
            continue
        return _summary_and_files(text, file)[0]
    return None


def _read_text(file: DataPath) -> str:
    return read_whole(file).decode("utf-8")


def _parse_json(text: str, file: DataPath) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{file}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc


def _summary_and_files(text: str, file: DataPath) -> tuple[DatasetSummary, str]:
    """The summary a dataset.json holds, and where its files are relative to its folder: "" (beside
    it), or the version folder it names (written on object storage)."""
    data = _parse_json(text, file)
    version = ""
    if isinstance(data, dict) and VERSION_KEY in data:
        data = dict(data)
        version = data.pop(VERSION_KEY)
        if not (isinstance(version, str) and version.startswith(VERSION_PREFIX)) or not (
            is_valid_id(version)
        ):
            raise InvalidInputError(
                f"{file}: {VERSION_KEY}: {shown(version)} is not a dataset version"
                f" ({VERSION_PREFIX}... naming a folder beside it)"
            )
    return DatasetSummary.from_dict(data, file), version


def load_dataset(paths: DataPaths, name: str) -> Dataset:
    """The stored dataset `name`; an unknown name raises InvalidInputError listing the known ones."""
    folder = paths.datasets_dir / validate_id(name, "dataset")
    last_error: FileNotFoundError | None = None
    for _ in range(_LOAD_ATTEMPTS):
        try:
            return _load_folder(folder)
        except FileNotFoundError as exc:
            last_error = exc
            if not _stored(folder):
                break
    if not _stored(folder):
        known = ", ".join(summary.name for summary in list_datasets(paths))
        raise InvalidInputError(
            f"dataset: {name!r} not found (known: "
            f"{known or 'none imported; use `eval-pipelines dataset import`'})"
        )
    raise FileNotFoundError(f"{folder}: the dataset is incomplete ({last_error})") from last_error


def load_side_table(paths: DataPaths, name: str, file_name: str) -> pa.Table | None:
    """A table stored with dataset `name` (store_dataset's side_tables), from the same version as
    its summary; None when that version has no such file."""
    folder = paths.dataset_dir(name)
    for _ in range(_LOAD_ATTEMPTS):
        try:
            with _folder_files(folder) as open_file:
                try:
                    with open_file(file_name) as handle:
                        return pq.read_table(handle)
                except FileNotFoundError:
                    return None
        except FileNotFoundError:
            if not _stored(folder):
                break
    return None


def _load_folder(folder: DataPath) -> Dataset:
    """Every file is read from the version its dataset.json names, so all three are of one version."""
    with _folder_files(folder) as open_file:
        summary = open_file.summary
        with open_file(QUERIES_FILE) as handle:
            queries = pq.read_table(handle).cast(QUERIES_SCHEMA)
        with open_file(JUDGMENTS_FILE) as handle:
            judgments = pq.read_table(handle).cast(JUDGMENTS_SCHEMA)
    return Dataset(summary, queries, judgments)


@dataclass(frozen=True)
class _VersionFiles:
    """Opens the files of the version a dataset.json named (raises FileNotFoundError when gone)."""

    summary: DatasetSummary
    opener: Callable[[str], IO[bytes]]

    def __call__(self, name: str) -> IO[bytes]:
        return self.opener(name)


@contextmanager
def _folder_files(folder: DataPath) -> Iterator[_VersionFiles]:
    """On a file system through one handle on the folder (a folder renamed in meanwhile is not
    mixed in); on object storage each file is one whole GET of the version dataset.json names
    (versions are never rewritten)."""
    summary_path = folder / SUMMARY_FILE
    if is_remote(folder):
        summary, version = _summary_and_files(_read_text(summary_path), summary_path)
        files = folder / version if version else folder
        yield _VersionFiles(summary, lambda name: io.BytesIO(read_whole(files / name)))
        return
    directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)

    def open_file(name: str) -> IO[bytes]:
        return os.fdopen(os.open(name, os.O_RDONLY, dir_fd=directory), "rb")

    try:
        with open_file(SUMMARY_FILE) as handle:
            summary, version = _summary_and_files(handle.read().decode("utf-8"), summary_path)
        prefix = f"{version}/" if version else ""
        yield _VersionFiles(summary, lambda name: open_file(prefix + name))
    finally:
        os.close(directory)
