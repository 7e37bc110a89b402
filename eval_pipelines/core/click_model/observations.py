"""What the logs say about examination: served documents at their positions, clicked or not, as cells.

Every served document of every logged execution is one impression at its 0-based position; it is
clicked when the execution has an interaction of a CLICK_TYPES type on that document at that
position. The aggregation runs in DuckDB over the stored Parquet parts, so the fit sees
(query, document, position) cells with counts, never rows. Queries are keyed by
query_keys.normalized_text, computed in Arrow over the distinct logged texts and joined in, so the
key is exactly the one sessions and inference use.

An impression is randomized when its search records exploration traffic
(`{"exploration": {"method": "shuffle_top_k", "k": K}}` in the execution's metadata) and its position
is within the shuffled top K: there, position is independent of relevance by design.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.logs.parts import local_parts, stored_part
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.query_keys import normalized_text
from eval_pipelines.core.warehouse import (
    UnreadableFile,
    UnreadableTableError,
    parquet_problem,
    parquet_select,
)

CLICK_TYPES: tuple[str, ...] = ("click", "add_to_cart", "purchase")
EXPLORATION_KEY = "exploration"
SHUFFLE_TOP_K = "shuffle_top_k"
LOG_TABLES: dict[str, str] = {"executions": "log_executions", "interactions": "log_interactions"}


def _select(paths: DataPaths, table: str) -> str | None:
    files = local_parts(paths, table)
    bad = [
        UnreadableFile(LOG_TABLES[table], stored_part(paths, table, f), problem)
        for f in files
        if (problem := parquet_problem(f)) is not None
    ]
    if bad:
        raise UnreadableTableError(bad)
    return parquet_select(files) if files else None


@contextmanager
def log_connection(paths: DataPaths) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with views log_executions (with a metadata column, null in parts written
    before executions had one), log_interactions and query_keys (query_text -> query_key)."""
    executions = _select(paths, "executions")
    if executions is None:
        raise InvalidInputError(
            f"{paths.log_table_dir('executions')}: no logged executions; ingest logs first "
            "(eval-pipelines ingest executions FILE...)"
        )
    interactions = _select(paths, "interactions")
    with duckdb.connect(":memory:") as con:
        con.execute(f"CREATE VIEW raw_executions AS {executions}")
        columns = {row[0] for row in con.execute("DESCRIBE raw_executions").fetchall()}
        metadata = "" if "metadata" in columns else ", CAST(NULL AS VARCHAR) AS metadata"
        con.execute(f"CREATE VIEW log_executions AS SELECT *{metadata} FROM raw_executions")
        if interactions is None:
            con.execute(
                "CREATE VIEW log_interactions AS SELECT NULL::VARCHAR AS execution_id,"
                " NULL::VARCHAR AS session_id, NULL::VARCHAR AS document_id,"
                " NULL::VARCHAR AS interaction_type, NULL::INTEGER AS position WHERE false"
            )
        else:
            con.execute(f"CREATE VIEW log_interactions AS {interactions}")
        texts = con.sql("SELECT DISTINCT query_text FROM log_executions").to_arrow_table()
        texts = texts.column("query_text").combine_chunks()
        keys = pa.table({"query_text": texts, "query_key": normalized_text(texts)})
        con.register("query_keys", keys)
        yield con


SERVED_SQL = f"""
    SELECT e.execution_id, e.session_id, k.query_key,
        unnest(e.documents) AS document_id,
        (generate_subscripts(e.documents, 1) - 1)::INTEGER AS position,
        coalesce(json_extract_string(e.metadata, '$.{EXPLORATION_KEY}.method') = '{SHUFFLE_TOP_K}',
            false) AS shuffled,
        coalesce(TRY_CAST(json_extract(e.metadata, '$.{EXPLORATION_KEY}.k') AS INTEGER), 0) AS shuffle_k,
        json_extract(e.metadata, '$.{EXPLORATION_KEY}') IS NOT NULL AS exploration
    FROM log_executions e JOIN query_keys k USING (query_text)
"""

CELLS_SQL = f"""
    WITH served AS ({SERVED_SQL}),
    clicked AS (
        SELECT DISTINCT execution_id, document_id, position FROM log_interactions
        WHERE interaction_type IN ({", ".join(f"'{t}'" for t in CLICK_TYPES)})
    ),
    rows AS (
        SELECT s.query_key, s.document_id, s.position,
            s.shuffled AND s.position < s.shuffle_k AS randomized,
            c.execution_id IS NOT NULL AS clicked
        FROM served s LEFT JOIN clicked c USING (execution_id, document_id, position)
        WHERE s.position < $max_position
    )
    SELECT (dense_rank() OVER (ORDER BY query_key) - 1)::BIGINT AS query,
        (dense_rank() OVER (ORDER BY query_key, document_id) - 1)::BIGINT AS pair,
        query_key, document_id, position,
        count(*)::DOUBLE AS impressions,
        count(*) FILTER (WHERE clicked)::DOUBLE AS clicks,
        count(*) FILTER (WHERE randomized)::DOUBLE AS randomized_impressions,
        count(*) FILTER (WHERE randomized AND clicked)::DOUBLE AS randomized_clicks
    FROM rows
    GROUP BY query_key, document_id, position
    ORDER BY query_key, document_id, position
"""

SEARCHES_SQL = f"""
    WITH searches AS (
        SELECT json_extract_string(metadata, '$.{EXPLORATION_KEY}.method') AS method,
            json_extract(metadata, '$.{EXPLORATION_KEY}') IS NOT NULL AS exploration
        FROM log_executions
    )
    SELECT count(*) AS searches,
        count(*) FILTER (WHERE method = '{SHUFFLE_TOP_K}') AS randomized_searches,
        count(*) FILTER (WHERE exploration AND coalesce(method, '') <> '{SHUFFLE_TOP_K}')
            AS unrecognized_exploration
    FROM searches
"""


@dataclass(frozen=True)
class Cells:
    """(query, document, position) cells with counts; pair and query are dense indexes, position
    0-based. Sorted by query, document, position, so equal logs give equal arrays."""

    query: np.ndarray
    pair: np.ndarray
    position: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray
    randomized_impressions: np.ndarray
    randomized_clicks: np.ndarray
    n_queries: int
    n_pairs: int
    searches: int
    randomized_searches: int
    unrecognized_exploration: int

    @property
    def n_positions(self) -> int:
        return int(self.position.max()) + 1 if self.position.size else 0


def load_cells(paths: DataPaths, max_position: int | None = None) -> Cells:
    """The stored logs' cells, positions below max_position (0-based) when given."""
    with log_connection(paths) as con:
        limit = max_position if max_position is not None else 2**31 - 1
        table = con.sql(CELLS_SQL, params={"max_position": limit}).to_arrow_table()
        searches, randomized, unrecognized = con.execute(SEARCHES_SQL).fetchall()[0]
    query = table.column("query").to_numpy()
    pair = table.column("pair").to_numpy()

    def column(name: str) -> np.ndarray:
        return table.column(name).to_numpy().astype(np.float64)

    return Cells(
        query=query,
        pair=pair,
        position=table.column("position").to_numpy().astype(np.int64),
        impressions=column("impressions"),
        clicks=column("clicks"),
        randomized_impressions=column("randomized_impressions"),
        randomized_clicks=column("randomized_clicks"),
        n_queries=int(query.max()) + 1 if query.size else 0,
        n_pairs=int(pair.max()) + 1 if pair.size else 0,
        searches=int(searches),
        randomized_searches=int(randomized),
        unrecognized_exploration=int(unrecognized),
    )
