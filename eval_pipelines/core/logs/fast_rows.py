"""The contract's row rules as DuckDB SQL over a block of JSON lines: the ingest's hot path.

A line takes this path only when its shape is plain (valid JSON object, no duplicate keys, no escapes,
no long numbers, ids as strings, ISO timestamps in the common spelling, ...); every other line goes
to the exact Python rules (contract.py), which also word each quarantine reason. So the fast path
never decides a rejection: it accepts what the Python rules would accept, with the same normalized
values (tests/core/logs/test_fast_rows_agree.py compares the two on odd rows).
JSON-valued fields (query_input, metadata) are canonicalized by the Python rules once per distinct
value in the block.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa

from eval_pipelines.core.logs.contract import _metadata, _query_input
from eval_pipelines.core.logs.quarantine import MAX_JSON_DEPTH, RowRejected
from eval_pipelines.core.logs.readers import first_wins

_EXECUTION_PATHS = (
    "execution_id",
    "retriever_id",
    "session_id",
    "user_id",
    "documents",
    "taxonomy_node_ids",
    "created_at",
)
_INTERACTION_PATHS = (
    "interaction_id",
    "execution_id",
    "document_id",
    "feature_id",
    "interaction_type",
    "position",
    "session_id",
    "user_id",
    "timestamp",
)
_TIMESTAMP = r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)?"
_TYPE = r"[A-Za-z0-9_.:-]+"
_SAFE_ID = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}"
_INT32_MAX = 2**31 - 1
# What sends a whole line to the exact rules: what Python's json could read differently (escapes may
# hide lone surrogates; deep nesting and integers of thousands of digits are refused there), or what
# is not one object. (A key repeated in an object: both sides keep the first, see readers.parse_json.)
_PLAIN_LINE = rf"""
    json_type(line) = 'OBJECT'
    AND strlen(line) <= 4000
    AND NOT contains(line, '\u')
    AND strlen(line) - strlen(replace(replace(line, '{{', ''), '[', '')) <= {MAX_JSON_DEPTH}
"""
# One CASE, not an AND: json_type() raises on text that is not JSON, and an AND may test it first.
_PLAIN_LINES = (
    'SELECT line_no, "offset", line FROM block_lines'
    f" WHERE CASE WHEN json_valid(line) THEN ({_PLAIN_LINE}) ELSE false END"
)


def _paths(names: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'$.\"{name}\"'" for name in names) + "]"


def _index(names: tuple[str, ...], name: str) -> int:
    return names.index(name) + 1


class _Fields:
    """SQL expressions over `ty` (JSON types) and `va` (values as text) of one path list."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def type(self, name: str) -> str:
        return f"ty[{_index(self.names, name)}]"

    def text(self, name: str) -> str:
        return f"va[{_index(self.names, name)}]"

    def absent(self, name: str) -> str:
        t, v = self.type(name), self.text(name)
        return f"({t} IS NULL OR {t} = 'NULL' OR ({t} = 'VARCHAR' AND {v} = ''))"

    def missing(self, name: str) -> str:
        t = self.type(name)
        return f"({t} IS NULL OR {t} = 'NULL')"

    def required_ok(self, name: str) -> str:
        return f"({self.type(name)} = 'VARCHAR' AND {self.text(name)} <> '')"

    def optional_ok(self, name: str) -> str:
        t = self.type(name)
        return f"({t} IS NULL OR {t} IN ('NULL', 'VARCHAR'))"

    def optional(self, name: str) -> str:
        return f"CASE WHEN {self.type(name)} = 'VARCHAR' THEN NULLIF({self.text(name)}, '') END"

    def string_list_ok(self, name: str) -> str:
        t, v = self.type(name), self.text(name)
        return (
            f"(CASE WHEN {t} = 'ARRAY' THEN"
            f" len(list_filter(json_type({v}, '$[*]'), lambda x: x <> 'VARCHAR')) = 0"
            f" AND NOT list_contains({self.string_list(name)}, '') ELSE false END)"
        )

    def string_list(self, name: str) -> str:
        return f"TRY_CAST(TRY_CAST({self.text(name)} AS JSON) AS VARCHAR[])"

    def timestamp_ok(self, name: str) -> str:
        v = self.text(name)
        return (
            f"({self.type(name)} = 'VARCHAR' AND regexp_full_match({v}, '{_TIMESTAMP}')"
            f" AND substr({v}, 1, 4) BETWEEN '1000' AND '9998'"
            f" AND TRY_CAST({v} AS TIMESTAMPTZ) IS NOT NULL)"
        )

    def timestamp(self, name: str) -> str:
        return f"TRY_CAST({self.text(name)} AS TIMESTAMPTZ)"


