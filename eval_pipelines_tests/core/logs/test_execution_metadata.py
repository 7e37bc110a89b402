"""Executions carry an optional `metadata` object (exploration traffic is recorded there), checked
exactly as interactions' metadata is, from every format; parts stored before the column still read."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eval_pipelines.core.benchmarks.sampling import SessionFilter, sample_sessions
from eval_pipelines.core.logs.ingest import ingest_files
from eval_pipelines.core.logs.tables import EXECUTIONS_SCHEMA, EXPLORATION_KEY, IMPRESSION
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.warehouse import query
from eval_pipelines_tests.core.logs.helpers import EXECUTION, INTERACTION, write_jsonl

EXPLORED = {EXPLORATION_KEY: {"method": "shuffle_top_k", "k": 12}, "ranker_version": "2026-09"}
EXPLORED_TEXT = '{"exploration":{"k":12,"method":"shuffle_top_k"},"ranker_version":"2026-09"}'
CLI = Path(sys.executable).with_name("eval-pipelines")


@pytest.fixture
def paths(tmp_path: Path) -> DataPaths:
    return DataPaths(tmp_path / "data")


def stored_metadata(paths: DataPaths) -> dict[str, str | None]:
    table = query(paths, "SELECT execution_id, metadata FROM logged_executions")
    return dict(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))


def quarantined(paths: DataPaths) -> list[tuple[str, str, str]]:
    table = query(paths, 'SELECT "table", reason, detail FROM quarantine ORDER BY "table"')
    return [tuple(row.values()) for row in table.to_pylist()]


def test_the_constants_name_what_the_logs_carry() -> None:
    assert (EXPLORATION_KEY, IMPRESSION) == ("exploration", "impression")
    assert EXECUTIONS_SCHEMA.names[-1] == "metadata"
    assert EXECUTIONS_SCHEMA.field("metadata").type == pa.string()
    assert EXECUTIONS_SCHEMA.field("metadata").nullable


def test_metadata_round_trips_from_jsonl(paths: DataPaths, tmp_path: Path) -> None:
    rows = [
        {**EXECUTION, "metadata": EXPLORED},
        {**EXECUTION, "execution_id": "exec_2", "metadata": None},
        {**EXECUTION, "execution_id": "exec_3", "metadata": {}},
        {**EXECUTION, "execution_id": "exec_4"},
    ]
    report = ingest_files(paths, "executions", [write_jsonl(tmp_path / "e.jsonl", rows)])
    assert (report.ingested, report.quarantined) == (4, {})
    assert stored_metadata(paths) == {
        "exec_1": EXPLORED_TEXT,
        "exec_2": None,
        "exec_3": None,
        "exec_4": None,
    }
    assert json.loads(stored_metadata(paths)["exec_1"]) == EXPLORED


def test_metadata_round_trips_from_csv(paths: DataPaths, tmp_path: Path) -> None:
    source = tmp_path / "e.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["execution_id", "retriever_id", "session_id", "query_input", "documents",
                         "created_at", "metadata"])  # fmt: skip
        writer.writerow(["exec_1", "prod", "s1", "red sofa", '["d1","d2"]',
                         "2026-10-01T12:00:00Z", json.dumps(EXPLORED)])  # fmt: skip
        writer.writerow(["exec_2", "prod", "s2", "red sofa", '["d1"]',
                         "2026-10-01T12:00:00Z", ""])  # fmt: skip
    report = ingest_files(paths, "executions", [source])
    assert (report.ingested, report.quarantined) == (2, {})
    assert stored_metadata(paths) == {"exec_1": EXPLORED_TEXT, "exec_2": None}


def test_metadata_round_trips_from_parquet(paths: DataPaths, tmp_path: Path) -> None:
    source = tmp_path / "e.parquet"
    pq.write_table(
        pa.Table.from_pylist(
            [
                {**EXECUTION, "query_input": "red sofa", "metadata": EXPLORED},
                {**EXECUTION, "execution_id": "exec_2", "query_input": "sofa", "metadata": None},
            ]
        ),
        source,
    )
    report = ingest_files(paths, "executions", [source])
    assert (report.ingested, report.quarantined) == (2, {})
    assert stored_metadata(paths) == {"exec_1": EXPLORED_TEXT, "exec_2": None}


@pytest.mark.parametrize(
    "bad",
    ["shuffle_top_k", ["exploration"], 12, True, {"exploration": {"method": "\ud800"}}],
    ids=["string", "list", "number", "boolean", "lone-surrogate"],
)
def test_bad_metadata_is_quarantined_as_for_interactions(
    paths: DataPaths, tmp_path: Path, bad: Any
) -> None:
    """The same value in an execution and in an interaction is refused with the same reason and
    the same sentence, and the execution is not stored."""
    ingest_files(paths, "executions", [write_jsonl(tmp_path / "ok.jsonl", [EXECUTION])])
    bad_execution = {**EXECUTION, "execution_id": "exec_bad", "metadata": bad}
    report = ingest_files(
        paths, "executions", [write_jsonl(tmp_path / "bad.jsonl", [bad_execution])]
    )
    assert report.ingested == 0 and sum(report.quarantined.values()) == 1
    ingest_files(
        paths,
        "interactions",
        [write_jsonl(tmp_path / "i.jsonl", [{**INTERACTION, "metadata": bad}])],
    )
    (execution_row, interaction_row) = quarantined(paths)
    assert execution_row[0] == "executions" and interaction_row[0] == "interactions"
    assert execution_row[1:] == interaction_row[1:]
    assert execution_row[2].startswith("metadata")
    assert "exec_bad" not in stored_metadata(paths)


def test_an_old_executions_part_without_metadata_still_reads(
    paths: DataPaths, tmp_path: Path
) -> None:
    """A part written before executions had `metadata`: the warehouse, ingest's stored-row checks
    and session sampling read it, alone and beside new parts, its metadata as NULL."""
    old_schema = EXECUTIONS_SCHEMA.remove(EXECUTIONS_SCHEMA.get_field_index("metadata"))
    old_row = {
        **EXECUTION,
        "execution_id": "exec_old",
        "query_text": "red sofa",
        "query_input": '{"text":"red sofa"}',
        "created_at": datetime(2026, 9, 21, 14, 13, 20, tzinfo=UTC),
    }
    directory = paths.log_table_dir("executions")
    directory.mkdir(parents=True)
    old_part = directory / "part-old.parquet"
    pq.write_table(pa.Table.from_pylist([old_row], schema=old_schema), old_part)
    assert stored_metadata(paths) == {"exec_old": None}

    again = {**old_row, "query_input": {"text": "red sofa"}, "created_at": "2026-09-21T14:13:20Z"}
    new_rows = [again, {**EXECUTION, "execution_id": "exec_new", "metadata": EXPLORED}]
    report = ingest_files(paths, "executions", [write_jsonl(tmp_path / "e.jsonl", new_rows)])
    assert (report.ingested, report.already_present, report.quarantined) == (1, 1, {})
    assert stored_metadata(paths) == {"exec_old": None, "exec_new": EXPLORED_TEXT}

    changed = {**again, "metadata": {"ranker_version": "previous"}}
    report = ingest_files(paths, "executions", [write_jsonl(tmp_path / "c.jsonl", [changed])])
    assert report.quarantined == {"conflicting_duplicate_id": 1}
    (_, _, detail) = quarantined(paths)[0]
    assert "differs in metadata" in detail

    ingest_files(
        paths,
        "interactions",
        [write_jsonl(tmp_path / "i.jsonl", [{**INTERACTION, "execution_id": "exec_old"}])],
    )
    for name in ("part-000.parquet", "part-zzz.parquet"):  # the old part read first, then last
        old_part = old_part.rename(directory / name)
        sample = sample_sessions(paths, SessionFilter(), count=10, seed=1)
        assert "exec_old" in sample.sessions.column("execution_id").to_pylist()


def test_the_cli_ingests_execution_metadata(paths: DataPaths, tmp_path: Path) -> None:
    rows = [{**EXECUTION, "metadata": EXPLORED}, {**EXECUTION, "execution_id": "e2", "metadata": 3}]
    source = write_jsonl(tmp_path / "e.jsonl", rows)
    done = subprocess.run(
        [str(CLI), "--data-dir", str(paths.root), "ingest", "executions", str(source)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "quarantined 1 (wrong_type: 1)" in done.stdout + done.stderr
    assert stored_metadata(paths) == {"exec_1": EXPLORED_TEXT}
