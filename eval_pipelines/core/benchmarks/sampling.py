"""Choose the logged sessions a benchmark replays: filter and sample them in DuckDB SQL.

A session is one logged execution (its query, the ranking the user saw and its interactions), keyed by
execution_id. Its taxonomy node is the first of its taxonomy_node_ids, or null when it has none.

Filter (all conditions hold): retriever_id in retriever_ids; taxonomy_node_ids shares at least one id
with taxonomy_node_ids; start <= created_at <= end (UTC; a naive datetime is UTC); and the number of the
session's interaction rows whose type is in counted_types is >= min_interactions. An absent (None) or
empty retriever_ids / taxonomy_node_ids list restricts nothing.

Strategies, all deterministic given (data, filter, count, seed), on any machine:
- random: the `count` sessions with the smallest md5(execution_id || ':' || seed) (hex text), ties by
  execution_id; sample_rank follows that order.
- recent: newest created_at first, ties by execution_id ascending.
- stratified: one stratum per taxonomy node (sessions without a node form the stratum reported as
  NULL_STRATUM, "(none)"). Each stratum gets a share of `count` proportional to its matching sessions,
  rounded by largest remainder (ties: node id ascending, the null stratum last); a stratum that cannot
  fill its share passes the shortfall on (see allocate_largest_remainder). Within a stratum sessions are
  taken in the random order above; sample_rank follows that random order across strata.
When fewer sessions match than requested, every match is used and a warning says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.logs.parts import local_parts
from eval_pipelines.core.logs.tables import INTERACTIONS_SCHEMA, UTC_MICROS
from eval_pipelines.core.paths import DataPaths

__all__ = [
    "DEFAULT_COUNTED_TYPES",
    "NULL_STRATUM",
    "SAMPLED_INTERACTIONS_SCHEMA",
    "SAMPLED_SESSIONS_SCHEMA",
    "STRATEGIES",
    "SessionFilter",
    "SessionSample",
    "allocate_largest_remainder",
    "query_counts",
    "sample_sessions",
]

STRATEGIES: tuple[str, ...] = ("random", "recent", "stratified")
DEFAULT_COUNTED_TYPES: frozenset[str] = frozenset({"click", "add_to_cart", "bookmark", "purchase"})
NULL_STRATUM = "(none)"

SAMPLED_SESSIONS_SCHEMA = pa.schema(
    [
        pa.field("execution_id", pa.string(), nullable=False),
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("retriever_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string()),
        pa.field("query_input", pa.string(), nullable=False),
        pa.field("query_text", pa.string(), nullable=False),
        pa.field("logged_documents", pa.list_(pa.string()), nullable=False),
        pa.field("taxonomy_node_id", pa.string()),
        pa.field("created_at", UTC_MICROS, nullable=False),
        pa.field("interaction_count", pa.int64(), nullable=False),
        pa.field("sample_rank", pa.int64(), nullable=False),
    ]
)

SAMPLED_INTERACTIONS_SCHEMA = pa.schema(
    [INTERACTIONS_SCHEMA.field(name) for name in ("execution_id", "document_id")]
    + [INTERACTIONS_SCHEMA.field(name) for name in ("interaction_type", "position")]
)


@dataclass(frozen=True)
class SessionFilter:
    """Which logged sessions may be sampled, and how; counted_types is the effective set."""

    retriever_ids: tuple[str, ...] | None = None
    taxonomy_node_ids: tuple[str, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None
    min_interactions: int = 1
    counted_types: frozenset[str] = DEFAULT_COUNTED_TYPES
    strategy: str = "random"


@dataclass
class SessionSample:
    """The sampled sessions (ordered by sample_rank), their counted interactions and sampling facts."""

    sessions: pa.Table
    interactions: pa.Table
    matched: int
    requested: int
    seed: int
    strategy: str
    warnings: list[str] = field(default_factory=list)
    allocation: dict[str, int] | None = None

    def facts(self) -> dict[str, Any]:
        """How the sample came out, as it is kept with the sessions table (and shown in the record)."""
        return {
            "sampled": self.sessions.num_rows,
            "requested": self.requested,
            "matched": self.matched,
            "strategy": self.strategy,
            "seed": self.seed,
            "warnings": self.warnings,
            "allocation": self.allocation,
        }


# The md5 of this text orders sessions for random sampling; the seed is bound as a parameter.
_RANDOM_KEY = "md5(execution_id || ':' || $seed)"


def sample_sessions(
    paths: DataPaths, session_filter: SessionFilter, count: int, seed: int
) -> SessionSample:
    """Filter the ingested sessions and sample `count` of them; raise InvalidInputError on bad input."""
    _check_arguments(session_filter, count, seed)
    with _logs(paths) as con:
        return _sample(con, session_filter, count, seed)


# Execution columns whose distinct values query_counts may count sessions by.
QUERY_COLUMNS: tuple[str, ...] = ("query_text", "query_input")


def query_counts(
    paths: DataPaths, session_filter: SessionFilter, columns: tuple[str, ...] = ("query_text",)
) -> pa.Table:
    """Sessions per distinct value of `columns` among every session the filter matches: the
    population a sample is drawn from, with the sampler's own filter SQL (column `sessions`)."""
    _check_arguments(session_filter, 1, 0)
    unknown = [c for c in columns if c not in QUERY_COLUMNS]
    if unknown or not columns:
        raise ValueError(f"columns: {list(columns)} must be some of {list(QUERY_COLUMNS)}")
    matching_sql, params = _matching_sessions_sql(session_filter)
    selected = ", ".join(f"e.{c}" for c in columns)
    with _logs(paths) as con:
        return con.sql(
            f"""
            WITH matched AS ({matching_sql})
            SELECT {selected}, count(*) AS sessions
            FROM matched m JOIN logged_executions e ON e.execution_id = m.execution_id
            GROUP BY ALL ORDER BY ALL
            """,
            params=params,
        ).to_arrow_table()


