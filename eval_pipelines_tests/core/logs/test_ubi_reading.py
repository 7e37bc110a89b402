"""The UBI reader's choices (issue 14, point 2), on real files through read_records / ingest_files:
ordinal types, events with and without a result, the sessions file, and which format a file looks like."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.logs import ingest_files
from eval_pipelines.core.logs.format_hint import format_hint
from eval_pipelines.core.logs.sources import read_records
from eval_pipelines.core.logs.ubi import ReadOptions, read_ubi_sessions
from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.core.logs.helpers import (
    EXECUTION,
    INTERACTION,
    stored_rows,
    write_jsonl,
)

QUERY = {
    "query_id": "q1",
    "application": "shop",
    "user_query": "red sofa",
    "query_response_hit_ids": ["d1", "d2", "d3"],
    "timestamp": "2026-10-01T12:00:00Z",
}


def event(ordinal: Any, document: str | None = "d2", **extra: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {"position": {"ordinal": ordinal}}
    if document is not None:
        attributes["object"] = {"object_id": document}
    return {
        "action_name": "click",
        "query_id": "q1",
        "timestamp": "2026-10-01T12:00:05Z",
        "event_attributes": attributes,
        **extra,
    }


@pytest.fixture
def with_query(tmp_path: Path) -> DataPaths:
    paths = DataPaths(tmp_path / "data")
    ingest_files(paths, "executions", [write_jsonl(tmp_path / "q.jsonl", [QUERY])], fmt="ubi")
    return paths


def test_ordinal_values_are_read_or_refused_naming_the_ordinal(
    with_query: DataPaths, tmp_path: Path
) -> None:
    source = write_jsonl(
        tmp_path / "events.jsonl",
        [event(2.0), event("2"), event(True), event(2, document=None)],
    )

    report = ingest_files(with_query, "interactions", [source], fmt="ubi")

    assert report.ingested == 1  # 2.0 is the integer 2: d2 at position 1
    assert [r["position"] for r in stored_rows(with_query, "interactions")] == [1]
    details = {r["line"]: (r["reason"], r["detail"]) for r in stored_rows(with_query, "quarantine")}
    label = "position (UBI event_attributes.position.ordinal, 1-based)"
    assert details == {
        2: ("wrong_type", f"{label}: expected an integer ordinal (the first result is 1), got a string"),
        3: ("wrong_type", f"{label}: expected an integer ordinal (the first result is 1), got a boolean (true)"),
        # A position without an object names no document: broken, not a query-level event.
        4: (
            "missing_field",
            "document_id (UBI event_attributes.object.object_id): required field is missing"
            " (alias: feature_id)",
        ),
    }  # fmt: skip
    assert report.reading.skipped == {}


def test_the_base_names_itself_in_labels_and_positions(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "events.jsonl", [event(0), event(2)])

    zero = read_records(source, "interactions", "ubi", ReadOptions(ubi_ordinal_base=0))
    one = read_records(source, "interactions", "ubi")

    assert [r.fields["position"] for r in zero] == [0, 2]
    assert zero[0].labels["position"].endswith("ordinal, 0-based)")
    assert (one[0].problem.reason, one[1].fields["position"]) == ("negative_position", 1)
    with pytest.raises(InvalidInputError, match="ubi_ordinal_base: 2 is not one of 0, 1"):
        ReadOptions(ubi_ordinal_base=2)


def test_events_without_a_result_are_skipped_by_their_action(tmp_path: Path) -> None:
    rows = [
        {"action_name": "on_search", "query_id": "q1", "event_attributes": {}},
        {"_source": {"action_name": "on_search", "query_id": "q2"}},
        {"action_name": "page_view", "event_attributes": None},
        {"query_id": "q1"},  # no action at all: a broken row, quarantined later
    ]
    records = read_records(write_jsonl(tmp_path / "e.jsonl", rows), "interactions", "ubi")

    assert [r.skipped for r in records] == [
        "UBI 'on_search' events (no event_attributes.object: no result to ingest)",
        "UBI 'on_search' events (no event_attributes.object: no result to ingest)",
        "UBI 'page_view' events (no event_attributes.object: no result to ingest)",
        None,
    ]


def test_sessions_file_first_session_per_query_and_conflicts(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    lines = [
        json.dumps({"query_id": "q1", "session_id": ""}),  # empty: not a session
        json.dumps({"query_id": "q1", "event_attributes": {"session_id": "s1"}}),
        json.dumps({"_source": {"query_id": "q2", "session_id": "s2"}}),
        json.dumps({"query_id": "q1", "session_id": "s9"}),
        json.dumps({"query_id": "q1", "session_id": "s8"}),
        '{"query_id": "q3", "session_id": "s3", "deep": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "",
    ]
    source.write_text("\ufeff" + "\n".join(lines), encoding="utf-8")

    found = read_ubi_sessions(source)

    assert found.sessions == {"q1": "s1", "q2": "s2"}
    assert (found.events, found.conflicted, found.unreadable) == (5, {"q1"}, 1)
    assert found.summary() == (
        f"--ubi-sessions {source}: 2 query_ids with a session from 5 events; query_ids whose"
        " events name more than one session: 1 (the first one is taken, e.g. query_id 'q1': 's1',"
        " then 's9'); lines of JSON no table can take: 1 (their session is not read; ingesting"
        " them as interactions quarantines them)"
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"query_id": "q1"}\n{"query_id": \n', ":2: invalid JSON"),
        (b'{"query_id": "q1"}\n["q1"]\n', ":2: expected a JSON object per line, got a list"),
        (b'{"query_id": "caf\xe9"}\n', ":1: not UTF-8 text (byte 0xe9"),
    ],
    ids=["broken-json", "not-an-object", "not-utf8"],
)
def test_a_sessions_file_that_cannot_be_read_is_refused(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    source = tmp_path / "events.jsonl"
    source.write_bytes(content)
    with pytest.raises(InvalidInputError, match="nothing was written") as raised:
        read_ubi_sessions(source)
    assert f"{source}{problem}" in str(raised.value)


def test_format_hint_only_when_the_file_looks_like_another_format() -> None:
    ubi_event = event(1)
    assert format_hint([INTERACTION], "interactions", "auto") is None
    assert format_hint([EXECUTION], "executions", "jsonl") is None
    assert format_hint([QUERY], "executions", "ubi") is None
    assert format_hint([ubi_event], "interactions", "ubi") is None
    assert format_hint([{"something": 1}, "a broken line"], "interactions", "auto") is None
    # The look of most records decides, and an index export's _source wrapper is looked into.
    mixed = [{"_source": ubi_event}, ubi_event, INTERACTION]
    assert format_hint(mixed, "interactions", "jsonl") == (
        "this file looks like OpenSearch UBI ubi_events (keys action_name, event_attributes,"
        " query_id, timestamp); pass --format ubi"
    )
    assert format_hint([INTERACTION], "executions", "auto") == (
        "this file looks like the contract's interactions (keys document_id, execution_id,"
        " interaction_type, position, timestamp); these are interactions: ingest interactions FILE"
    )
