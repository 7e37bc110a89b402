"""Legal but odd values through `eval-pipelines ingest`: each odd row is quarantined with a reason and a
detail naming its field, the good rows of the same file are ingested, and the command exits 0.

Before issue 10 each of these rows ended the command with exit 1 and nothing stored: an offset that
takes a timestamp past year 9999 or before year 1 in UTC, JSON nested 100,000 deep, a 5,000-digit
integer, NaN / Infinity epoch milliseconds in UBI, a lone surrogate ("\\ud800", valid JSON but not
Unicode, so no UTF-8 Parquet string can hold it), a Parquet timestamp beyond year 9999.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eval_pipelines.core.logs import ingest_files
from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.cli.conftest import run_cli

EXECUTION = {
    "execution_id": "exec_1",
    "retriever_id": "prod",
    "session_id": "s1",
    "query_input": {"text": "red sofa"},
    "documents": ["d1", "d2", "d3"],
    "created_at": "2026-10-01T12:00:00Z",
}
INTERACTION = {
    "execution_id": "exec_1",
    "document_id": "d2",
    "interaction_type": "click",
    "position": 1,
    "timestamp": "2026-10-01T12:00:05Z",
}
UBI_QUERY = {
    "query_id": "q1",
    "application": "prod",
    "user_query": "red sofa",
    "query_response_hit_ids": ["d1", "d2"],
    "timestamp": 1790000000000,
}
UBI_EVENT = {
    "action_name": "click",
    "query_id": "q1",
    "timestamp": 1790000005000,
    "event_attributes": {"object": {"object_id": "d2"}, "position": {"ordinal": 2}},
}
DEEP = "[" * 100_000 + "]" * 100_000
LONG_NUMBER = "9" * 5_000


def line(row: dict[str, Any], **raw_fields: str) -> str:
    """row as a JSON line, with raw_fields spliced in as JSON text (for values json.dumps cannot make)."""
    text = json.dumps(row)
    for name, raw in raw_fields.items():
        text = text[:-1] + f', "{name}": {raw}}}'
    return text


def execution(**change: Any) -> dict[str, Any]:
    return {**EXECUTION, "execution_id": "exec_odd", **change}


def without(row: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key != name}


# (file name, table, extra CLI args, lines after the good one, {line: (reason, detail excerpt)})
CASES: list[tuple[str, str, tuple[str, ...], list[str], dict[int, tuple[str, str]]]] = [
    (
        "executions.jsonl",
        "executions",
        (),
        [
            line(execution(execution_id="e_late", created_at="9999-12-31T23:00:00-05:00")),
            line(execution(execution_id="e_early", created_at="0001-01-01T00:30:00+01:00")),
            line(execution(execution_id="e_deep"), taxonomy_node_ids=DEEP),
            line(
                without(execution(execution_id="e_long"), "query_input"),
                query_input=f'{{"text": "x", "filters": {{"price": {LONG_NUMBER}}}}}',
            ),
            line(execution(execution_id="e_sur")).replace('"s1"', '"s1\\ud800"'),
            line(execution(execution_id="e_doc")).replace('"d2"', '"d\\udfff2"'),
            line(execution(execution_id="e_filter", query_input={"text": "x"})).replace(
                '{"text": "x"}', '{"text": "x", "filters": {"color": "re\\ud800d"}}'
            ),
        ],
        {
            2: (
                "bad_timestamp",
                "created_at: '9999-12-31T23:00:00-05:00' is outside years 1-9999 once converted"
                " to UTC",
            ),
            3: ("bad_timestamp", "created_at: '0001-01-01T00:30:00+01:00' is outside years"),
            4: ("unsupported_value", "taxonomy_node_ids: JSON nested more than 64 levels deep"),
            5: (
                "unsupported_value",
                "query_input.filters.price: an integer of 5000 digits (at most 4300 can be read)",
            ),
            6: ("unsupported_value", "session_id: 's1\\ud800' holds a lone surrogate '\\ud800'"),
            7: ("unsupported_value", "documents[1]: 'd\\udfff2' holds a lone surrogate"),
            8: ("unsupported_value", "query_input.filters.color: 're\\ud800d' holds a lone"),
        },
    ),
    (
        "queries.jsonl",
        "executions",
        ("--format", "ubi"),
        [
            line(without({**UBI_QUERY, "query_id": "q_nan"}, "timestamp"), timestamp="NaN"),
            line(without({**UBI_QUERY, "query_id": "q_inf"}, "timestamp"), timestamp="Infinity"),
        ],
        {
            2: ("bad_timestamp", "created_at (UBI timestamp): nan epoch milliseconds is not a"),
            3: ("bad_timestamp", "created_at (UBI timestamp): inf epoch milliseconds is outside"),
        },
    ),
    (
        "events.jsonl",
        "interactions",
        ("--format", "ubi"),
        [
            line(without(UBI_EVENT, "timestamp"), timestamp="NaN"),
            line(without(UBI_EVENT, "timestamp"), timestamp="-Infinity"),
            line({**UBI_EVENT, "timestamp": 1e300}),
        ],
        {
            2: ("bad_timestamp", "timestamp (UBI timestamp): nan epoch milliseconds is not a"),
            3: ("bad_timestamp", "timestamp (UBI timestamp): -inf epoch milliseconds is outside"),
            4: ("bad_timestamp", "timestamp (UBI timestamp): 1e+300 epoch milliseconds is"),
        },
    ),
    (
        "interactions.jsonl",
        "interactions",
        (),
        [
            line({**INTERACTION, "timestamp": "9999-12-31T23:59:00-00:30"}),
            line(INTERACTION, metadata=f'{{"trail": {DEEP}}}'),
            line(without(INTERACTION, "position"), position=LONG_NUMBER),
            line({**INTERACTION, "metadata": {"note": "x"}}).replace('"x"', '"\\ud800"'),
        ],
        {
            2: ("bad_timestamp", "timestamp: '9999-12-31T23:59:00-00:30' is outside years 1-9999"),
            3: ("unsupported_value", "metadata: JSON nested more than 64 levels deep"),
            4: ("unsupported_value", "position: an integer of 5000 digits"),
            5: ("unsupported_value", "metadata.note: '\\ud800' holds a lone surrogate"),
        },
    ),
]


def quarantined(data_dir: Path) -> dict[int, tuple[str, str]]:
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT line, reason, detail FROM read_parquet(?)",
            [str(data_dir / "logs" / "quarantine" / "*.parquet")],
        ).fetchall()
    return {number: (reason, detail) for number, reason, detail in rows}


def with_executions(tmp_path: Path) -> Path:
    """A data directory holding the executions the interaction cases refer to (exec_1 and q1)."""
    paths = DataPaths(tmp_path / "data")
    executions = tmp_path / "setup_executions.jsonl"
    executions.write_text(json.dumps(EXECUTION) + "\n")
    queries = tmp_path / "setup_queries.jsonl"
    queries.write_text(json.dumps(UBI_QUERY) + "\n")
    ingest_files(paths, "executions", [executions])
    ingest_files(paths, "executions", [queries], fmt="ubi")
    return paths.root


@pytest.mark.parametrize(
    ("name", "table", "args", "odd_lines", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_odd_rows_are_quarantined_naming_the_field_and_good_rows_are_kept(
    tmp_path: Path,
    name: str,
    table: str,
    args: tuple[str, ...],
    odd_lines: list[str],
    expected: dict[int, tuple[str, str]],
) -> None:
    good = {
        "executions.jsonl": EXECUTION,
        "queries.jsonl": UBI_QUERY,
        "events.jsonl": UBI_EVENT,
        "interactions.jsonl": INTERACTION,
    }[name]
    data_dir = with_executions(tmp_path) if table == "interactions" else tmp_path / "data"
    source = tmp_path / name
    source.write_text("\n".join([json.dumps(good), *odd_lines]) + "\n", encoding="utf-8")

    result = run_cli(data_dir, "ingest", table, str(source), *args)

    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{table}: read {1 + len(odd_lines)}, ingested 1," in result.stdout
    found = quarantined(data_dir)
    assert set(found) == set(expected)
    for number, (reason, detail) in expected.items():
        assert found[number][0] == reason, (number, found[number])
        assert detail in found[number][1], (number, found[number])


def test_a_csv_cell_too_deep_or_a_position_too_long_is_quarantined(tmp_path: Path) -> None:
    data_dir = with_executions(tmp_path)
    source = tmp_path / "interactions.csv"
    source.write_text(
        "execution_id,document_id,interaction_type,position,timestamp,metadata\n"
        "exec_1,d2,click,1,2026-10-01T12:00:05Z,\n"
        f"exec_1,d2,click,{LONG_NUMBER},2026-10-01T12:00:06Z,\n"
        f'exec_1,d2,click,1,2026-10-01T12:00:07Z,"{{""a"": {"[" * 65}{"]" * 65}}}"\n',
        encoding="utf-8",
    )

    result = run_cli(data_dir, "ingest", "interactions", str(source))

    assert result.returncode == 0, result.stderr[-2000:]
    assert "interactions: read 3, ingested 1," in result.stdout
    found = quarantined(data_dir)
    assert found[3] == (
        "unsupported_value",
        "position: an integer of 5000 digits (at most 4300 can be read)",
    )
    # A CSV cell's own object is its first level.
    assert found[4] == ("unsupported_value", "metadata.a: JSON nested more than 64 levels deep")


def test_a_parquet_timestamp_beyond_year_9999_is_quarantined(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    rows = pa.table(
        {
            "execution_id": ["exec_1", "exec_far"],
            "retriever_id": ["prod", "prod"],
            "session_id": ["s1", "s2"],
            "query_input": ["red sofa", "red sofa"],
            "documents": [["d1"], ["d1"]],
            # 10**13 s is about year 318857; zoned, so Python would also shift it to -05:00.
            "created_at": pa.array([1_790_000_000, 10**13], pa.timestamp("s", tz="-05:00")),
        }
    )
    source = tmp_path / "executions.parquet"
    pq.write_table(rows, source)

    result = run_cli(data_dir, "ingest", "executions", str(source))

    assert result.returncode == 0, result.stderr[-2000:]
    assert "executions: read 2, ingested 1," in result.stdout
    assert quarantined(data_dir) == {
        2: (
            "bad_timestamp",
            "created_at: 10000000000000000 ms since 1970-01-01 is outside years 1-9999 (UTC)",
        )
    }


def test_a_deep_line_that_is_no_object_still_fails_the_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    source = tmp_path / "executions.jsonl"
    source.write_text(json.dumps(EXECUTION) + "\n" + DEEP + "\n", encoding="utf-8")

    result = run_cli(data_dir, "ingest", "executions", str(source))

    assert result.returncode == 2
    assert f"{source}:2: expected a JSON object per line (nothing was written)" in result.stderr
    assert not data_dir.exists()
