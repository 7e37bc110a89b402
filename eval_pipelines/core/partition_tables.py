"""A request's partition tables on any filesystem fsspec knows (through UPath): the local data
directory or object storage (S3), by the same code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from eval_pipelines.core.storage import write_parquet_atomic

FACTS_KEY = b"eval_pipelines.facts"
LOCAL_PROTOCOLS = {"", "file", "local"}


class PartitionTables:
    """`<root>/<record id>/<table>.parquet`, written whole (atomically where the filesystem can)."""

    def __init__(self, root: UPath | Path | str) -> None:
        self.root = UPath(root)

    def path(self, record_id: str, name: str) -> UPath:
        return self.root / record_id / f"{name}.parquet"

    @property
    def is_local(self) -> bool:
        return self.root.protocol in LOCAL_PROTOCOLS

    def write(
        self, record_id: str, name: str, table: pa.Table, facts: dict[str, Any] | None = None
    ) -> UPath:
        """Facts about how the table was made (a sample's seed and match count) travel in its
        schema metadata, not in a side file."""
        if facts is not None:
            metadata = {
                **(table.schema.metadata or {}),
                FACTS_KEY: json.dumps(facts, sort_keys=True),
            }
            table = table.replace_schema_metadata(metadata)
        target = self.path(record_id, name)
        # A rename over the old file, or one whole-object upload: readers never see half a table.
        # (Writing through target.open() would not do: a writer failing mid-table still closes its
        # stream, and closing an object-store stream commits what was written so far.)
        write_parquet_atomic(table, Path(target.path) if self.is_local else target)
        return target

    def read(self, record_id: str, name: str) -> pa.Table:
        target = self.path(record_id, name)
        if self.is_local:
            return pq.read_table(target.path)
        # One GET of the whole object: one version of it, even while a re-run replaces it (reads
        # through target.open() fail with FileExpired when the object changes between two ranges).
        return pq.read_table(pa.BufferReader(target.fs.cat_file(target.path)))

    def read_facts(self, record_id: str, name: str) -> dict[str, Any]:
        """The facts written with a table (from its footer, not its rows)."""
        target = self.path(record_id, name)
        with target.open("rb") as source:
            metadata = pq.read_schema(source).metadata or {}
        return json.loads(metadata.get(FACTS_KEY, b"{}"))
