"""A benchmark on UBI logs whose baseline reproduces the logs moves no item (issue 14, point 2).

UBI logs as the schema writes them (1-based ordinals, sessions on the events, impressions, clicks,
carts, on_search) are ingested through the CLI; a search engine on loopback answers every query
with exactly the list the logs say was served. Replayed through it, every interacted document stands
where the logs put it: 0 items promoted and 0 demoted. Reading ordinals as 0-based positions put
every event one place off (quarantined, or "promoted" by one).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import mean
from typing import Any

import pytest
import yaml

from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.cli.conftest import run_cli
from eval_pipelines_tests.core.logs.helpers import stored_rows, write_jsonl
from eval_pipelines_tests.search_stub import search_stub

TEXTS = [f"query {n}" for n in range(12)]
SEARCHES_PER_TEXT = 4
SERVED = 8
START = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def served(text: str) -> list[str]:
    """The list the logged engine served for a text (and the stub serves again)."""
    number = TEXTS.index(text)
    return [f"doc_{(number * 3 + rank * 7) % 40}" for rank in range(SERVED)]


def ubi_event(query: dict[str, Any], action: str, ordinal: int | None, seconds: int) -> dict:
    """One ubi_events document of a logged search, in the session its events carry."""
    attributes: dict[str, Any] = {}
    if ordinal is not None:
        document = query["query_response_hit_ids"][ordinal - 1]
        attributes = {
            "object": {"object_id": document, "object_id_field": "sku"},
            "position": {"ordinal": ordinal},
        }
    at = datetime.fromisoformat(query["timestamp"]) + timedelta(seconds=seconds)
    return {
        "application": "shop",
        "action_name": action,
        "query_id": query["query_id"],
        "session_id": f"sess{int(query['query_id'][1:]) // 2}",
        "client_id": query["client_id"],
        "timestamp": at.isoformat(),
        "event_attributes": attributes,
    }


def ubi_logs(root: Path) -> tuple[Path, Path, int]:
    """ubi_queries and ubi_events files of 48 searches in 24 sessions; and the interactions held."""
    queries: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    interactions = 0
    for index in range(len(TEXTS) * SEARCHES_PER_TEXT):
        text = TEXTS[index % len(TEXTS)]
        query = {
            "application": "shop",
            "query_id": f"q{index}",
            "client_id": f"c{index // 2}",
            "user_query": text,
            "query_response_hit_ids": served(text),
            "timestamp": (START + timedelta(minutes=index)).isoformat(),
        }
        queries.append(query)
        events.append(ubi_event(query, "on_search", None, 0))
        events.extend(ubi_event(query, "impression", ordinal, 1) for ordinal in range(1, 6))
        clicked = sorted({1 + index % 5, 1 + (index * 3) % 7})
        events.extend(ubi_event(query, "click", ordinal, 5 + ordinal) for ordinal in clicked)
        interactions += 5 + len(clicked)
        if index % 3 == 0:
            events.append(ubi_event(query, "add_to_cart", 2, 30))
            interactions += 1
    return (
        write_jsonl(root / "ubi_queries.jsonl", queries),
        write_jsonl(root / "ubi_events.jsonl", events),
        interactions,
    )


def answer(text: str) -> list[tuple[str, float]]:
    return [(document, 1.0 / (rank + 1)) for rank, document in enumerate(served(text))]


def test_a_baseline_that_reproduces_ubi_logs_promotes_and_demotes_nothing(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "data")
    queries, events, interactions = ubi_logs(tmp_path)
    searches = len(TEXTS) * SEARCHES_PER_TEXT

    executions = run_cli(
        paths.root, "ingest", "executions", str(queries), "--format", "ubi",
        "--ubi-sessions", str(events), "--json",
    )  # fmt: skip
    assert executions.returncode == 0, executions.stderr
    assert json.loads(executions.stdout)["ingested"] == searches
    logged = run_cli(paths.root, "ingest", "interactions", str(events), "--format", "ubi", "--json")
    assert logged.returncode == 0, logged.stderr
    report = json.loads(logged.stdout)
    assert (report["ingested"], report["quarantined"]) == (interactions, {})
    assert sum(report["skipped"].values()) == searches  # one on_search per search
    assert {r["session_id"] for r in stored_rows(paths, "executions")} == {
        f"sess{n}" for n in range(searches // 2)
    }

    clicked_ordinals = [
        line["event_attributes"]["position"]["ordinal"]
        for line in map(json.loads, events.read_text().splitlines())
        if line["action_name"] == "click"
    ]
    with search_stub(answer) as url:
        paths.retrievers_dir.mkdir(parents=True, exist_ok=True)
        for retriever_id in ("shop", "shop_again"):
            config = {"id": retriever_id, "kind": "http", "http": {"url": url, "max_retries": 0}}
            (paths.retrievers_dir / f"{retriever_id}.yaml").write_text(yaml.safe_dump(config))
        created = run_cli(
            paths.root, "benchmark", "create", "--name", "ubi replay", "--baseline", "shop",
            "--candidate", "shop_again", "--sessions", str(searches), "--estimator",
            "logged_order", "--wait",
        )  # fmt: skip

    assert created.returncode in (0, 3), created.stderr[-3000:]
    record = json.loads(created.stdout)
    assert record["status"] == "completed", record.get("error_message")
    assert record["session_count"] == searches
    results = {r["retriever_id"]: r for r in record["results"]}
    for retriever_id in ("shop", "shop_again"):
        metrics = results[retriever_id]["metrics"]
        assert (metrics["items_promoted"], metrics["items_demoted"]) == (0, 0), retriever_id
        assert metrics["avg_position_delta"] == 0.0
        # Ranks are 1-based like ordinals, and impressions are no clicks.
        assert metrics["mean_rank_clicked"] == pytest.approx(mean(clicked_ordinals))
        assert results[retriever_id]["scored_sessions"] == searches
