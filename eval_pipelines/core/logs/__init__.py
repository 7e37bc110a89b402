"""Log ingestion: read logged executions and interactions into normalized Parquet, quarantining bad rows."""

from eval_pipelines.core.logs.duplicate_ids import DuplicateIds, find_duplicate_ids
from eval_pipelines.core.logs.fields import canonical_json
from eval_pipelines.core.logs.ingest import (
    LOG_TABLES,
    IngestReport,
    LogParseError,
    LogTable,
    ingest_files,
)
from eval_pipelines.core.logs.quarantine import QUARANTINE_REASONS
from eval_pipelines.core.logs.readers import FORMATS
from eval_pipelines.core.logs.tables import (
    EXECUTIONS_SCHEMA,
    INTERACTIONS_SCHEMA,
    QUARANTINE_SCHEMA,
)

__all__ = [
    "EXECUTIONS_SCHEMA",
    "FORMATS",
    "INTERACTIONS_SCHEMA",
    "LOG_TABLES",
    "QUARANTINE_REASONS",
    "QUARANTINE_SCHEMA",
    "DuplicateIds",
    "IngestReport",
    "LogParseError",
    "LogTable",
    "canonical_json",
    "find_duplicate_ids",
    "ingest_files",
]
