"""Session filtering and sampling over real ingested logs: JSONL in, through ingest_files, then DuckDB."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import chisquare

from eval_pipelines.core.benchmarks.sampling import (
    SAMPLED_INTERACTIONS_SCHEMA,
    SAMPLED_SESSIONS_SCHEMA,
    SessionFilter,
    SessionSample,
    allocate_largest_remainder,
    sample_sessions,
)
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.logs.ingest import ingest_files
from eval_pipelines.core.paths import DataPaths

T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def paths(tmp_path: Path) -> DataPaths:
    return DataPaths(tmp_path / "data")


def execution(
    execution_id: str,
    retriever_id: str = "prod",
    nodes: list[str] | None = None,
    created_at: datetime = T0,
) -> dict[str, Any]:
    return {
        "execution_id": execution_id,
        "retriever_id": retriever_id,
        "session_id": f"sess_{execution_id}",
        "user_id": f"user_{execution_id}",
        "query_input": {"text": f"query {execution_id}"},
        "documents": ["d0", "d1", "d2", "d3"],
        "taxonomy_node_ids": ["shoes"] if nodes is None else nodes,
        "created_at": created_at.isoformat(timespec="microseconds"),
    }


def interaction(execution_id: str, document: str, kind: str, position: int) -> dict[str, Any]:
    return {
        "execution_id": execution_id,
        "document_id": document,
        "interaction_type": kind,
        "position": position,
        "timestamp": "2026-11-01T00:00:00Z",  # after every execution here: none precedes its search
    }


def clicked(execution_id: str) -> dict[str, Any]:
    return interaction(execution_id, "d1", "click", 1)


def ingest(
    paths: DataPaths, executions: list[dict[str, Any]], interactions: list[dict[str, Any]]
) -> None:
    """Write the rows as JSONL and ingest them with the real ingest path; nothing may be quarantined."""
    for table, rows in (("executions", executions), ("interactions", interactions)):
        if not rows:
            continue
        source = paths.root.parent / f"{table}.jsonl"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        report = ingest_files(paths, table, [source])  # type: ignore[arg-type]
        assert report.quarantined == {}, report.summary_lines()


def ingest_clicked(paths: DataPaths, executions: list[dict[str, Any]]) -> None:
    ingest(paths, executions, [clicked(e["execution_id"]) for e in executions])


def sampled_ids(sample: SessionSample) -> list[str]:
    return sample.sessions.column("execution_id").to_pylist()


def md5_order(execution_ids: list[str], seed: int) -> list[str]:
    """The documented random order, computed independently of DuckDB."""
    return sorted(execution_ids, key=lambda e: (hashlib.md5(f"{e}:{seed}".encode()).hexdigest(), e))


# --- input errors ----------------------------------------------------------------------------------


def test_no_ingested_logs_is_an_input_error(paths: DataPaths) -> None:
    with pytest.raises(InvalidInputError, match="no logged executions were ingested"):
        sample_sessions(paths, SessionFilter(), 10, 0)


@pytest.mark.parametrize(
    ("session_filter", "count", "message"),
    [
        (SessionFilter(strategy="newest"), 10, "sample_strategy: 'newest' is not one of"),
        (SessionFilter(), 0, "session_count: expected an integer >= 1"),
        (SessionFilter(min_interactions=-1), 10, "min_interactions: expected an integer >= 0"),
        (SessionFilter(counted_types=frozenset()), 10, "counted types is empty"),
        (SessionFilter(retriever_ids=("prod", "")), 10, r"retriever_ids\[1\]"),
        (
            SessionFilter(start=T0, end=T0 - timedelta(seconds=1)),
            10,
            "time_range: start .* is after end",
        ),
    ],
)
def test_bad_arguments_are_input_errors(
    paths: DataPaths, session_filter: SessionFilter, count: int, message: str
) -> None:
    ingest_clicked(paths, [execution("e1")])
    with pytest.raises(InvalidInputError, match=message):
        sample_sessions(paths, session_filter, count, 0)


# --- filters ---------------------------------------------------------------------------------------


def test_a_sampled_session_carries_its_logged_execution(paths: DataPaths) -> None:
    ingest(
        paths,
        [execution("e1", nodes=["shoes", "boots"])],
        [clicked("e1"), interaction("e1", "d3", "purchase", 3), interaction("e1", "d2", "view", 2)],
    )

    sample = sample_sessions(paths, SessionFilter(), 10, 0)

    assert sample.sessions.schema == SAMPLED_SESSIONS_SCHEMA
    assert sample.sessions.to_pylist() == [
        {
            "execution_id": "e1",
            "session_id": "sess_e1",
            "retriever_id": "prod",
            "user_id": "user_e1",
            "query_input": '{"text":"query e1"}',
            "query_text": "query e1",
            "logged_documents": ["d0", "d1", "d2", "d3"],
            "taxonomy_node_id": "shoes",
            "created_at": T0,
            "interaction_count": 2,
            "sample_rank": 0,
        }
    ]
    assert sample.interactions.schema == SAMPLED_INTERACTIONS_SCHEMA
    assert sample.interactions.to_pylist() == [
        {"execution_id": "e1", "document_id": "d1", "interaction_type": "click", "position": 1},
        {"execution_id": "e1", "document_id": "d3", "interaction_type": "purchase", "position": 3},
    ]
    assert (sample.matched, sample.requested, sample.seed, sample.strategy) == (1, 10, 0, "random")
    assert sample.allocation is None


def test_retriever_ids_keep_only_the_listed_retrievers(paths: DataPaths) -> None:
    ingest_clicked(
        paths, [execution("e1", "alpha"), execution("e2", "beta"), execution("e3", "gamma")]
    )

    sample = sample_sessions(paths, SessionFilter(retriever_ids=("alpha", "gamma")), 10, 0)

    assert sorted(sampled_ids(sample)) == ["e1", "e3"]
    assert sample.matched == 2
    everything = sample_sessions(paths, SessionFilter(retriever_ids=()), 10, 0)
    assert everything.matched == 3


def test_taxonomy_node_ids_keep_sessions_sharing_any_node(paths: DataPaths) -> None:
    ingest_clicked(
        paths,
        [
            execution("e1", nodes=["shoes"]),
            execution("e2", nodes=["hats", "boots"]),
            execution("e3", nodes=[]),
            execution("e4", nodes=["boots"]),
            execution("e5", nodes=["bags", "socks"]),
        ],
    )

    sample = sample_sessions(paths, SessionFilter(taxonomy_node_ids=("boots", "socks")), 10, 0)

    nodes = dict(
        zip(
            sampled_ids(sample), sample.sessions.column("taxonomy_node_id").to_pylist(), strict=True
        )
    )
    assert nodes == {"e2": "hats", "e4": "boots", "e5": "bags"}
    unfiltered = sample_sessions(paths, SessionFilter(), 10, 0)
    assert (
        dict(
            zip(
                sampled_ids(unfiltered),
                unfiltered.sessions.column("taxonomy_node_id").to_pylist(),
                strict=True,
            )
        )["e3"]
        is None
    )


def test_time_range_is_inclusive_at_both_ends(paths: DataPaths) -> None:
    start, end = T0, T0 + timedelta(hours=1)
    tick = timedelta(microseconds=1)
    ingest_clicked(
        paths,
        [
            execution("before", created_at=start - tick),
            execution("at_start", created_at=start),
            execution("inside", created_at=start + timedelta(minutes=30)),
            execution("at_end", created_at=end),
            execution("after", created_at=end + tick),
        ],
    )

    sample = sample_sessions(paths, SessionFilter(start=start, end=end), 10, 0)
    assert sorted(sampled_ids(sample)) == ["at_end", "at_start", "inside"]

    paris = timezone(timedelta(hours=2))
    shifted = SessionFilter(start=start.astimezone(paris), end=end.replace(tzinfo=None))
    assert sorted(sampled_ids(sample_sessions(paths, shifted, 10, 0))) == [
        "at_end",
        "at_start",
        "inside",
    ]
    open_start = SessionFilter(end=start)
    assert sorted(sampled_ids(sample_sessions(paths, open_start, 10, 0))) == ["at_start", "before"]
    open_end = SessionFilter(start=end)
    assert sorted(sampled_ids(sample_sessions(paths, open_end, 10, 0))) == ["after", "at_end"]


def test_min_interactions_counts_only_counted_types(paths: DataPaths) -> None:
    ingest(
        paths,
        [execution(e) for e in ("two_clicks", "click_views", "views", "cart_buy", "nothing")],
        [
            interaction("two_clicks", "d0", "click", 0),
            interaction("two_clicks", "d1", "click", 1),
            interaction("click_views", "d0", "click", 0),
            *[interaction("click_views", f"d{p}", "view", p) for p in (1, 2, 3)],
            *[interaction("views", f"d{p}", "view", p) for p in (0, 1, 2)],
            interaction("cart_buy", "d2", ["add_to_cart", "purchase"], 2),
        ],
    )

    def counts(session_filter: SessionFilter) -> dict[str, int]:
        sample = sample_sessions(paths, session_filter, 10, 0)
        return dict(
            zip(
                sampled_ids(sample),
                sample.sessions.column("interaction_count").to_pylist(),
                strict=True,
            )
        )

    assert counts(SessionFilter()) == {"two_clicks": 2, "click_views": 1, "cart_buy": 2}
    assert counts(SessionFilter(min_interactions=2)) == {"two_clicks": 2, "cart_buy": 2}
    assert counts(SessionFilter(counted_types=frozenset({"view"}))) == {
        "click_views": 3,
        "views": 3,
    }
    assert counts(SessionFilter(counted_types=frozenset({"view"}), min_interactions=4)) == {}
    assert counts(SessionFilter(min_interactions=0)) == {
        "two_clicks": 2,
        "click_views": 1,
        "views": 0,
        "cart_buy": 2,
        "nothing": 0,
    }


def test_interactions_are_the_counted_ones_of_sampled_sessions_only(paths: DataPaths) -> None:
    executions = [execution(f"e{n:02d}") for n in range(12)]
    interactions = [
        row
        for e in executions
        for row in (
            interaction(e["execution_id"], "d2", "view", 2),
            interaction(e["execution_id"], "d1", "click", 1),
            interaction(e["execution_id"], "d0", "bookmark", 0),
            interaction(e["execution_id"], "d3", "skip", 3),
        )
    ]
    ingest(paths, executions, interactions)
    counted = frozenset({"click", "bookmark"})

    sample = sample_sessions(paths, SessionFilter(counted_types=counted), 5, 3)

    chosen = sampled_ids(sample)
    expected = [
        {"execution_id": e, "document_id": d, "interaction_type": t, "position": p}
        for e in chosen
        for d, t, p in (("d0", "bookmark", 0), ("d1", "click", 1))
    ]
    assert sample.interactions.to_pylist() == expected


def test_no_matching_session_gives_an_empty_sample_and_a_warning(paths: DataPaths) -> None:
    ingest_clicked(paths, [execution("e1")])

    for strategy in ("random", "recent", "stratified"):
        session_filter = SessionFilter(retriever_ids=("nobody",), strategy=strategy)
        sample = sample_sessions(paths, session_filter, 10, 0)
        assert sample.sessions.num_rows == 0
        assert sample.sessions.schema == SAMPLED_SESSIONS_SCHEMA
        assert sample.interactions.num_rows == 0
        assert sample.matched == 0
        assert sample.warnings == ["no sessions match the filter (requested 10)"]


def test_executions_without_any_interactions_file(paths: DataPaths) -> None:
    ingest(paths, [execution("e1"), execution("e2")], [])

    assert sample_sessions(paths, SessionFilter(), 10, 0).matched == 0
    sample = sample_sessions(paths, SessionFilter(min_interactions=0), 10, 0)
    assert sorted(sampled_ids(sample)) == ["e1", "e2"]
    assert sample.interactions.num_rows == 0


# --- strategies ------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["random", "recent", "stratified"])
def test_fewer_matches_than_requested_uses_all_with_a_warning(
    paths: DataPaths, strategy: str
) -> None:
    ingest_clicked(
        paths,
        [
            execution(f"e{n}", nodes=[["a"], ["b"], []][n % 3], created_at=T0 + timedelta(n))
            for n in range(7)
        ],
    )

    sample = sample_sessions(paths, SessionFilter(strategy=strategy), 10, 4)

    assert sorted(sampled_ids(sample)) == [f"e{n}" for n in range(7)]
    assert sample.sessions.column("sample_rank").to_pylist() == list(range(7))
    assert (sample.matched, sample.requested) == (7, 10)
    assert sample.warnings == ["only 7 sessions match the filter; using all of them (requested 10)"]
    if strategy == "stratified":
        assert sample.allocation == {"a": 3, "b": 2, "(none)": 2}


def test_random_is_the_documented_seeded_md5_order(paths: DataPaths) -> None:
    ids = [f"exec_{n:03d}" for n in range(60)]
    ingest_clicked(paths, [execution(e) for e in ids])

    first = sample_sessions(paths, SessionFilter(), 15, 42)
    again = sample_sessions(paths, SessionFilter(), 15, 42)
    other = sample_sessions(paths, SessionFilter(), 15, 43)

    assert sampled_ids(first) == md5_order(ids, 42)[:15]
    assert first.sessions.equals(again.sessions)
    assert first.interactions.equals(again.interactions)
    assert set(sampled_ids(other)) != set(sampled_ids(first))
    assert sampled_ids(other) == md5_order(ids, 43)[:15]
    assert first.sessions.column("sample_rank").to_pylist() == list(range(15))
    assert first.warnings == []


def test_random_selects_every_session_about_equally_often(paths: DataPaths) -> None:
    ids = [f"exec_{n:03d}" for n in range(40)]
    ingest_clicked(paths, [execution(e) for e in ids])

    picks: Counter[str] = Counter()
    for seed in range(100):
        sample = sample_sessions(paths, SessionFilter(), 10, seed)
        chosen = sampled_ids(sample)
        assert len(set(chosen)) == 10
        picks.update(chosen)

    observed = [picks[e] for e in ids]
    assert sum(observed) == 1000
    assert chisquare(observed).pvalue > 0.001
    assert min(observed) > 0


def test_recent_takes_exactly_the_newest_ties_by_execution_id(paths: DataPaths) -> None:
    ingest_clicked(
        paths,
        [
            execution("old", created_at=T0),
            execution("tie_b", created_at=T0 + timedelta(hours=2)),
            execution("top", created_at=T0 + timedelta(hours=3)),
            execution("tie_a", created_at=T0 + timedelta(hours=2)),
            execution("middle", created_at=T0 + timedelta(hours=1)),
        ],
    )

    sample = sample_sessions(paths, SessionFilter(strategy="recent"), 3, 0)
    assert sampled_ids(sample) == ["top", "tie_a", "tie_b"]
    assert sample.sessions.column("sample_rank").to_pylist() == [0, 1, 2]
    assert sampled_ids(sample_sessions(paths, SessionFilter(strategy="recent"), 3, 99)) == [
        "top",
        "tie_a",
        "tie_b",
    ]
    cut_in_a_tie = sample_sessions(paths, SessionFilter(strategy="recent"), 2, 0)
    assert sampled_ids(cut_in_a_tie) == ["top", "tie_a"]


def stratified_world(paths: DataPaths, sizes: dict[str | None, int]) -> dict[str | None, list[str]]:
    """Ingest `size` clicked sessions per first node (None: no node); return the ids per node."""
    by_node: dict[str | None, list[str]] = {}
    executions = []
    for node, size in sizes.items():
        prefix = node or "none"
        by_node[node] = [f"{prefix}_{n:03d}" for n in range(size)]
        nodes = [] if node is None else [node, "shared"]
        executions += [execution(e, nodes=nodes) for e in by_node[node]]
    ingest_clicked(paths, executions)
    return by_node


def test_stratified_is_proportional_by_largest_remainder(paths: DataPaths) -> None:
    by_node = stratified_world(paths, {"a": 50, "b": 30, "c": 15, None: 5})

    sample = sample_sessions(paths, SessionFilter(strategy="stratified"), 10, 11)

    # Quotas 5, 3, 1.5, 0.5: floors 5, 3, 1, 0; the tie on .5 goes to "c" (the null stratum is last).
    assert sample.allocation == {"a": 5, "b": 3, "c": 2, "(none)": 0}
    assert sample.sessions.num_rows == 10
    chosen = sampled_ids(sample)
    assert len(set(chosen)) == 10
    for node, take in (("a", 5), ("b", 3), ("c", 2)):
        assert {e for e in chosen if e.startswith(f"{node}_")} == set(
            md5_order(by_node[node], 11)[:take]
        )
    assert chosen == md5_order(chosen, 11)
    assert sample.sessions.column("sample_rank").to_pylist() == list(range(10))
    assert Counter(sample.interactions.column("execution_id").to_pylist()) == dict.fromkeys(
        chosen, 1
    )


def test_stratified_remainder_ties_go_to_the_smaller_node_id(paths: DataPaths) -> None:
    stratified_world(paths, {"z": 3, "y": 3, "x": 3})

    sample = sample_sessions(paths, SessionFilter(strategy="stratified"), 4, 0)

    assert sample.allocation == {"x": 2, "y": 1, "z": 1}
    assert Counter(sample.sessions.column("taxonomy_node_id").to_pylist()) == {
        "x": 2,
        "y": 1,
        "z": 1,
    }


def test_stratified_uses_the_first_node_and_respects_the_taxonomy_filter(
    paths: DataPaths,
) -> None:
    stratified_world(paths, {"a": 6, "b": 3, None: 4})

    session_filter = SessionFilter(taxonomy_node_ids=("shared",), strategy="stratified")
    sample = sample_sessions(paths, session_filter, 6, 5)

    assert sample.matched == 9
    assert sample.allocation == {"a": 4, "b": 2}
    assert sample.sessions.num_rows == 6


def test_a_node_named_like_the_null_stratum_keeps_its_own_entry(paths: DataPaths) -> None:
    stratified_world(paths, {"(none)": 2, None: 2})

    sample = sample_sessions(paths, SessionFilter(strategy="stratified"), 2, 0)

    assert sample.allocation == {"(none)": 1, "(none)#1": 1}


# --- allocation arithmetic -------------------------------------------------------------------------


def test_allocation_redistributes_a_shortfall_to_strata_with_room() -> None:
    # Target weights 6:2:2 of 10, but "a" holds only 2: its shortfall of 4 is split 2:2.
    assert allocate_largest_remainder({"a": 2, "b": 10, "c": 10}, 10, {"a": 6, "b": 2, "c": 2}) == {
        "a": 2,
        "b": 4,
        "c": 4,
    }


def test_allocation_redistributes_until_placed_over_several_rounds() -> None:
    # Round 1: 8, 1, 1 -> "a" keeps 1, 7 left. Round 2 over b, c (1:1): 3.5 each, the tie goes to "b"
    # -> b 5 > 3, keeps 3, 2 left. Round 3: all to "c" -> 1 + 3 + 2 = 6.
    assert allocate_largest_remainder({"a": 1, "b": 3, "c": 20}, 10, {"a": 8, "b": 1, "c": 1}) == {
        "a": 1,
        "b": 3,
        "c": 6,
    }


def test_allocation_stops_when_no_capacity_is_left() -> None:
    assert allocate_largest_remainder({"a": 1, None: 2}, 10) == {"a": 1, None: 2}
    assert allocate_largest_remainder({"a": 1, "b": 2}, 10, {"a": 0, "b": 0}) == {"a": 1, "b": 2}
    assert allocate_largest_remainder({}, 10) == {}


def test_allocation_by_size_is_plain_largest_remainder_and_sums_to_the_total() -> None:
    rng = random.Random(7)
    for _ in range(300):
        sizes = {f"n{k}": rng.randint(0, 40) for k in range(rng.randint(1, 8))}
        total = rng.randint(0, sum(sizes.values()) + 5)
        allocation = allocate_largest_remainder(sizes, total)
        assert sum(allocation.values()) == min(total, sum(sizes.values()))
        assert all(allocation[s] <= sizes[s] for s in sizes)
        if total <= sum(sizes.values()) and sum(sizes.values()) > 0:
            for stratum, size in sizes.items():
                exact = total * size / sum(sizes.values())
                assert exact - 1 < allocation[stratum] < exact + 1