def _execution_sql() -> str:
    f = _Fields(_EXECUTION_PATHS)
    retriever_ok = (
        f"(({f.absent('retriever_id')} AND $default_retriever_id IS NOT NULL) OR"
        f" ({f.type('retriever_id')} = 'VARCHAR' AND regexp_full_match({f.text('retriever_id')},"
        f" '{_SAFE_ID}') AND NOT contains({f.text('retriever_id')}, '..')))"
    )
    taxonomy_ok = f"({f.missing('taxonomy_node_ids')} OR {f.string_list_ok('taxonomy_node_ids')})"
    fast = " AND ".join(
        [
            f.required_ok("execution_id"),
            retriever_ok,
            f.required_ok("session_id"),
            f.optional_ok("user_id"),
            f.string_list_ok("documents"),
            taxonomy_ok,
            f.timestamp_ok("created_at"),
            "query_json IS NOT NULL AND query_json <> 'null'",
        ]
    )
    return f"""
    SELECT line_no, "offset", fast,
        CASE WHEN fast THEN {f.text("execution_id")} END AS execution_id,
        CASE WHEN fast THEN coalesce({f.optional("retriever_id")}, $default_retriever_id) END
            AS retriever_id,
        CASE WHEN fast THEN {f.text("session_id")} END AS session_id,
        CASE WHEN fast THEN {f.optional("user_id")} END AS user_id,
        CASE WHEN fast THEN query_json END AS query_json,
        CASE WHEN fast THEN {f.string_list("documents")} END AS documents,
        CASE WHEN fast AND NOT {f.missing("taxonomy_node_ids")}
            THEN {f.string_list("taxonomy_node_ids")} ELSE CAST([] AS VARCHAR[]) END
            AS taxonomy_node_ids,
        CASE WHEN fast THEN {f.timestamp("created_at")} END AS created_at,
        CASE WHEN fast THEN metadata_json END AS metadata_json
    FROM (
        SELECT *, coalesce({fast}, false) AS fast FROM (
            SELECT line_no, "offset",
                json_type(line, {_paths(_EXECUTION_PATHS)}) AS ty,
                json_extract_string(line, {_paths(_EXECUTION_PATHS)}) AS va,
                json_extract(line, '$.query_input')::VARCHAR AS query_json,
                json_extract(line, '$.metadata')::VARCHAR AS metadata_json
            FROM ({_PLAIN_LINES})
        )
    )
    """


def _interaction_sql() -> str:
    f = _Fields(_INTERACTION_PATHS)
    t, v = f.type("interaction_type"), f.text("interaction_type")
    listed = f"TRY_CAST(TRY_CAST({v} AS JSON) AS VARCHAR[])"
    types_ok = (
        f"(CASE WHEN {t} = 'VARCHAR' THEN regexp_full_match({v}, '{_TYPE}')"
        f" WHEN {t} = 'ARRAY' THEN"
        f" len(list_filter(json_type({v}, '$[*]'), lambda x: x <> 'VARCHAR')) = 0"
        f" AND len({listed}) > 0"
        f" AND len(list_filter({listed}, lambda x: NOT regexp_full_match(x, '{_TYPE}'))) = 0"
        f" AND len(list_distinct(list_transform({listed}, lambda x: lower(x)))) = len({listed})"
        " ELSE false END)"
    )
    types = (
        f"CASE WHEN {t} = 'VARCHAR' THEN [lower({v})]"
        f" ELSE list_transform({listed}, lambda x: lower(x)) END"
    )
    p = f.type("position")
    position_ok = (
        f"({p} IS NULL OR {p} = 'NULL' OR ({p} = 'UBIGINT'"
        f" AND TRY_CAST({f.text('position')} AS BIGINT) <= {_INT32_MAX}))"
    )
    document = f"coalesce({f.optional('document_id')}, {f.optional('feature_id')})"
    document_ok = (
        f"({f.optional_ok('document_id')} AND {f.optional_ok('feature_id')}"
        f" AND {document} IS NOT NULL AND ({f.optional('document_id')} IS NULL"
        f" OR {f.optional('feature_id')} IS NULL"
        f" OR {f.optional('document_id')} = {f.optional('feature_id')}))"
    )
    fast = " AND ".join(
        [
            f.optional_ok("interaction_id"),
            f.required_ok("execution_id"),
            document_ok,
            types_ok,
            position_ok,
            f.optional_ok("session_id"),
            f.optional_ok("user_id"),
            f.timestamp_ok("timestamp"),
        ]
    )
    return f"""
    SELECT line_no, "offset", fast,
        CASE WHEN fast THEN {f.optional("interaction_id")} END AS interaction_id,
        CASE WHEN fast THEN {f.text("execution_id")} END AS execution_id,
        CASE WHEN fast THEN {document} END AS document_id,
        CASE WHEN fast THEN {types} END AS interaction_types,
        CASE WHEN fast AND {p} = 'UBIGINT' THEN TRY_CAST({f.text("position")} AS INTEGER) END
            AS position,
        CASE WHEN fast THEN {f.optional("session_id")} END AS session_id,
        CASE WHEN fast THEN {f.optional("user_id")} END AS user_id,
        CASE WHEN fast THEN {f.timestamp("timestamp")} END AS timestamp,
        CASE WHEN fast THEN metadata_json END AS metadata_json
    FROM (
        SELECT *, coalesce({fast}, false) AS fast FROM (
            SELECT line_no, "offset",
                json_type(line, {_paths(_INTERACTION_PATHS)}) AS ty,
                json_extract_string(line, {_paths(_INTERACTION_PATHS)}) AS va,
                json_extract(line, '$.metadata')::VARCHAR AS metadata_json
            FROM ({_PLAIN_LINES})
        )
    )
    """


