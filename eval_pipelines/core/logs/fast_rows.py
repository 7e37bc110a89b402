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
    starts_with(line, '{{')
    AND strlen(line) <= 4000
    AND NOT contains(line, '\u')
    AND strlen(line) - strlen(replace(replace(line, '{{', ''), '[', '')) <= {MAX_JSON_DEPTH}
"""
# A field's fragment (json_extract re-serializes it without spaces) read without parsing it again:
# its kind from its first character, a string's text when it holds no escape (else kind ESCAPED,
# which no rule accepts, so the line goes to the exact rules).
_KIND = (
    "CASE WHEN {f} IS NULL THEN NULL WHEN {f} = 'null' THEN 'NULL'"
    " WHEN starts_with({f}, '\"') THEN CASE WHEN contains({f}, '\\') THEN 'ESCAPED' ELSE 'VARCHAR' END"
    " WHEN starts_with({f}, '[') THEN 'ARRAY' WHEN starts_with({f}, '{{') THEN 'OBJECT'"
    " WHEN regexp_full_match({f}, '[0-9]{{1,10}}') THEN 'UBIGINT' ELSE 'OTHER' END"
)
_TEXT = "CASE WHEN starts_with({f}, '\"') THEN substr({f}, 2, strlen({f}) - 2) ELSE {f} END"
_STRINGS = r'\[("[^"\\]+"(,"[^"\\]+")*)?\]'
_TYPES = rf'\[("{_TYPE}"(,"{_TYPE}")*)\]'


def _paths(names: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'$.\"{name}\"'" for name in names) + "]"


def _fragments(names: tuple[str, ...]) -> str:
    """The plain lines of block_lines with each field as kind t<i> and text v<i> (1-based)."""
    fields = range(1, len(names) + 1)
    columns = ", ".join(
        f"{_KIND.format(f=f'f{i}')} AS t{i}, {_TEXT.format(f=f'f{i}')} AS v{i}" for i in fields
    )
    split = ", ".join(f"j[{i}] AS f{i}" for i in fields)
    return (
        f'SELECT line_no, "offset", {columns} FROM (SELECT line_no, "offset", {split} FROM'
        f' (SELECT line_no, "offset", CAST(TRY(json_extract(line, {_paths(names)})) AS VARCHAR[])'
        f" AS j FROM block_lines WHERE {_PLAIN_LINE}) WHERE j IS NOT NULL)"
    )


def _index(names: tuple[str, ...], name: str) -> int:
    return names.index(name) + 1


class _Fields:
    """SQL expressions over each field's kind (t<i>) and text (v<i>), see _fragments."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def type(self, name: str) -> str:
        return f"t{_index(self.names, name)}"

    def text(self, name: str) -> str:
        return f"v{_index(self.names, name)}"

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
        return (
            f"({self.type(name)} = 'ARRAY' AND regexp_full_match({self.text(name)}, '{_STRINGS}'))"
        )

    def string_list(self, name: str) -> str:
        v = self.text(name)
        return (
            f"CASE WHEN {v} = '[]' THEN CAST([] AS VARCHAR[])"
            f" ELSE string_split(substr({v}, 3, strlen({v}) - 4), '\",\"') END"
        )

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
    names = (*_EXECUTION_PATHS, "query_input", "metadata")
    f = _Fields(names)
    retriever_ok = (
        f"(({f.absent('retriever_id')} AND $default_retriever_id IS NOT NULL) OR"
        f" ({f.type('retriever_id')} = 'VARCHAR' AND regexp_full_match({f.text('retriever_id')},"
        f" '{_SAFE_ID}') AND NOT contains({f.text('retriever_id')}, '..')))"
    )
    taxonomy_ok = f"({f.missing('taxonomy_node_ids')} OR {f.string_list_ok('taxonomy_node_ids')})"
    query, metadata = _index(names, "query_input"), _index(names, "metadata")
    fast = " AND ".join(
        [
            f.required_ok("execution_id"),
            retriever_ok,
            f.required_ok("session_id"),
            f.optional_ok("user_id"),
            f.string_list_ok("documents"),
            taxonomy_ok,
            f.timestamp_ok("created_at"),
            f"t{query} IN ('VARCHAR', 'OBJECT')",
        ]
    )
    return f"""
    SELECT line_no, "offset", fast,
        CASE WHEN fast THEN {f.text("execution_id")} END AS execution_id,
        CASE WHEN fast THEN coalesce({f.optional("retriever_id")}, $default_retriever_id) END
            AS retriever_id,
        CASE WHEN fast THEN {f.text("session_id")} END AS session_id,
        CASE WHEN fast THEN {f.optional("user_id")} END AS user_id,
        CASE WHEN fast THEN {_json(query)} END AS query_json,
        CASE WHEN fast THEN {f.string_list("documents")} END AS documents,
        CASE WHEN fast AND NOT {f.missing("taxonomy_node_ids")}
            THEN {f.string_list("taxonomy_node_ids")} ELSE CAST([] AS VARCHAR[]) END
            AS taxonomy_node_ids,
        CASE WHEN fast THEN {f.timestamp("created_at")} END AS created_at,
        CASE WHEN fast THEN {_json(metadata)} END AS metadata_json
    FROM (SELECT *, coalesce({fast}, false) AS fast FROM ({_fragments(names)}))
    """


def _json(index: int) -> str:
    """A field's JSON text again (its string kind was unquoted), NULL when absent or null."""
    return (
        f"CASE WHEN t{index} = 'VARCHAR' THEN '\"' || v{index} || '\"'"
        f" WHEN t{index} IS NULL OR t{index} = 'NULL' THEN NULL ELSE v{index} END"
    )


def _interaction_sql() -> str:
    names = (*_INTERACTION_PATHS, "metadata")
    f = _Fields(names)
    t, v = f.type("interaction_type"), f.text("interaction_type")
    listed = f"string_split(substr({v}, 3, strlen({v}) - 4), '\",\"')"
    types_ok = (
        f"(CASE WHEN {t} = 'VARCHAR' THEN regexp_full_match({v}, '{_TYPE}')"
        f" WHEN {t} = 'ARRAY' THEN regexp_full_match({v}, '{_TYPES}')"
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
        CASE WHEN fast THEN {_json(_index(names, "metadata"))} END AS metadata_json
    FROM (SELECT *, coalesce({fast}, false) AS fast FROM ({_fragments(names)}))
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
