"""The input formats: CSV (lists as JSON text in a cell), Parquet (native types) and OpenSearch UBI."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eval_pipelines.core.logs import ingest_files
from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.core.logs.helpers import EXECUTION, stored_rows, write_jsonl


@pytest.fixture
def paths(tmp_path: Path) -> DataPaths:
    return DataPaths(tmp_path / "data")


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# --- CSV ------------------------------------------------------------------------------------------

EXECUTION_COLUMNS = [
    "execution_id",
    "retriever_id",
    "session_id",
    "user_id",
    "query_input",
    "documents",
    "taxonomy_node_ids",
    "created_at",
]


def test_csv_cells_hold_lists_and_objects_as_json_text(paths: DataPaths, tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "executions.csv",
        EXECUTION_COLUMNS,
        [
            [
                "e1",
                "prod",
                "s1",
                "",
                '{"text":"sofa","filters":{"room":"bed"}}',
                '["d1","d2"]',
                "",
                "2026-10-01T12:00:00Z",
            ],
            # A quoted cell may span lines; the record's line is where it starts.
            ["e2", "prod", "s1", "u2", "lamp\nshade", "[]", '["lighting"]', "2026-10-01T12:01:00"],
            ["e3", "prod", "s1", "u2", "lamp", '["d1",', "", "2026-10-01T12:02:00Z"],
        ],
    )

    report = ingest_files(paths, "executions", [source])

    assert (report.rows_read, report.ingested, report.quarantined) == (3, 2, {"wrong_type": 1})
    e1, e2 = stored_rows(paths, "executions")
    assert e1["query_input"] == '{"filters":{"room":"bed"},"text":"sofa"}'
    assert (e1["user_id"], e1["documents"], e1["taxonomy_node_ids"]) == (None, ["d1", "d2"], [])
    assert e2["query_text"] == "lamp\nshade"  # any other cell is a plain string
    assert e2["query_input"] == '{"text":"lamp\\nshade"}'
    assert (e2["documents"], e2["taxonomy_node_ids"]) == ([], ["lighting"])
    (quarantined,) = stored_rows(paths, "quarantine")
    assert quarantined["line"] == 5
    assert "documents: the CSV cell starts like JSON but is not valid JSON" in quarantined["detail"]
    assert json.loads(quarantined["raw"])["documents"] == '["d1",'


def test_csv_interactions_read_integer_positions_and_type_lists(
    paths: DataPaths, tmp_path: Path
) -> None:
    ingest_files(paths, "executions", [write_jsonl(tmp_path / "executions.jsonl", [EXECUTION])])
    source = write_csv(
        tmp_path / "interactions.csv",
        ["execution_id", "feature_id", "interaction_type", "position", "timestamp", "metadata"],
        [
            ["exec_1", "d2", '["click","purchase"]', "1", "2026-10-01T12:00:05Z", '{"price":9}'],
            ["exec_1", "d3", "view", "", "2026-10-01T12:00:06Z", ""],
            ["exec_1", "d1", "click", "-2", "2026-10-01T12:00:07Z", ""],
        ],
    )

    report = ingest_files(paths, "interactions", [source])

    assert (report.ingested, report.quarantined) == (3, {"negative_position": 1})
    rows = stored_rows(paths, "interactions")
    assert [(r["document_id"], r["interaction_type"], r["position"]) for r in rows] == [
        ("d2", "click", 1),
        ("d2", "purchase", 1),
        ("d3", "view", 2),
    ]
    assert rows[0]["metadata"] == '{"price":9}'
    assert rows[2]["metadata"] is None


# --- Parquet --------------------------------------------------------------------------------------


def test_parquet_rows_with_native_lists_structs_and_timestamps(
    paths: DataPaths, tmp_path: Path
) -> None:
    paris = pa.timestamp("ns", tz="Europe/Paris")
    table = pa.table(
        {
            "execution_id": ["p1", "p2", "p3"],
            "retriever_id": ["prod", "prod", "prod"],
            "session_id": ["s1", "s2", "s3"],
            "user_id": ["u1", None, "u3"],
            "query_input": pa.array(
                [
                    {"text": "sofa", "filters": {"color": "red"}},
                    {"text": "lamp", "filters": None},
                    {"text": None, "filters": None},
                ],
                pa.struct(
                    [("text", pa.string()), ("filters", pa.struct([("color", pa.string())]))]
                ),
            ),
            "documents": [["d1", "d2"], [], ["d3"]],
            "created_at": pa.array([1_790_000_000_000_000_123] * 3, pa.int64()).cast(paris),
        }
    )
    source = tmp_path / "executions.parquet"
    pq.write_table(table, source)

    report = ingest_files(paths, "executions", [source])

    assert (report.ingested, report.quarantined) == (2, {"missing_field": 1})
    p1, p2 = stored_rows(paths, "executions")
    assert p1["query_input"] == '{"filters":{"color":"red"},"text":"sofa"}'
    assert p2["query_input"] == '{"text":"lamp"}'  # a null filters is no filters
    assert p1["created_at"] == datetime.fromtimestamp(1_790_000_000, tz=UTC)
    (quarantined,) = stored_rows(paths, "quarantine")
    assert quarantined["line"] == 3  # the 1-based row number
    assert "query_input.text: required field is missing" in quarantined["detail"]


def test_parquet_interactions_with_naive_timestamps_and_missing_positions(
    paths: DataPaths, tmp_path: Path
) -> None:
    ingest_files(paths, "executions", [write_jsonl(tmp_path / "executions.jsonl", [EXECUTION])])
    table = pa.table(
        {
            "execution_id": ["exec_1", "exec_1"],
            "document_id": ["d3", "d1"],
            "interaction_type": [["click", "bookmark"], ["view"]],
            "position": pa.array([None, 0], pa.int64()),
            "timestamp": pa.array([datetime(2026, 10, 1, 12, 0, 5)] * 2, pa.timestamp("us")),
        }
    )
    source = tmp_path / "interactions.parquet"
    pq.write_table(table, source)

    ingest_files(paths, "interactions", [source])

    rows = stored_rows(paths, "interactions")
    assert [(r["document_id"], r["interaction_type"], r["position"]) for r in rows] == [
        ("d3", "click", 2),
        ("d3", "bookmark", 2),
        ("d1", "view", 0),
    ]
    assert rows[0]["timestamp"] == datetime(2026, 10, 1, 12, 0, 5, tzinfo=UTC)


# --- OpenSearch UBI -------------------------------------------------------------------------------

UBI_QUERIES: list[dict[str, Any]] = [
    {
        "application": "shop_search",
        "query_id": "q1",
        "client_id": "c1",
        "user_query": "red sofa",
        "query_attributes": {"session_id": "sess1"},
        "object_id_field": "sku",
        "query_response_id": "r1",
        "query_response_hit_ids": ["d1", "d2", "d3"],
        "timestamp": "2026-10-01T12:00:00.000Z",
    },
    {
        "query_id": "q2",
        "client_id": "c2",
        "user_query": "lamp",
        "query_response_hit_ids": [],
        "timestamp": 1_790_000_000_000,
    },
    {"_source": {"query_id": "q3", "user_query": "rug", "timestamp": "2026-10-01T12:00:00Z"}},
]


def test_ubi_queries_become_executions(paths: DataPaths, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "ubi_queries.jsonl", UBI_QUERIES)

    report = ingest_files(paths, "executions", [source], fmt="ubi", default_retriever_id="legacy")

    assert (report.ingested, report.quarantined) == (2, {"missing_field": 1})
    # Stored one part per day: compare by id, not by the parts' order.
    q1, q2 = sorted(stored_rows(paths, "executions"), key=lambda row: row["execution_id"])
    assert q1 == {
        "execution_id": "q1",
        "retriever_id": "shop_search",  # the UBI application
        "session_id": "sess1",  # from query_attributes.session_id
        "user_id": "c1",  # the UBI client_id
        "query_text": "red sofa",
        "query_input": '{"text":"red sofa"}',
        "documents": ["d1", "d2", "d3"],
        "taxonomy_node_ids": [],
        "created_at": datetime(2026, 10, 1, 12, 0, tzinfo=UTC),
        "metadata": None,
    }
    # No application: the default retriever id; no session: one session per query; epoch millis.
    assert (q2["retriever_id"], q2["session_id"]) == ("legacy", "q2")
    assert q2["created_at"] == datetime.fromtimestamp(1_790_000_000, tz=UTC)
    (quarantined,) = stored_rows(paths, "quarantine")
    assert quarantined["detail"] == (
        "documents (UBI query_response_hit_ids): required field is missing"
    )


def test_ubi_events_become_interactions(paths: DataPaths, tmp_path: Path) -> None:
    queries = write_jsonl(tmp_path / "ubi_queries.jsonl", UBI_QUERIES[:1])
    ingest_files(paths, "executions", [queries], fmt="ubi")
    click = {
        "application": "shop_search",
        "action_name": "click",
        "query_id": "q1",
        "session_id": "sess1",
        "client_id": "c1",
        "timestamp": "2026-10-01T12:00:05Z",
        "message_type": "INFO",
        "message": "clicked a result",
        "event_attributes": {
            "object": {"object_id": "d2", "object_id_field": "sku"},
            "position": {"ordinal": 2},  # the UBI schema's ordinal: d2 is the 2nd result
        },
    }
    add_to_cart = {
        "action_name": "Add_To_Cart",
        "query_id": "q1",
        "client_id": "c1",
        "timestamp": "2026-10-01T12:00:09Z",
        "event_attributes": {"object": {"object_id": "d3"}, "session_id": "sess2"},
    }
    not_an_object = {**add_to_cart, "event_attributes": {"object": "d3"}}
    page_view = {"action_name": "page_view", "client_id": "c1", "timestamp": "2026-10-01T12:01:00Z"}
    source = write_jsonl(
        tmp_path / "ubi_events.jsonl", [click, add_to_cart, not_an_object, page_view]
    )

    report = ingest_files(paths, "interactions", [source], fmt="ubi")

    assert (report.ingested, report.quarantined) == (2, {"wrong_type": 1})
    # An event with no result (no event_attributes.object) is counted, not quarantined.
    assert report.reading.skipped == {
        "UBI 'page_view' events (no event_attributes.object: no result to ingest)": 1
    }
    clicked, carted = stored_rows(paths, "interactions")
    assert {k: clicked[k] for k in clicked if k not in ("interaction_id", "metadata")} == {
        "execution_id": "q1",
        "document_id": "d2",
        "interaction_type": "click",
        "position": 1,
        "session_id": "sess1",
        "user_id": "c1",
        "timestamp": datetime(2026, 10, 1, 12, 0, 5, tzinfo=UTC),
    }
    # Unmapped UBI fields, event_attributes included, are kept in metadata.
    assert json.loads(clicked["metadata"]) == {
        "application": "shop_search",
        "message_type": "INFO",
        "message": "clicked a result",
        "event_attributes": click["event_attributes"],
    }
    assert (carted["interaction_type"], carted["position"], carted["session_id"]) == (
        "add_to_cart",
        2,  # derived: d3 is third in q1's hits
        "sess2",  # from event_attributes.session_id
    )
    details = sorted(row["detail"] for row in stored_rows(paths, "quarantine"))
    assert details == ["event_attributes.object: expected an object, got a string"]
