"""Every path the project writes, resolved from one data directory (EVAL_PIPELINES_DATA)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from eval_pipelines.core.errors import InvalidInputError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA_ENV_VAR = "EVAL_PIPELINES_DATA"

# Ids reach file names and SQL, so they are kept to a safe alphabet.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
ID_RULE = "1-128 characters: letters, digits, '_', '-', '.'; starting with a letter or digit"
SHOWN_CHARACTERS = 80


def shown(value: object, limit: int = SHOWN_CHARACTERS) -> str:
    """repr(value) for an error message, shortened when long: a 1 MB id must not become a 1 MB message."""
    text = repr(value)
    if len(text) <= limit:
        return text
    if isinstance(value, str | bytes):
        size = f" ({len(value)} characters)"
    elif isinstance(value, list | tuple | dict):
        size = f" ({len(value)} items)"
    else:
        size = ""
    return f"{text[: limit - 10]}...{text[-7:]}{size}"


def shown_field(key: object) -> str:
    """A field name as a message names it; a huge or unprintable key is quoted and shortened."""
    text = str(key)
    return text if len(text) <= SHOWN_CHARACTERS and text.isprintable() else shown(key)


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and bool(_SAFE_ID.fullmatch(value)) and ".." not in value


def validate_id(value: object, field: str) -> str:
    """Return value when it is safe to use in a file name; else raise InvalidInputError naming field."""
    if not isinstance(value, str) or not is_valid_id(value):
        raise InvalidInputError(f"{field}: {shown(value)} is not a valid id ({ID_RULE})")
    return value


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")


def local_data_root(value: str, source: str) -> Path:
    """A data root as a local (or shared file-system) path. A URL such as s3://bucket/prefix would
    otherwise become a local folder named 's3:' and everything would be written there silently."""
    if _URL.match(value):
        raise InvalidInputError(
            f"{source}: {shown(value)} is a URL; data roots on object storage are not supported yet"
            " (README: Deploying beyond one machine): give a local or shared file-system path"
        )
    return Path(value).expanduser().resolve()


def default_data_dir() -> Path:
    configured = os.environ.get(DATA_ENV_VAR)
    return local_data_root(configured, DATA_ENV_VAR) if configured else PROJECT_ROOT / "data"


@dataclass(frozen=True)
class DataPaths:
    """The layout under the data directory; creating a DataPaths touches nothing on disk."""

    root: Path

    @classmethod
    def from_env(cls) -> DataPaths:
        return cls(default_data_dir())

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.root / "dagster_home")

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def log_table_dir(self, table: str) -> Path:
        """Normalized log tables: executions, interactions, quarantine."""
        return self.logs_dir / table

    @property
    def collections_dir(self) -> Path:
        return self.root / "collections"

    def collection_dir(self, name: str) -> Path:
        return self.collections_dir / validate_id(name, "collection")

    @property
    def retrievers_dir(self) -> Path:
        return self.root / "retrievers"

    @property
    def executions_dir(self) -> Path:
        return self.root / "executions"

    def retriever_executions_dir(self, retriever_id: str) -> Path:
        return self.executions_dir / validate_id(retriever_id, "retriever_id")

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    def dataset_dir(self, name: str) -> Path:
        return self.datasets_dir / validate_id(name, "dataset")

    def benchmark_replay_chunks_dir(self, benchmark_id: str) -> Path:
        """Finished replay chunks of one benchmark, kept so a re-run of its partition resumes."""
        return (
            self.root / "benchmarks" / validate_id(benchmark_id, "benchmark_id") / "replay_chunks"
        )

    @property
    def demo_dir(self) -> Path:
        return self.root / "demo"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"
