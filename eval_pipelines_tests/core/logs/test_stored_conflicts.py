"""An id already stored by an earlier ingest: the same content is `already present`, different content
is quarantined as `conflicting_duplicate_id` (the stored row is kept), never dropped silently.

"Content" is the normalized row, so spelling that normalization removes (an offset that names the same
instant, key order, a null filters, the case of a type) is the same content.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eval_pipelines.core.logs import IngestReport, ingest_files
from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.core.logs.helpers import (
    EXECUTION,
    INTERACTION,
    parquet_parts,
    stored_rows,
    write_jsonl,
)


@pytest.fixture
def paths(tmp_path: Path) -> DataPaths:
    return DataPaths(tmp_path / "data")


def ingest(paths: DataPaths, table: str, file: Path, rows: list[Any]) -> IngestReport:
    return ingest_files(paths, table, [write_jsonl(file, rows)])  # type: ignore[arg-type]


def test_a_later_file_reusing_an_execution_id_with_other_content_is_quarantined(
    paths: DataPaths, tmp_path: Path
) -> None:
    ingest(paths, "executions", tmp_path / "monday.jsonl", [EXECUTION])
    reused = {**EXECUTION, "documents": ["d9"], "created_at": "2026-10-02T08:00:00Z"}

    report = ingest(paths, "executions", tmp_path / "tuesday.jsonl", [reused])

    assert (report.ingested, report.already_present) == (0, 0)
    assert report.quarantined == {"conflicting_duplicate_id": 1}
    (stored,) = stored_rows(paths, "executions")
    assert stored["documents"] == ["d1", "d2", "d3"]  # the stored row is kept
    (quarantined,) = stored_rows(paths, "quarantine")
    assert quarantined["reason"] == "conflicting_duplicate_id"
    assert quarantined["source_file"] == str(tmp_path / "tuesday.jsonl")
    assert quarantined["detail"] == (
        "execution_id 'exec_1' is already stored with different content (differs in documents,"
        " created_at); the stored row is kept"
    )
    assert json.loads(quarantined["raw"]) == reused


def test_the_same_content_spelled_differently_is_already_present(
    paths: DataPaths, tmp_path: Path
) -> None:
    ingest(paths, "executions", tmp_path / "monday.jsonl", [EXECUTION])
    respelled = {
        **EXECUTION,
        "created_at": "2026-10-01T14:00:00+02:00",  # the same instant as 12:00Z
        "query_input": {"filters": {"color": "red"}, "text": "red sofa"},
        "user_id": "u1",
        "extra_field": "ignored",
    }

    report = ingest(paths, "executions", tmp_path / "tuesday.jsonl", [respelled])

    assert (report.ingested, report.already_present, report.quarantined) == (0, 1, {})
    assert len(stored_rows(paths, "executions")) == 1
    assert stored_rows(paths, "quarantine") == []


def test_a_reused_interaction_id_with_other_content_is_quarantined(
    paths: DataPaths, tmp_path: Path
) -> None:
    ingest(paths, "executions", tmp_path / "executions.jsonl", [EXECUTION])
    first = {**INTERACTION, "interaction_id": "i_1"}
    ingest(paths, "interactions", tmp_path / "monday.jsonl", [first])
    same = {**first, "interaction_type": " CLICK"}  # types are stripped and lower-cased
    other = {**first, "document_id": "d3", "position": 2}

    report = ingest(paths, "interactions", tmp_path / "tuesday.jsonl", [same, other])

    assert (report.ingested, report.already_present) == (0, 1)
    assert report.quarantined == {"conflicting_duplicate_id": 1}
    (stored,) = stored_rows(paths, "interactions")
    assert (stored["document_id"], stored["position"]) == ("d2", 1)
    (quarantined,) = stored_rows(paths, "quarantine")
    assert (quarantined["table"], quarantined["line"]) == ("interactions", 2)
    assert "interaction_id 'i_1' is already stored" in quarantined["detail"]
    assert "differs in document_id, position" in quarantined["detail"]


def test_a_record_with_several_types_is_quarantined_whole_when_one_of_its_ids_conflicts(
    paths: DataPaths, tmp_path: Path
) -> None:
    ingest(paths, "executions", tmp_path / "executions.jsonl", [EXECUTION])
    ingest(
        paths,
        "interactions",
        tmp_path / "monday.jsonl",
        [{**INTERACTION, "interaction_id": "i_7", "interaction_type": ["click", "purchase"]}],
    )
    changed = {
        **INTERACTION,
        "interaction_id": "i_7",
        "interaction_type": ["click", "purchase", "add_to_cart"],
        "metadata": {"price": 12},
    }

    report = ingest(paths, "interactions", tmp_path / "tuesday.jsonl", [changed])

    assert (report.ingested, report.already_present) == (0, 0)
    assert report.quarantined == {"conflicting_duplicate_id": 1}
    assert sorted(r["interaction_id"] for r in stored_rows(paths, "interactions")) == [
        "i_7:click",
        "i_7:purchase",
    ]


def test_reingesting_a_conflicting_file_changes_nothing(paths: DataPaths, tmp_path: Path) -> None:
    ingest(paths, "executions", tmp_path / "monday.jsonl", [EXECUTION])
    reused = [{**EXECUTION, "session_id": "s2"}]
    ingest(paths, "executions", tmp_path / "tuesday.jsonl", reused)
    parts = parquet_parts(paths)

    again = ingest(paths, "executions", tmp_path / "tuesday.jsonl", reused)

    assert again.quarantined == {"conflicting_duplicate_id": 1}
    assert (again.quarantine_already_present, again.written) == (1, [])
    assert parquet_parts(paths) == parts


def test_within_one_input_the_first_row_still_wins(paths: DataPaths, tmp_path: Path) -> None:
    changed = {**EXECUTION, "documents": ["d9"]}

    report = ingest(paths, "executions", tmp_path / "monday.jsonl", [EXECUTION, changed])

    assert report.quarantined == {"duplicate_execution_id": 1}
    assert "monday.jsonl:1" in stored_rows(paths, "quarantine")[0]["detail"]
