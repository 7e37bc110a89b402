"""UBI logs as they are written (issue 14, point 2), through `eval-pipelines ingest` in a subprocess.

The UBI schema's `event_attributes.position.ordinal` is the nth result (1, 3, 24...): position =
ordinal - 1 by default, ordinal - 0 with `--ubi-ordinal-base 0`; an ordinal below the base or past
the served list is quarantined naming the ordinal as written. `impression` events are stored as
impressions; `on_search` (no result) is counted as skipped, not quarantined. `--ubi-sessions` gives
UBI queries their events' session ids. A file that looks like another format than the one asked
fails with a hint (exit 2) and nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.cli.conftest import CliResult, run_cli
from eval_pipelines_tests.core.logs.helpers import (
    EXECUTION,
    INTERACTION,
    parquet_parts,
    stored_rows,
    write_jsonl,
)

QUERY: dict[str, Any] = {
    "query_id": "q1",
    "application": "shop",
    "client_id": "c1",
    "user_query": "red sofa",
    "query_response_hit_ids": ["d1", "d2", "d3"],
    "timestamp": "2026-10-01T12:00:00Z",
}
ON_SEARCH_SKIPPED = "UBI 'on_search' events (no event_attributes.object: no result to ingest)"
LABEL_1 = "position (UBI event_attributes.position.ordinal, 1-based)"


def event(action: str, document: str | None, ordinal: Any = None, **extra: Any) -> dict[str, Any]:
    """A ubi_events document of query q1 in session sess_a, as the UBI schema writes it."""
    attributes: dict[str, Any] = {}
    if document is not None:
        attributes["object"] = {"object_id": document, "object_id_field": "sku"}
    if ordinal is not None:
        attributes["position"] = {"ordinal": ordinal}
    return {
        "action_name": action,
        "query_id": "q1",
        "session_id": "sess_a",
        "client_id": "c1",
        "timestamp": "2026-10-01T12:00:05Z",
        "event_attributes": attributes,
        **extra,
    }


def ingest(data: Path, table: str, file: Path, *flags: str) -> CliResult:
    return run_cli(data, "ingest", table, str(file), "--json", *flags)


def with_query(tmp_path: Path) -> DataPaths:
    """A data directory holding UBI query q1 (served d1, d2, d3)."""
    paths = DataPaths(tmp_path / "data")
    queries = write_jsonl(tmp_path / "ubi_queries.jsonl", [QUERY])
    result = ingest(paths.root, "executions", queries, "--format", "ubi")
    assert result.returncode == 0, result.stderr
    return paths


def ingest_events(
    tmp_path: Path, events: list[dict[str, Any]], *flags: str
) -> tuple[DataPaths, dict[str, Any]]:
    paths = with_query(tmp_path)
    source = write_jsonl(tmp_path / "ubi_events.jsonl", events)
    result = ingest(paths.root, "interactions", source, "--format", "ubi", *flags)
    assert result.returncode == 0, result.stderr
    return paths, json.loads(result.stdout)


def stored(paths: DataPaths) -> list[tuple[str, str, int]]:
    rows = stored_rows(paths, "interactions")
    return sorted((r["interaction_type"], r["document_id"], r["position"]) for r in rows)


def quarantine(paths: DataPaths) -> list[tuple[str, str]]:
    return [(r["reason"], r["detail"]) for r in stored_rows(paths, "quarantine")]


def test_ordinals_count_from_1_as_the_ubi_schema_writes_them(tmp_path: Path) -> None:
    paths, report = ingest_events(
        tmp_path, [event("click", "d1", 1), event("add_to_cart", "d3", 3)]
    )

    assert (report["ingested"], report["quarantined"]) == (2, {})
    assert stored(paths) == [("add_to_cart", "d3", 2), ("click", "d1", 0)]


def test_ordinals_from_0_with_the_option(tmp_path: Path) -> None:
    events = [event("click", "d1", 0), event("add_to_cart", "d3", 2)]
    paths, report = ingest_events(tmp_path, events, "--ubi-ordinal-base", "0")

    assert (report["ingested"], report["quarantined"]) == (2, {})
    assert stored(paths) == [("add_to_cart", "d3", 2), ("click", "d1", 0)]


def test_an_ordinal_below_the_base_is_quarantined_naming_it(tmp_path: Path) -> None:
    paths, report = ingest_events(tmp_path, [event("click", "d1", 0), event("click", "d2", 2)])

    assert (report["ingested"], report["quarantined"]) == (1, {"negative_position": 1})
    assert stored(paths) == [("click", "d2", 1)]
    ((reason, detail),) = quarantine(paths)
    assert reason == "negative_position"
    assert detail == (
        f"{LABEL_1}: ordinal 0 is below the first ordinal 1 (pass --ubi-ordinal-base 0 if this"
        " writer counts from 0)"
    )


def test_an_ordinal_past_the_served_list_is_quarantined_naming_it_as_written(
    tmp_path: Path,
) -> None:
    paths, report = ingest_events(tmp_path, [event("click", "d3", 4), event("click", "d3", 2)])

    assert (report["ingested"], report["quarantined"]) == (
        0,
        {"position_mismatch": 1, "position_out_of_range": 1},
    )
    details = dict(quarantine(paths))
    assert "ordinal 4, counted from 1 (ordinal = position + 1)" in details["position_out_of_range"]
    assert "ordinal 2, counted from 1" in details["position_mismatch"]


def test_impressions_are_stored_as_impressions_at_their_positions(tmp_path: Path) -> None:
    events = [
        event("impression", "d1", 1),
        event("impression", "d2", 2),
        event("impression", "d3", 3),
        event("click", "d2", 2),
    ]
    paths, report = ingest_events(tmp_path, events)

    assert (report["ingested"], report["quarantined"]) == (4, {})
    assert stored(paths) == [
        ("click", "d2", 1),
        ("impression", "d1", 0),
        ("impression", "d2", 1),
        ("impression", "d3", 2),
    ]


def test_on_search_is_counted_as_skipped_not_quarantined(tmp_path: Path) -> None:
    on_search = event("on_search", None, None, message="red sofa")
    paths, report = ingest_events(tmp_path, [on_search, on_search, event("click", "d2", 2)])

    assert report["rows_read"] == 3
    assert (report["ingested"], report["quarantined"]) == (1, {})
    assert report["skipped"] == {ON_SEARCH_SKIPPED: 2}
    assert parquet_parts(paths)["quarantine"] == []

    text = run_cli(
        paths.root,
        "ingest",
        "interactions",
        str(tmp_path / "ubi_events.jsonl"),
        "--format",
        "ubi",
    )
    assert f"skipped 2: {ON_SEARCH_SKIPPED}" in text.stdout.splitlines()


def test_queries_take_their_events_sessions(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "data")
    queries = write_jsonl(
        tmp_path / "ubi_queries.jsonl",
        [
            QUERY,
            {**QUERY, "query_id": "q2"},
            {**QUERY, "query_id": "q3", "query_attributes": {"session_id": "attr_s"}},
            {**QUERY, "query_id": "q4"},
        ],
    )
    events = write_jsonl(
        tmp_path / "ubi_events.jsonl",
        [
            event("on_search", None, None),  # sess_a for q1
            event("click", "d2", 2, session_id="sess_b"),  # q1 again, another session: a conflict
            {**event("click", "d1", 1), "query_id": "q2", "session_id": "sess_c"},
            {**event("click", "d1", 1), "query_id": "q3", "session_id": "sess_d"},
        ],
    )

    result = ingest(
        paths.root, "executions", queries, "--format", "ubi", "--ubi-sessions", str(events)
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    sessions = {r["execution_id"]: r["session_id"] for r in stored_rows(paths, "executions")}
    # The events' session wins over query_attributes; q4 has no event: its own query_id.
    assert sessions == {"q1": "sess_a", "q2": "sess_c", "q3": "sess_d", "q4": "q4"}
    assert report["notes"] == [
        f"--ubi-sessions {events}: 3 query_ids with a session from 4 events; query_ids whose"
        " events name more than one session: 1 (the first one is taken, e.g. query_id 'q1':"
        " 'sess_a', then 'sess_b')"
    ]
    ((remark, count),) = report["remarks"].items()
    assert count == 1 and "pass --ubi-sessions EVENTS_FILE" in remark


def test_without_sessions_the_report_counts_the_fallback(tmp_path: Path) -> None:
    queries = write_jsonl(tmp_path / "ubi_queries.jsonl", [QUERY, {**QUERY, "query_id": "q2"}])

    result = run_cli(tmp_path / "data", "ingest", "executions", str(queries), "--format", "ubi")

    assert result.returncode == 0, result.stderr
    assert (
        "note: 2 rows: session_id taken from the UBI query_id (one session per search: the query"
        " document and --ubi-sessions name none; pass --ubi-sessions EVENTS_FILE to take the"
        " events' session ids)"
    ) in result.stdout.splitlines()


@pytest.mark.parametrize(
    ("table", "rows", "flags", "hint"),
    [
        (
            "interactions",
            [event("click", "d2", 2), event("on_search", None, None)],
            (),
            "this file looks like OpenSearch UBI ubi_events (keys action_name, client_id,"
            " event_attributes, query_id, session_id, timestamp); pass --format ubi",
        ),
        (
            "executions",
            [QUERY],
            (),
            "this file looks like OpenSearch UBI ubi_queries (keys query_id,"
            " query_response_hit_ids, user_query, application, client_id, timestamp);"
            " pass --format ubi",
        ),
        (
            "interactions",
            [QUERY],
            ("--format", "ubi"),
            "this file looks like OpenSearch UBI ubi_queries (keys query_id,"
            " query_response_hit_ids, user_query, application, client_id, timestamp); these are"
            " executions: ingest executions FILE --format ubi",
        ),
        (
            "interactions",
            [INTERACTION],
            ("--format", "ubi"),
            "this file looks like the contract's interactions (keys document_id, execution_id,"
            " interaction_type, position, timestamp); leave out --format ubi",
        ),
        (
            "executions",
            [EXECUTION],
            ("--format", "ubi"),
            "this file looks like the contract's executions (keys documents, execution_id,"
            " query_input, created_at, retriever_id, session_id); leave out --format ubi",
        ),
    ],
    ids=[
        "events-without-format",
        "queries-without-format",
        "queries-as-interactions",
        "contract-interactions-as-ubi",
        "contract-executions-as-ubi",
    ],
)
def test_a_file_in_another_format_gets_a_hint_and_nothing_is_written(
    tmp_path: Path, table: str, rows: list[dict[str, Any]], flags: tuple[str, ...], hint: str
) -> None:
    paths = with_query(tmp_path)
    before = parquet_parts(paths)
    source = write_jsonl(tmp_path / "logs.jsonl", rows)

    result = run_cli(paths.root, "ingest", table, str(source), *flags)

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert f"{source}: every one of its" in result.stderr
    assert f"{hint} (nothing was written)" in result.stderr
    assert parquet_parts(paths) == before


def test_a_file_of_the_format_asked_whose_rows_are_all_bad_is_still_quarantined(
    tmp_path: Path,
) -> None:
    paths = with_query(tmp_path)
    source = write_jsonl(tmp_path / "ubi_events.jsonl", [event("click", "d9", 1)])

    result = ingest(paths.root, "interactions", source, "--format", "ubi")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["quarantined"] == {"document_not_served": 1}


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (
            ("executions", "--format", "ubi", "--ubi-ordinal-base", "0"),
            "--ubi-ordinal-base: only for `ingest interactions --format ubi`",
        ),
        (
            ("interactions", "--ubi-ordinal-base", "0"),
            "--ubi-ordinal-base: only for `ingest interactions --format ubi`",
        ),
        (
            ("interactions", "--format", "ubi", "--ubi-sessions", "{events}"),
            "--ubi-sessions: only for `ingest executions --format ubi`",
        ),
        (
            ("executions", "--format", "ubi", "--ubi-sessions", "{missing}"),
            "--ubi-sessions: not found",
        ),
        (("interactions", "--format", "ubi", "--ubi-ordinal-base", "2"), "invalid choice: 2"),
    ],
    ids=["base-for-executions", "base-without-ubi", "sessions-for-events", "sessions-missing",
         "base-2"],
)  # fmt: skip
def test_ubi_flags_are_refused_where_they_mean_nothing(
    tmp_path: Path, args: tuple[str, ...], problem: str
) -> None:
    events = write_jsonl(tmp_path / "ubi_events.jsonl", [event("click", "d1", 1)])
    table, *flags = (a.format(events=events, missing=tmp_path / "absent.jsonl") for a in args)

    result = run_cli(tmp_path / "data", "ingest", table, str(events), *flags)

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert problem in result.stderr
    assert not (tmp_path / "data" / "logs").exists()
