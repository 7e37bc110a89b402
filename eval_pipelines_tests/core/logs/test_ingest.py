"""The log ingestion contract, end to end: real input files in, normalized Parquet out.

Read top to bottom, these tests are the contract's documentation: what a valid row becomes, why a row
is quarantined, what re-ingesting does and what happens to a file that cannot be parsed.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.logs import (
    EXECUTIONS_SCHEMA,
    INTERACTIONS_SCHEMA,
    QUARANTINE_REASONS,
    QUARANTINE_SCHEMA,
    IngestReport,
    LogParseError,
    ingest_files,
)
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.storage import parquet_files
from eval_pipelines_tests.cli.test_ingest_odd_values_cli import CASES as ODD_VALUE_CASES
from eval_pipelines_tests.core.logs.helpers import (
    EXECUTION,
    INTERACTION,
    parquet_parts,
    stored_rows,
    write_jsonl,
)
from eval_pipelines_tests.core.logs.test_execution_agreement import AGREEMENT_VIOLATIONS


@pytest.fixture
def paths(tmp_path: Path) -> DataPaths:
    return DataPaths(tmp_path / "data")


def ingest_executions(paths: DataPaths, tmp_path: Path, rows: list[Any]) -> IngestReport:
    return ingest_files(paths, "executions", [write_jsonl(tmp_path / "executions.jsonl", rows)])


def ingest_interactions(paths: DataPaths, tmp_path: Path, rows: list[Any]) -> IngestReport:
    return ingest_files(paths, "interactions", [write_jsonl(tmp_path / "interactions.jsonl", rows)])


# --- what a valid row becomes ----------------------------------------------------------------------


def test_an_execution_is_normalized_to_utc_and_canonical_json(
    paths: DataPaths, tmp_path: Path
) -> None:
    plain = {
        **EXECUTION,
        "execution_id": "exec_2",
        "query_input": "blue chair",
        "created_at": "2026-10-01T14:30:00+02:00",
        "taxonomy_node_ids": None,
        "user_id": None,
    }
    naive = {**EXECUTION, "execution_id": "exec_3", "created_at": "2026-10-01 12:00:00.5"}

    report = ingest_executions(paths, tmp_path, [EXECUTION, plain, naive])

    assert (report.rows_read, report.ingested, report.quarantined) == (3, 3, {})
    first, second, third = stored_rows(paths, "executions")
    assert first == {
        "execution_id": "exec_1",
        "retriever_id": "prod",
        "session_id": "s1",
        "user_id": "u1",
        "query_text": "red sofa",
        "query_input": '{"filters":{"color":"red"},"text":"red sofa"}',
        "documents": ["d1", "d2", "d3"],
        "taxonomy_node_ids": ["furniture"],
        "created_at": datetime(2026, 10, 1, 12, 0, tzinfo=UTC),
        "metadata": None,
    }
    # A plain string query_input means {"text": ...}; absent optional lists become empty lists.
    assert second["query_input"] == '{"text":"blue chair"}'
    assert second["query_text"] == "blue chair"
    assert second["taxonomy_node_ids"] == []
    assert second["user_id"] is None
    # An offset is converted to UTC, a naive timestamp is taken as UTC.
    assert second["created_at"] == datetime(2026, 10, 1, 12, 30, tzinfo=UTC)
    assert third["created_at"] == datetime(2026, 10, 1, 12, 0, 0, 500000, tzinfo=UTC)


def test_an_interaction_borrows_session_user_and_position_from_its_execution(
    paths: DataPaths, tmp_path: Path
) -> None:
    ingest_executions(paths, tmp_path, [EXECUTION])
    without_position = {k: v for k, v in INTERACTION.items() if k != "position"}
    via_alias = {**without_position, "document_id": None, "feature_id": "d3"}

    report = ingest_interactions(paths, tmp_path, [without_position, via_alias])

    assert report.ingested == 2
    clicked_d2, clicked_d3 = stored_rows(paths, "interactions")
    assert clicked_d2["position"] == 1  # d2 is second in the served documents (0-based)
    assert clicked_d3["position"] == 2
    assert clicked_d3["document_id"] == "d3"  # feature_id is an alias of document_id
    assert (clicked_d2["session_id"], clicked_d2["user_id"]) == ("s1", "u1")
    assert clicked_d2["metadata"] is None
    assert clicked_d2["timestamp"] == datetime(2026, 10, 1, 12, 0, 5, tzinfo=UTC)


def test_given_session_user_and_metadata_are_kept(paths: DataPaths, tmp_path: Path) -> None:
    ingest_executions(paths, tmp_path, [EXECUTION])
    row = {
        **INTERACTION,
        "interaction_id": "i_42",
        "session_id": "s9",
        "user_id": "u9",
        "metadata": {"dwell_ms": 1200, "device": "mobile"},
    }

    ingest_interactions(paths, tmp_path, [row])

    (stored,) = stored_rows(paths, "interactions")
    assert stored["interaction_id"] == "i_42"
    assert (stored["session_id"], stored["user_id"]) == ("s9", "u9")
    assert stored["metadata"] == '{"device":"mobile","dwell_ms":1200}'


def test_a_list_of_interaction_types_becomes_one_row_per_distinct_type(
    paths: DataPaths, tmp_path: Path
) -> None:
    ingest_executions(paths, tmp_path, [EXECUTION])
    several = {**INTERACTION, "interaction_type": [" Click", "ADD_TO_CART", "click"]}
    several_with_id = {**several, "interaction_id": "i_7", "document_id": "d1", "position": 0}

    report = ingest_interactions(paths, tmp_path, [several, several_with_id])

    assert (report.rows_read, report.ingested) == (2, 4)
    rows = stored_rows(paths, "interactions")
    assert [(r["document_id"], r["interaction_type"]) for r in rows] == [
        ("d2", "click"),
        ("d2", "add_to_cart"),
        ("d1", "click"),
        ("d1", "add_to_cart"),
    ]
    derived = [r["interaction_id"] for r in rows[:2]]
    assert all(i.startswith("int_") and len(i) == 20 for i in derived)
    assert len(set(derived)) == 2
    # A given id on a row with several types gets the type appended, so keys stay unique.
    assert [r["interaction_id"] for r in rows[2:]] == ["i_7:click", "i_7:add_to_cart"]


def test_derived_interaction_ids_depend_only_on_content(paths: DataPaths, tmp_path: Path) -> None:
    ingest_executions(paths, tmp_path, [EXECUTION])
    ingest_interactions(paths, tmp_path, [INTERACTION])
    other = DataPaths(tmp_path / "other")
    ingest_executions(other, tmp_path, [EXECUTION])
    ingest_interactions(other, tmp_path, [INTERACTION])

    (first,) = stored_rows(paths, "interactions")
    (second,) = stored_rows(other, "interactions")
    assert first["interaction_id"] == second["interaction_id"]


def test_rows_without_retriever_id_take_the_default(paths: DataPaths, tmp_path: Path) -> None:
    row = {k: v for k, v in EXECUTION.items() if k != "retriever_id"}
    source = write_jsonl(tmp_path / "executions.jsonl", [row])

    report = ingest_files(paths, "executions", [source], default_retriever_id="search_api")

    assert report.ingested == 1
    assert stored_rows(paths, "executions")[0]["retriever_id"] == "search_api"


# --- the output files -----------------------------------------------------------------------------


def test_outputs_have_the_exact_schemas_when_read_through_duckdb(
    paths: DataPaths, tmp_path: Path
) -> None:
    ingest_executions(paths, tmp_path, [EXECUTION, {**EXECUTION, "execution_id": ""}])
    ingest_interactions(paths, tmp_path, [INTERACTION])

    expected = {
        "executions": EXECUTIONS_SCHEMA,
        "interactions": INTERACTIONS_SCHEMA,
        "quarantine": QUARANTINE_SCHEMA,
    }
    duckdb_types = {
        "executions": [
            "VARCHAR",
            "VARCHAR",
            "VARCHAR",
            "VARCHAR",
            "VARCHAR",
            "VARCHAR",
            "VARCHAR[]",
            "VARCHAR[]",
            "TIMESTAMP WITH TIME ZONE",
            "VARCHAR",
        ],
        "interactions": ["VARCHAR"] * 4
        + ["INTEGER", "VARCHAR", "VARCHAR", "TIMESTAMP WITH TIME ZONE", "VARCHAR"],
        "quarantine": ["VARCHAR", "VARCHAR", "BIGINT", "VARCHAR", "VARCHAR", "VARCHAR"],
    }
    for table, schema in expected.items():
        (part,) = parquet_files(paths.log_table_dir(table))
        # Log rows are stored one part per day (part-<day>-<digest>); the quarantine in one part.
        day = "" if table == "quarantine" else "2026-10-01-"
        assert re.fullmatch(rf"part-{day}[0-9a-f]{{16}}", part.stem), part.name
        assert pq.read_schema(part).remove_metadata() == schema
        with duckdb.connect() as con:
            described = con.execute(
                "DESCRIBE SELECT * FROM read_parquet(?)", [str(part)]
            ).fetchall()
        assert [(name, kind) for name, kind, *_ in described] == list(
            zip(schema.names, duckdb_types[table], strict=True)
        )


def test_identical_input_gives_identical_files(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "executions.jsonl", [EXECUTION, {"execution_id": "broken"}])
    first, second = DataPaths(tmp_path / "one"), DataPaths(tmp_path / "two")
    ingest_files(first, "executions", [source])
    ingest_files(second, "executions", [source])

    assert parquet_parts(first) == parquet_parts(second)
    for table in ("executions", "quarantine"):
        (a,) = parquet_files(first.log_table_dir(table))
        (b,) = parquet_files(second.log_table_dir(table))
        assert a.read_bytes() == b.read_bytes()


# --- re-ingesting ---------------------------------------------------------------------------------


def test_reingesting_the_same_files_writes_nothing_new(paths: DataPaths, tmp_path: Path) -> None:
    executions = [EXECUTION, {**EXECUTION, "execution_id": "exec_bad", "created_at": "yesterday"}]
    interactions = [INTERACTION, {**INTERACTION, "interaction_type": ["click", "purchase"]}]
    first_executions = ingest_executions(paths, tmp_path, executions)
    first_interactions = ingest_interactions(paths, tmp_path, interactions)
    parts = parquet_parts(paths)
    counts = {table: len(stored_rows(paths, table)) for table in parts}

    again_executions = ingest_executions(paths, tmp_path, executions)
    again_interactions = ingest_interactions(paths, tmp_path, interactions)

    assert (first_executions.ingested, first_executions.quarantined) == (1, {"bad_timestamp": 1})
    assert first_interactions.ingested == 2  # the repeated click is the same interaction
    assert first_interactions.already_present == 1
    assert again_executions.to_dict() | {"written": []} == {
        "table": "executions",
        "files": [str(tmp_path / "executions.jsonl")],
        "rows_read": 2,
        "ingested": 0,
        "already_present": 1,
        "quarantined": {"bad_timestamp": 1},
        "quarantine_already_present": 1,
        "skipped": {},
        "remarks": {},
        "notes": [],
        "written": [],
    }
    assert again_executions.written == [] and again_interactions.written == []
    assert (again_interactions.ingested, again_interactions.already_present) == (0, 3)
    assert parquet_parts(paths) == parts
    assert {table: len(stored_rows(paths, table)) for table in parts} == counts


def test_an_identical_repeat_within_one_input_is_already_present(
    paths: DataPaths, tmp_path: Path
) -> None:
    report = ingest_executions(paths, tmp_path, [EXECUTION, EXECUTION])

    assert (report.ingested, report.already_present, report.quarantined) == (1, 1, {})


def test_interactions_of_unknown_executions_enter_once_the_execution_is_ingested(
    paths: DataPaths, tmp_path: Path
) -> None:
    early = ingest_interactions(paths, tmp_path, [INTERACTION])
    ingest_executions(paths, tmp_path, [EXECUTION])
    late = ingest_interactions(paths, tmp_path, [INTERACTION])

    assert (early.ingested, early.quarantined) == (0, {"unknown_execution_id": 1})
    assert (late.ingested, late.quarantined) == (1, {})
    (quarantined,) = stored_rows(paths, "quarantine")
    assert quarantined["reason"] == "unknown_execution_id"
    assert "'exec_1'" in quarantined["detail"]


def test_summary_lines_read_as_a_sentence(paths: DataPaths, tmp_path: Path) -> None:
    report = ingest_executions(
        paths,
        tmp_path,
        [EXECUTION, {"execution_id": "x"}, {**EXECUTION, "execution_id": "y", "created_at": 5}],
    )

    lines = report.summary_lines()
    assert lines[0] == (
        "executions: read 3, ingested 1, already present 0, quarantined 2"
        " (bad_timestamp: 1, missing_field: 1)"
    )
    assert lines[1:] == [f"wrote {path}" for path in report.written]
    assert len(report.written) == 2


# --- quarantine: every reason ---------------------------------------------------------------------

EXECUTION_VIOLATIONS: list[tuple[str, dict[str, Any], str, str]] = [
    ("missing_field", {"session_id": None}, "session_id: required field is missing", ""),
    ("missing_field", {"execution_id": ""}, "execution_id: required field is empty", ""),
    ("missing_field", {"query_input": {"filters": {}}}, "query_input.text: required", ""),
    ("missing_field", {"retriever_id": None}, "retriever_id: required field is missing", ""),
    ("wrong_type", {"execution_id": 17}, "execution_id: expected a string, got a number (17)", ""),
    ("wrong_type", {"documents": "d1,d2"}, "documents: expected a list of strings", ""),
    ("wrong_type", {"documents": ["d1", 2]}, "documents[1]: expected a non-empty string", ""),
    ("wrong_type", {"query_input": {"text": "x", "filters": []}}, "query_input.filters", ""),
    ("invalid_id", {"retriever_id": "../etc"}, "retriever_id: '../etc' is not a valid id", ""),
    ("bad_timestamp", {"created_at": "last tuesday"}, "created_at: 'last tuesday' is not", ""),
    ("bad_timestamp", {"created_at": 1700000000}, "created_at: expected an ISO 8601", ""),
]


@pytest.mark.parametrize(("reason", "change", "detail", "_"), EXECUTION_VIOLATIONS)
def test_execution_violations_are_quarantined_with_reason_and_detail(
    paths: DataPaths, tmp_path: Path, reason: str, change: dict[str, Any], detail: str, _: str
) -> None:
    bad = {**EXECUTION, "execution_id": "exec_bad", **change}

    report = ingest_executions(paths, tmp_path, [EXECUTION, bad])

    assert (report.ingested, report.quarantined) == (1, {reason: 1})
    (quarantined,) = stored_rows(paths, "quarantine")
    assert quarantined["table"] == "executions"
    assert quarantined["source_file"] == str(tmp_path / "executions.jsonl")
    assert quarantined["line"] == 2
    assert quarantined["reason"] == reason
    assert detail in quarantined["detail"]
    assert json.loads(quarantined["raw"]) == bad


def test_the_same_execution_id_with_different_content_keeps_the_first(
    paths: DataPaths, tmp_path: Path
) -> None:
    changed = {**EXECUTION, "documents": ["d9"]}

    report = ingest_executions(paths, tmp_path, [EXECUTION, changed])

    assert report.quarantined == {"duplicate_execution_id": 1}
    assert stored_rows(paths, "executions")[0]["documents"] == ["d1", "d2", "d3"]
    (quarantined,) = stored_rows(paths, "quarantine")
    assert "executions.jsonl:1" in quarantined["detail"]


INTERACTION_VIOLATIONS: list[tuple[str, dict[str, Any], str]] = [
    ("missing_field", {"execution_id": None}, "execution_id: required field is missing"),
    ("missing_field", {"document_id": None}, "document_id: required field is missing"),
    ("missing_field", {"interaction_type": None}, "interaction_type: required field"),
    ("missing_field", {"timestamp": None}, "timestamp: required field is missing"),
    ("wrong_type", {"position": "first"}, "position: expected a 0-based integer, got a string"),
    ("wrong_type", {"position": 1.5}, "position: expected a 0-based integer"),
    ("wrong_type", {"interaction_type": ["click", 3]}, "interaction_type[1]: expected a string"),
    ("wrong_type", {"metadata": ["a"]}, "metadata: expected an object, got a list"),
    ("wrong_type", {"user_id": 12}, "user_id: expected a string"),
    ("bad_timestamp", {"timestamp": "2026-13-45"}, "timestamp: '2026-13-45' is not"),
    ("conflicting_alias", {"feature_id": "d3"}, "document_id 'd2' and its alias feature_id 'd3'"),
    ("empty_interaction_type", {"interaction_type": "  "}, "interaction_type: the type is empty"),
    ("empty_interaction_type", {"interaction_type": []}, "interaction_type: the list of types"),
    ("negative_position", {"position": -1}, "position: -1 is negative"),
    ("unknown_execution_id", {"execution_id": "exec_404"}, "execution_id 'exec_404' is not"),
    ("position_not_derivable", {"position": None, "document_id": "d9"}, "'d9' is not among the 3"),
]


@pytest.mark.parametrize(("reason", "change", "detail"), INTERACTION_VIOLATIONS)
def test_interaction_violations_are_quarantined_with_reason_and_detail(
    paths: DataPaths, tmp_path: Path, reason: str, change: dict[str, Any], detail: str
) -> None:
    ingest_executions(paths, tmp_path, [EXECUTION])
    bad = {**INTERACTION, **change}

    report = ingest_interactions(paths, tmp_path, [INTERACTION, bad])

    assert (report.ingested, report.quarantined) == (1, {reason: 1})
    (quarantined,) = stored_rows(paths, "quarantine")
    assert (quarantined["table"], quarantined["line"], quarantined["reason"]) == (
        "interactions",
        2,
        reason,
    )
    assert detail in quarantined["detail"]
    assert json.loads(quarantined["raw"]) == bad


def test_the_same_interaction_id_with_different_content_keeps_the_first(
    paths: DataPaths, tmp_path: Path
) -> None:
    ingest_executions(paths, tmp_path, [EXECUTION])
    first = {**INTERACTION, "interaction_id": "i_1"}
    clash = {**first, "document_id": "d3", "position": 2}

    report = ingest_interactions(paths, tmp_path, [first, clash])

    assert (report.ingested, report.quarantined) == (1, {"duplicate_interaction_id": 1})
    assert stored_rows(paths, "interactions")[0]["document_id"] == "d2"


def test_every_documented_reason_is_exercised() -> None:
    exercised = {reason for reason, *_ in EXECUTION_VIOLATIONS + INTERACTION_VIOLATIONS}
    exercised |= {"duplicate_execution_id", "duplicate_interaction_id"}
    exercised |= {reason for reason, *_ in AGREEMENT_VIOLATIONS}
    exercised |= {"conflicting_duplicate_id"}  # test_stored_conflicts.py
    exercised |= {reason for *_, expected in ODD_VALUE_CASES for reason, _ in expected.values()}
    assert exercised == set(QUARANTINE_REASONS)


def test_raw_rows_in_the_quarantine_are_truncated(paths: DataPaths, tmp_path: Path) -> None:
    huge = {**EXECUTION, "created_at": "never", "documents": [f"doc_{i}" for i in range(5000)]}

    ingest_executions(paths, tmp_path, [huge])

    (quarantined,) = stored_rows(paths, "quarantine")
    assert len(quarantined["raw"]) == 10_000
    assert quarantined["raw"].startswith('{"created_at":"never"')


# --- files that cannot be parsed: nothing is written ----------------------------------------------

GOOD_LINE = json.dumps(EXECUTION) + "\n"
UNPARSEABLE: list[tuple[str, bytes, int | None, str]] = [
    ("broken.jsonl", (GOOD_LINE + "{not json\n").encode(), 2, "invalid JSON"),
    ("array.jsonl", (GOOD_LINE + "\n" + '["exec_2"]\n').encode(), 3, "got a list"),
    ("latin1.jsonl", GOOD_LINE.encode() + '{"x": "café"}\n'.encode("latin-1"), 2, "not UTF-8"),
    ("cells.csv", b"execution_id,session_id\ne1,s1\ne2,s2,extra\n", 3, "3 cells"),
    ("quote.csv", b'execution_id,session_id\ne1,"s1\n', 2, "malformed CSV"),
    ("header.csv", b"execution_id,execution_id\n", 1, "repeats execution_id"),
    ("table.parquet", b"PAR1 this is not parquet", None, "not a readable Parquet file"),
    ("notes.txt", GOOD_LINE.encode(), None, "cannot tell the format from the extension '.txt'"),
]


@pytest.mark.parametrize(("name", "content", "line", "message"), UNPARSEABLE)
def test_a_file_that_cannot_be_parsed_names_file_and_line_and_nothing_is_written(
    paths: DataPaths, tmp_path: Path, name: str, content: bytes, line: int | None, message: str
) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [EXECUTION])
    broken = tmp_path / name
    broken.write_bytes(content)

    with pytest.raises(LogParseError) as raised:
        ingest_files(paths, "executions", [good, broken])

    error = raised.value
    assert (error.file, error.line) == (broken, line)
    assert message in error.message
    location = f"{broken}:{line}" if line is not None else f"{broken}"
    assert str(error) == f"{location}: {error.message}"
    assert isinstance(error, InvalidInputError)
    assert not paths.root.exists()


def test_an_empty_file_is_zero_rows(paths: DataPaths, tmp_path: Path) -> None:
    empty_jsonl, empty_csv = tmp_path / "empty.jsonl", tmp_path / "empty.csv"
    empty_jsonl.write_text("\n\n", encoding="utf-8")
    empty_csv.write_text("", encoding="utf-8")

    report = ingest_files(paths, "executions", [empty_jsonl, empty_csv])

    assert (report.rows_read, report.ingested, report.written) == (0, 0, [])
    assert not paths.root.exists()


def test_unknown_table_or_format_is_a_value_error(paths: DataPaths, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "executions.jsonl", [EXECUTION])

    with pytest.raises(
        ValueError, match="table: 'sessions' is not one of executions, interactions"
    ):
        ingest_files(paths, "sessions", [source])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="format: 'xml' is not one of"):
        ingest_files(paths, "executions", [source], fmt="xml")
    with pytest.raises(ValueError, match="default retriever_id"):
        ingest_files(paths, "executions", [source], default_retriever_id="a/b")
    assert not paths.root.exists()
