"""Ground-truth datasets on disk: stored whole under `<data>/datasets/<name>/`, listed and loaded back.

`<data>/datasets/<name>/` holds queries.parquet, judgments.parquet and dataset.json, and is replaced
as a whole (built in a hidden sibling, then renamed into place) so a reader never sees half a dataset.

The dataset_id is "ds_" + the first 12 hex digits of a sha256 over the canonical content: one line
`query_id<TAB>query_input` per query, then `j<TAB>query_id<TAB>document_id<TAB>relevance` per
judgment, both sorted. Ids hold no whitespace and query_input is compact JSON, so lines are
unambiguous; identical content imported again (from any format) gets the same id.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
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
from eval_pipelines.core.paths import DataPaths, validate_id
from eval_pipelines.core.records import utc_timestamp
from eval_pipelines.core.storage import (
    new_staging_directory,
    write_parquet_atomic,
    write_text_atomic,
)

QUERIES_FILE = "queries.parquet"
JUDGMENTS_FILE = "judgments.parquet"
SUMMARY_FILE = "dataset.json"
DATASET_ID_PREFIX = "ds_"
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
    def from_dict(cls, data: Any, source: Path) -> DatasetSummary:
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
) -> DatasetSummary:
    """Read files (see readers.py for the formats) and store them as dataset `name`.

    Every problem in the files is reported at once (DatasetInputError) and nothing is stored then.
    """
    if paths.dataset_dir(name).exists() and not replace:
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
        source_files=[str(source.resolve()) for source in sources],
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
    if target.exists() and not replace:
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
    _install(paths, target, queries, judgments, summary, replace, side_tables or {})
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
    queries: pa.Table,
    judgments: pa.Table,
    summary: DatasetSummary,
    replace: bool,
    side_tables: Mapping[str, pa.Table],
) -> None:
    """Build the dataset in a hidden sibling folder, then rename it into place (old one renamed away)."""
    staging = new_staging_directory(paths.datasets_dir, prefix=f".{target.name}.", suffix=".new")
    try:
        write_parquet_atomic(queries, staging / QUERIES_FILE)
        write_parquet_atomic(judgments, staging / JUDGMENTS_FILE)
        for file_name, table in side_tables.items():
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


def _read_summary_if_present(file: Path) -> DatasetSummary | None:
    for _ in range(_LOAD_ATTEMPTS):
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            if not file.parent.is_dir():
                return None
            continue
        return DatasetSummary.from_dict(_parse_json(text, file), file)
    return None


def _parse_json(text: str, file: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{file}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc


def load_dataset(paths: DataPaths, name: str) -> Dataset:
    """The stored dataset `name`; an unknown name raises InvalidInputError listing the known ones."""
    folder = paths.datasets_dir / validate_id(name, "dataset")
    last_error: FileNotFoundError | None = None
    for _ in range(_LOAD_ATTEMPTS):
        try:
            return _load_folder(folder)
        except FileNotFoundError as exc:
            last_error = exc
            if not folder.is_dir():
                break
    if not folder.is_dir():
        known = ", ".join(summary.name for summary in list_datasets(paths))
        raise InvalidInputError(
            f"dataset: {name!r} not found (known: "
            f"{known or 'none imported; use `eval-pipelines dataset import`'})"
        )
    raise FileNotFoundError(f"{folder}: the dataset is incomplete ({last_error})") from last_error


def _load_folder(folder: Path) -> Dataset:
    """Every file is opened through one handle on the folder, so all three come from one version."""
    with _folder_files(folder) as open_file:
        with open_file(SUMMARY_FILE) as handle:
            summary_path = folder / SUMMARY_FILE
            summary = DatasetSummary.from_dict(
                _parse_json(handle.read().decode("utf-8"), summary_path), summary_path
            )
        with open_file(QUERIES_FILE) as handle:
            queries = pq.read_table(handle).cast(QUERIES_SCHEMA)
        with open_file(JUDGMENTS_FILE) as handle:
            judgments = pq.read_table(handle).cast(JUDGMENTS_SCHEMA)
    return Dataset(summary, queries, judgments)


@contextmanager
def _folder_files(folder: Path) -> Iterator[Callable[[str], IO[bytes]]]:
    directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)

    def open_file(name: str) -> IO[bytes]:
        return os.fdopen(os.open(name, os.O_RDONLY, dir_fd=directory), "rb")

    try:
        yield open_file
    finally:
        os.close(directory)
