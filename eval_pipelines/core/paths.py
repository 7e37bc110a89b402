"""Every path the project writes, resolved from one data root (EVAL_PIPELINES_DATA): a local or
shared file-system directory, or an S3 prefix (s3://bucket/prefix, through UPath and s3fs).

What cannot live on object storage (DAGSTER_HOME's default, the DuckDB warehouse file, staging and
index caches) goes to a local cache directory when the root is remote.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from upath import UPath

from eval_pipelines.core.errors import InvalidInputError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA_ENV_VAR = "EVAL_PIPELINES_DATA"
CACHE_ENV_VAR = "EVAL_PIPELINES_CACHE"
ENDPOINT_ENV_VAR = "AWS_ENDPOINT_URL"
REMOTE_SCHEMES = ("s3",)
# A data root and every path under it: a pathlib.Path on a file system, a UPath on object storage.
DataPath = Path | UPath

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


_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


def is_url(text: str) -> bool:
    """True for 'scheme://...': as a Path it would become a local folder named 'scheme:'."""
    return bool(_URL.match(text))


def data_root(value: str, source: str) -> DataPath:
    """A data root from a path or an s3:// URL; any other URL is refused (it would otherwise become
    a local folder named 'gs:' and everything would be written there silently)."""
    url = _URL.match(value)
    if not url:
        return Path(value).expanduser().resolve()
    scheme = url.group(1).lower()
    if scheme not in REMOTE_SCHEMES:
        raise InvalidInputError(
            f"{source}: {shown(value)} is a {scheme}:// URL; a data root is a path or s3://bucket/prefix"
        )
    bucket, _, prefix = value[url.end() :].partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise InvalidInputError(f"{source}: {shown(value)} does not name a valid S3 bucket")
    # s3fs keeps listings for the life of the process by default: another process's writes would
    # stay invisible, and a file it rewrote unreadable (FileExpired on the cached ETag). It also
    # reuses one filesystem per set of arguments: naming the endpoint keeps a root on one store from
    # reaching another one an earlier root in this process used.
    options: dict[str, object] = {"use_listings_cache": False}
    if os.environ.get(ENDPOINT_ENV_VAR):
        options["endpoint_url"] = os.environ[ENDPOINT_ENV_VAR]
    return UPath(f"s3://{bucket}/{prefix.strip('/')}".rstrip("/"), **options)


def is_remote(path: DataPath) -> bool:
    """True for a path on object storage (no renames, no flock: single-object PUTs and leases)."""
    return not isinstance(path, Path) or getattr(path, "protocol", "") in REMOTE_SCHEMES


def default_data_dir() -> DataPath:
    configured = os.environ.get(DATA_ENV_VAR)
    return data_root(configured, DATA_ENV_VAR) if configured else PROJECT_ROOT / "data"


@dataclass(frozen=True)
class DataPaths:
    """The layout under the data directory; creating a DataPaths touches nothing on disk."""

    root: DataPath

    @classmethod
    def from_env(cls) -> DataPaths:
        return cls(default_data_dir())

    @property
    def is_remote(self) -> bool:
        return is_remote(self.root)

    @property
    def local_cache(self) -> Path:
        """The root itself when local; else a folder of this machine named after the root's URL."""
        if not self.is_remote:
            return Path(self.root)
        url = str(self.root)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", url.split("://", 1)[1]).strip("-")[:60]
        digest = hashlib.sha256(url.encode()).hexdigest()[:8]
        base = os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "eval-pipelines"
        return Path(base).expanduser().resolve() / f"{slug}-{digest}"

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.local_cache / "dagster_home")

    @property
    def logs_dir(self) -> DataPath:
        return self.root / "logs"

    def log_table_dir(self, table: str) -> DataPath:
        """Normalized log tables: executions, interactions, quarantine."""
        return self.logs_dir / table

    @property
    def collections_dir(self) -> DataPath:
        return self.root / "collections"

    def collection_dir(self, name: str) -> DataPath:
        return self.collections_dir / validate_id(name, "collection")

    @property
    def retrievers_dir(self) -> DataPath:
        return self.root / "retrievers"

    @property
    def executions_dir(self) -> DataPath:
        return self.root / "executions"

    def retriever_executions_dir(self, retriever_id: str) -> DataPath:
        return self.executions_dir / validate_id(retriever_id, "retriever_id")

    @property
    def datasets_dir(self) -> DataPath:
        return self.root / "datasets"

    def dataset_dir(self, name: str) -> DataPath:
        return self.datasets_dir / validate_id(name, "dataset")

    def benchmark_replay_chunks_dir(self, benchmark_id: str) -> DataPath:
        """Finished replay chunks of one benchmark, kept so a re-run of its partition resumes."""
        return (
            self.root / "benchmarks" / validate_id(benchmark_id, "benchmark_id") / "replay_chunks"
        )

    @property
    def demo_dir(self) -> DataPath:
        return self.root / "demo"

    @property
    def warehouse(self) -> Path:
        """DuckDB cannot write its file to object storage, so a remote root's warehouse is local."""
        return self.local_cache / "warehouse.duckdb"
