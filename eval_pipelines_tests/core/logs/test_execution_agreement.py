"""An interaction must agree with its execution, or it is quarantined with the contradiction.

The execution served documents d1, d2, d3 (positions 0, 1, 2) at 2026-10-01T12:00:00Z. The
interaction's document must stand at its position, and it cannot happen before the search
(strictly before created_at; an equal time passes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eval_pipelines.core.logs import ingest_files
from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.core.logs.helpers import EXECUTION, INTERACTION, stored_rows, write_jsonl

AGREEMENT_VIOLATIONS: list[tuple[str, dict[str, Any], str]] = [
    (
        "document_not_served",
        {"document_id": "d9", "position": 1},
        "document_id: 'd9' is not among the 3 documents served by execution 'exec_1'",
    ),
    (
        "document_not_served",  # the document decides before the position
        {"document_id": "d9", "position": 7},
        "document_id: 'd9' is not among the 3 documents",
    ),
    (
        "position_out_of_range",
        {"document_id": "d2", "position": 3},
        "position: 3 is beyond the 3 documents served by execution 'exec_1' (0-based; 'd2' was"
        " served at 1)",
    ),
    (
        "position_mismatch",
        {"document_id": "d2", "position": 0},
        "position: 0 holds 'd1' among the 3 documents served by execution 'exec_1', not"
        " document_id 'd2' (served at 1)",
    ),
    (
        "timestamp_before_execution",
        {"timestamp": "2026-10-01T11:59:59.999Z"},
        "timestamp: 2026-10-01T11:59:59.999000+00:00 is 0.001 s before the created_at"
        " 2026-10-01T12:00:00+00:00 of execution 'exec_1'",
    ),
    (
        "timestamp_before_execution",  # an offset is compared as the instant it names
        {"timestamp": "2026-10-01T13:30:00+02:00"},
        "is 1,800 s before the created_at",
    ),
]


@pytest.fixture
def paths(tmp_path: Path) -> DataPaths:
    paths = DataPaths(tmp_path / "data")
    ingest_files(paths, "executions", [write_jsonl(tmp_path / "executions.jsonl", [EXECUTION])])
    return paths


@pytest.mark.parametrize(("reason", "change", "detail"), AGREEMENT_VIOLATIONS)
def test_an_interaction_contradicting_its_execution_is_quarantined(
    paths: DataPaths, tmp_path: Path, reason: str, change: dict[str, Any], detail: str
) -> None:
    bad = {**INTERACTION, **change}
    source = write_jsonl(tmp_path / "interactions.jsonl", [INTERACTION, bad])

    report = ingest_files(paths, "interactions", [source])

    assert (report.ingested, report.quarantined) == (1, {reason: 1})
    (quarantined,) = stored_rows(paths, "quarantine")
    assert (quarantined["table"], quarantined["line"], quarantined["reason"]) == (
        "interactions",
        2,
        reason,
    )
    assert detail in quarantined["detail"]
    assert json.loads(quarantined["raw"]) == bad


def test_interactions_that_agree_with_their_execution_are_ingested(
    paths: DataPaths, tmp_path: Path
) -> None:
    agreeing = [
        {**INTERACTION, "document_id": "d1", "position": 0},
        {**INTERACTION, "document_id": "d3", "position": 2},  # the last served position
        {**INTERACTION, "document_id": "d3", "position": None},  # position derived: 2
        {**INTERACTION, "timestamp": "2026-10-01T12:00:00Z"},  # at created_at exactly
        {**INTERACTION, "timestamp": "2026-10-01T14:00:00+02:00"},  # the same instant
        {**INTERACTION, "timestamp": "2026-10-01T12:00:00"},  # naive is UTC
    ]
    source = write_jsonl(tmp_path / "interactions.jsonl", agreeing)

    report = ingest_files(paths, "interactions", [source])

    assert (report.rows_read, report.quarantined) == (6, {})
    # The last three and the one at created_at are one interaction: same content, same derived id.
    assert (report.ingested, report.already_present) == (3, 3)
    assert [(r["document_id"], r["position"]) for r in stored_rows(paths, "interactions")] == [
        ("d1", 0),
        ("d3", 2),
        ("d2", 1),
    ]


def test_a_repeated_document_may_be_clicked_at_any_of_its_positions(
    tmp_path: Path,
) -> None:
    paths = DataPaths(tmp_path / "repeats")
    served_twice = {**EXECUTION, "documents": ["d1", "d2", "d1"]}
    ingest_files(paths, "executions", [write_jsonl(tmp_path / "e.jsonl", [served_twice])])
    clicks = [{**INTERACTION, "document_id": "d1", "position": p} for p in (0, 2)]

    report = ingest_files(paths, "interactions", [write_jsonl(tmp_path / "i.jsonl", clicks)])

    assert (report.ingested, report.quarantined) == (2, {})