@contextmanager
def _logs(paths: DataPaths) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with the ingested logs as views logged_executions, logged_interactions."""
    execution_files = local_parts(paths, "executions")
    if not execution_files:
        raise InvalidInputError(
            f"no logged executions were ingested (no Parquet files in"
            f" {paths.log_table_dir('executions')}); ingest logs first with"
            " `eval-pipelines ingest executions FILE...`"
        )
    interaction_files = local_parts(paths, "interactions")
    with duckdb.connect(":memory:") as con:
        con.execute("SET TimeZone = 'UTC'")
        con.read_parquet([str(f) for f in execution_files]).create_view("logged_executions")
        if interaction_files:
            source = con.read_parquet([str(f) for f in interaction_files])
        else:
            source = con.from_arrow(INTERACTIONS_SCHEMA.empty_table())
        source.create_view("logged_interactions")
        yield con


def allocate_largest_remainder(
    available: Mapping[str | None, int],
    total: int,
    weights: Mapping[str | None, int] | None = None,
) -> dict[str | None, int]:
    """Split total over strata in proportion to weights (default: available), capped by available.

    Shares are floor(total * w / sum w) plus one for the largest remainders (ties: stratum id
    ascending, None last). A stratum whose share exceeds what it has keeps all it has, and the
    shortfall is split the same way over the strata with spare capacity, again until it is placed or
    no capacity is left. With weights == available no stratum ever overflows (each share is < its
    size when total < sum); other weights (e.g. target proportions) can overflow.
    """
    weights = _checked_weights(available, total, weights)
    order = sorted(available, key=_stratum_order)
    allocation = dict.fromkeys(order, 0)
    remaining = min(total, sum(available.values()))
    for _ in range(len(order) + 1):
        open_strata = [s for s in order if allocation[s] < available[s]]
        if remaining == 0 or not open_strata:
            break
        share_weights = {s: weights.get(s, 0) for s in open_strata}
        if sum(share_weights.values()) <= 0:
            share_weights = {s: available[s] - allocation[s] for s in open_strata}
        for stratum, share in _largest_remainder(share_weights, remaining).items():
            allocation[stratum] += share
        remaining = _cap_at_available(allocation, available, open_strata)
    return allocation


def _checked_weights(
    available: Mapping[str | None, int], total: int, weights: Mapping[str | None, int] | None
) -> dict[str | None, int]:
    if total < 0:
        raise InvalidInputError(f"total: expected an integer >= 0, got {total}")
    for stratum, size in available.items():
        if size < 0:
            raise InvalidInputError(f"available[{stratum!r}]: expected >= 0, got {size}")
    weights = dict(available) if weights is None else dict(weights)
    unknown = set(weights) - set(available)
    if unknown:
        raise InvalidInputError(f"weights: strata {sorted(map(str, unknown))} are not in available")
    return weights


def _cap_at_available(
    allocation: dict[str | None, int],
    available: Mapping[str | None, int],
    strata: list[str | None],
) -> int:
    """Cut each stratum's share to what it has; returns the overflow still to place."""
    overflow = 0
    for stratum in strata:
        excess = allocation[stratum] - available[stratum]
        if excess > 0:
            allocation[stratum] = available[stratum]
            overflow += excess
    return overflow


def _stratum_order(stratum: str | None) -> tuple[bool, str]:
    return (stratum is None, stratum or "")