_BLOCK_SQL = {"executions": _execution_sql(), "interactions": _interaction_sql()}


def _canonical_query(text: str) -> tuple[str, str] | None:
    try:
        return _query_input({"query_input": json.loads(text, object_pairs_hook=first_wins)}, {})
    except (RowRejected, ValueError, RecursionError):
        return None


def _canonical_metadata(text: str) -> tuple[str | None] | None:
    try:
        return (_metadata({"metadata": json.loads(text, object_pairs_hook=first_wins)}, {}),)
    except (RowRejected, ValueError, RecursionError):
        return None


_JSON_FIELDS: dict[str, list[tuple[str, Callable[[str], Any], list[str]]]] = {
    "executions": [
        ("query_json", _canonical_query, ["query_text", "query_input"]),
        ("metadata_json", _canonical_metadata, ["metadata"]),
    ],
    "interactions": [("metadata_json", _canonical_metadata, ["metadata"])],
}


def stage_fast_rows(
    con: duckdb.DuckDBPyConnection, table: str, default_retriever_id: str | None
) -> None:
    """From the registered `block_lines`, create temp table `fast_block`: the rows the fast path
    accepts, normalized (plus line_no and offset); the rest are for the exact rules."""
    params = {"default_retriever_id": default_retriever_id} if table == "executions" else {}
    con.execute(f"CREATE OR REPLACE TEMP TABLE fast_block AS {_BLOCK_SQL[table]}", params)
    for column, canonical, outputs in _JSON_FIELDS[table]:
        _join_canonical(con, column, canonical, outputs)


def _join_canonical(
    con: duckdb.DuckDBPyConnection,
    column: str,
    canonical: Callable[[str], Any],
    outputs: list[str],
) -> None:
    """Replace a JSON text column by its canonical columns; rows the rules refuse become slow."""
    values = [
        row[0]
        for row in con.execute(
            f"SELECT DISTINCT {column} FROM fast_block WHERE fast AND {column} IS NOT NULL"
        ).fetchall()
    ]
    found = [(value, canonical(value)) for value in values]
    mapping = pa.table(
        {
            "json": pa.array([value for value, _ in found], pa.string()),
            "accepted": pa.array([result is not None for _, result in found], pa.bool_()),
            **{
                name: pa.array(
                    [None if result is None else result[i] for _, result in found], pa.string()
                )
                for i, name in enumerate(outputs)
            },
        }
    )
    con.register("canonical_values", mapping)
    selected = ", ".join(f"m.{name}" for name in outputs)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE fast_block AS"
        f" SELECT b.* EXCLUDE ({column}, fast), {selected},"
        f" b.fast AND (b.{column} IS NULL OR m.accepted) AS fast"
        f" FROM fast_block b LEFT JOIN canonical_values m ON b.{column} = m.json"
    )
    con.unregister("canonical_values")
