"""The normalized log tables: their Arrow schemas and the row tuples that fill them."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import pyarrow as pa

UTC_MICROS = pa.timestamp("us", tz="UTC")

# An execution's metadata key recording that its served order was randomized (how, e.g.
# {"method": "shuffle_top_k", "k": 12}), as systems running exploration traffic log it.
EXPLORATION_KEY = "exploration"
# The interaction type of a rendered result (UBI's `impression` event): weight 0, never a signal.
IMPRESSION = "impression"

EXECUTIONS_SCHEMA = pa.schema(
    [
        pa.field("execution_id", pa.string(), nullable=False),
        pa.field("retriever_id", pa.string(), nullable=False),
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string()),
        pa.field("query_text", pa.string(), nullable=False),
        pa.field("query_input", pa.string(), nullable=False),
        pa.field("documents", pa.list_(pa.string()), nullable=False),
        pa.field("taxonomy_node_ids", pa.list_(pa.string()), nullable=False),
        pa.field("created_at", UTC_MICROS, nullable=False),
        pa.field("metadata", pa.string()),
    ]
)

INTERACTIONS_SCHEMA = pa.schema(
    [
        pa.field("interaction_id", pa.string(), nullable=False),
        pa.field("execution_id", pa.string(), nullable=False),
        pa.field("document_id", pa.string(), nullable=False),
        pa.field("interaction_type", pa.string(), nullable=False),
        pa.field("position", pa.int32(), nullable=False),
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string()),
        pa.field("timestamp", UTC_MICROS, nullable=False),
        pa.field("metadata", pa.string()),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("table", pa.string(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("line", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=False),
    ]
)


class ExecutionRow(NamedTuple):
    """One normalized execution, fields in EXECUTIONS_SCHEMA order."""

    execution_id: str
    retriever_id: str
    session_id: str
    user_id: str | None
    query_text: str
    query_input: str
    documents: list[str]
    taxonomy_node_ids: list[str]
    created_at: datetime
    metadata: str | None


class InteractionRow(NamedTuple):
    """One normalized interaction (one type), fields in INTERACTIONS_SCHEMA order."""

    interaction_id: str
    execution_id: str
    document_id: str
    interaction_type: str
    position: int
    session_id: str
    user_id: str | None
    timestamp: datetime
    metadata: str | None