def _largest_remainder(weights: Mapping[str | None, int], total: int) -> dict[str | None, int]:
    """Hamilton's method in integers, so the result does not depend on float rounding."""
    weight_sum = sum(weights.values())
    shares = {s: total * w // weight_sum for s, w in weights.items()}
    left = total - sum(shares.values())
    by_remainder = sorted(
        weights, key=lambda s: (-(total * weights[s] % weight_sum), _stratum_order(s))
    )
    for stratum in by_remainder[:left]:
        shares[stratum] += 1
    return shares


def _check_arguments(session_filter: SessionFilter, count: int, seed: int) -> None:
    if session_filter.strategy not in STRATEGIES:
        raise InvalidInputError(
            f"sample_strategy: {session_filter.strategy!r} is not one of {', '.join(STRATEGIES)}"
        )
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidInputError(f"session_count: expected an integer >= 1, got {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidInputError(f"seed: expected an integer, got {seed!r}")
    minimum = session_filter.min_interactions
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
        raise InvalidInputError(f"min_interactions: expected an integer >= 0, got {minimum!r}")
    for name in ("retriever_ids", "taxonomy_node_ids", "counted_types"):
        _string_items(getattr(session_filter, name), name)
    if not session_filter.counted_types:
        raise InvalidInputError("interaction_types: the set of counted types is empty")
    start, end = _utc(session_filter.start, "start"), _utc(session_filter.end, "end")
    if start is not None and end is not None and start > end:
        raise InvalidInputError(
            f"time_range: start {start.isoformat()} is after end {end.isoformat()}"
        )


def _string_items(values: Iterable[Any] | None, name: str) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        raise InvalidInputError(f"{name}: expected a list of strings, got a string {values!r}")
    items = list(values)
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise InvalidInputError(f"{name}[{index}]: expected a non-empty string, got {item!r}")
    return sorted(set(items))


def _utc(moment: datetime | None, name: str) -> datetime | None:
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        raise InvalidInputError(f"time_range.{name}: expected a datetime, got {moment!r}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _matching_sessions_sql(session_filter: SessionFilter) -> tuple[str, dict[str, Any]]:
    """SQL (fixed text, values as named parameters) for the matching sessions and counted totals."""
    conditions: list[str] = []
    params: dict[str, Any] = {
        "counted": _string_items(session_filter.counted_types, "counted_types"),
        "min_interactions": session_filter.min_interactions,
    }
    retriever_ids = _string_items(session_filter.retriever_ids, "retriever_ids")
    if retriever_ids:
        conditions.append("list_contains($retriever_ids, retriever_id)")
        params["retriever_ids"] = retriever_ids
    node_ids = _string_items(session_filter.taxonomy_node_ids, "taxonomy_node_ids")
    if node_ids:
        conditions.append("list_has_any(taxonomy_node_ids, $node_ids)")
        params["node_ids"] = node_ids
    start, end = _utc(session_filter.start, "start"), _utc(session_filter.end, "end")
    if start is not None:
        conditions.append("created_at >= $start")
        params["start"] = start
    if end is not None:
        conditions.append("created_at <= $end")
        params["end"] = end
    where = " AND ".join(conditions) or "true"
    join = "LEFT JOIN" if session_filter.min_interactions == 0 else "JOIN"
    sql = f"""
        WITH filtered AS (
            SELECT execution_id, created_at, taxonomy_node_ids[1] AS taxonomy_node_id
            FROM logged_executions WHERE {where}
        ), counted AS (
            SELECT execution_id, count(*) AS interaction_count
            FROM logged_interactions
            WHERE list_contains($counted, interaction_type)
            GROUP BY execution_id
        )
        SELECT f.execution_id, f.created_at, f.taxonomy_node_id,
               coalesce(c.interaction_count, 0) AS interaction_count
        FROM filtered f {join} counted c ON c.execution_id = f.execution_id
        WHERE coalesce(c.interaction_count, 0) >= $min_interactions
    """
    return sql, params


_SELECT_RANDOM = f"""
    CREATE TEMP TABLE selected AS
    SELECT execution_id, row_number() OVER (ORDER BY random_key, execution_id) - 1 AS sample_rank
    FROM (
        SELECT execution_id, {_RANDOM_KEY} AS random_key FROM matched
        ORDER BY random_key, execution_id LIMIT $count
    )
"""

_SELECT_RECENT = """
    CREATE TEMP TABLE selected AS
    SELECT execution_id,
           row_number() OVER (ORDER BY created_at DESC, execution_id) - 1 AS sample_rank
    FROM (
        SELECT execution_id, created_at FROM matched
        ORDER BY created_at DESC, execution_id LIMIT $count
    )
"""

_SELECT_STRATIFIED = f"""
    CREATE TEMP TABLE selected AS
    WITH allocation AS (
        SELECT unnest($nodes::VARCHAR[]) AS taxonomy_node_id, unnest($takes::BIGINT[]) AS take
    ), ranked AS (
        SELECT execution_id, taxonomy_node_id, {_RANDOM_KEY} AS random_key,
               row_number() OVER (
                   PARTITION BY taxonomy_node_id ORDER BY {_RANDOM_KEY}, execution_id
               ) AS rank_in_stratum
        FROM matched
    )
    SELECT r.execution_id,
           row_number() OVER (ORDER BY r.random_key, r.execution_id) - 1 AS sample_rank
    FROM ranked r
    JOIN allocation a ON r.taxonomy_node_id IS NOT DISTINCT FROM a.taxonomy_node_id
    WHERE r.rank_in_stratum <= a.take
"""

_SESSIONS = """
    SELECT e.execution_id, e.session_id, e.retriever_id, e.user_id, e.query_input, e.query_text,
           e.documents AS logged_documents, e.taxonomy_node_ids[1] AS taxonomy_node_id,
           e.created_at, m.interaction_count, s.sample_rank
    FROM selected s
    JOIN matched m ON m.execution_id = s.execution_id
    JOIN logged_executions e ON e.execution_id = s.execution_id
    ORDER BY s.sample_rank
"""

_INTERACTIONS = """
    SELECT i.execution_id, i.document_id, i.interaction_type, i.position
    FROM logged_interactions i
    JOIN selected s ON s.execution_id = i.execution_id
    WHERE list_contains($counted, i.interaction_type)
    ORDER BY s.sample_rank, i.position, i.document_id, i.interaction_type
"""


def _sample(
    con: duckdb.DuckDBPyConnection, session_filter: SessionFilter, count: int, seed: int
) -> SessionSample:
    matching_sql, params = _matching_sessions_sql(session_filter)
    con.execute(f"CREATE TEMP TABLE matched AS {matching_sql}", params)
    (matched,) = _one_row(con, "SELECT count(*) FROM matched")
    warnings: list[str] = []
    if matched == 0:
        warnings.append(f"no sessions match the filter (requested {count})")
    elif matched < count:
        warnings.append(
            f"only {matched} sessions match the filter; using all of them (requested {count})"
        )

    allocation: dict[str, int] | None = None
    strategy = session_filter.strategy
    if strategy == "random":
        con.execute(_SELECT_RANDOM, {"seed": str(seed), "count": count})
    elif strategy == "recent":
        con.execute(_SELECT_RECENT, {"count": count})
    else:
        per_stratum = _stratum_sizes(con)
        shares = allocate_largest_remainder(per_stratum, count)
        nodes = list(shares)
        con.execute(
            _SELECT_STRATIFIED,
            {"seed": str(seed), "nodes": nodes, "takes": [shares[n] for n in nodes]},
        )
        allocation = _labelled(shares)

    sessions = con.sql(_SESSIONS).to_arrow_table().cast(SAMPLED_SESSIONS_SCHEMA)
    counted = _string_items(session_filter.counted_types, "counted_types")
    interactions = (
        con.sql(_INTERACTIONS, params={"counted": counted})
        .to_arrow_table()
        .cast(SAMPLED_INTERACTIONS_SCHEMA)
    )
    warnings += mixed_retrievers(sessions)
    return SessionSample(
        sessions=sessions,
        interactions=interactions,
        matched=matched,
        requested=count,
        seed=seed,
        strategy=strategy,
        warnings=warnings,
        allocation=allocation,
    )


def mixed_retrievers(sessions: pa.Table) -> list[str]:
    """A warning when the sample holds sessions served by more than one retriever (or application):
    one baseline replayed over another ranker's pages is scored against what that ranker showed."""
    counts = pc.value_counts(sessions.column("retriever_id").combine_chunks()).to_pylist()
    if len(counts) <= 1:
        return []
    shares = ", ".join(
        f"{row['values']} {row['counts']}"
        for row in sorted(counts, key=lambda row: (-row["counts"], row["values"]))
    )
    return [
        f"the sample mixes sessions logged by {len(counts)} retrievers ({shares}): filter"
        " session_filter.retriever_ids (--retriever-filter) to replay one ranker's traffic"
    ]


def _one_row(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    row = con.execute(sql).fetchone()
    if row is None:
        raise RuntimeError(f"expected one row from: {sql}")
    return row


def _stratum_sizes(con: duckdb.DuckDBPyConnection) -> dict[str | None, int]:
    rows = con.execute(
        "SELECT taxonomy_node_id, count(*) FROM matched GROUP BY taxonomy_node_id"
    ).fetchall()
    return {node: size for node, size in rows}


def _labelled(shares: Mapping[str | None, int]) -> dict[str, int]:
    """Report strata by node id; the null stratum gets NULL_STRATUM, suffixed if a node has that id."""
    label = NULL_STRATUM
    suffix = 1
    while label in shares:
        label = f"{NULL_STRATUM}#{suffix}"
        suffix += 1
    return {label if node is None else node: share for node, share in shares.items()}
