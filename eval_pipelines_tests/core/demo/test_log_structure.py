"""The demo logs have the structure of real logs (an earlier ranker, shuffled exploration traffic,
impressions, paginated users), read back from the ingested files; the fixed structure has none of it;
the examination truth is the user model's, and the simulated clicks agree with it."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, materialize
from scipy import stats

from eval_pipelines.assets.demo import demo_logs
from eval_pipelines.cli.demo import demo_benchmark_request
from eval_pipelines.core.benchmarks.sampling import sample_sessions
from eval_pipelines.core.demo import DemoLogStructure, DemoScale
from eval_pipelines.core.demo.traffic import assign_traffic
from eval_pipelines.core.demo.users import ClickModel
from eval_pipelines.core.logs.tables import EXPLORATION_KEY, IMPRESSION
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.registry import open_retriever
from eval_pipelines.resources import DataDirResource, DemoWorldResource

STRUCTURE = DemoLogStructure()
EXPLORATION = {EXPLORATION_KEY: {"method": "shuffle_top_k", "k": 12}}
DEPTH = 24


def rows(paths: DataPaths, sql: str) -> list[dict[str, Any]]:
    """sql over the ingested logs (views executions, interactions) and the demo's truth files."""
    with duckdb.connect() as con:
        for view, folder in (("executions", "executions"), ("interactions", "interactions")):
            files = str(paths.log_table_dir(folder) / "*.parquet")
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM read_parquet('{files}')")
        for name in ("intents", "grades", "examination"):
            file = paths.demo_dir / f"{name}.parquet"
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{file}')")
        return con.sql(sql).to_arrow_table().to_pylist()


def binomial_bound(n: int, share: float) -> float:
    """Four standard errors of a share estimated from n draws."""
    return 4 * float(np.sqrt(share * (1 - share) / n))


def production_pages(paths: DataPaths, texts: list[str]) -> dict[str, list[str]]:
    """demo_prod's top 24 for each text, from the real engine."""
    with open_retriever(paths, "demo_prod") as retriever:
        executions = retriever.search_many([{"text": t} for t in texts])
    return {
        t: [d.document_id for d in e.documents[:DEPTH]]
        for t, e in zip(texts, executions, strict=True)
    }


def test_an_earlier_ranker_shows_the_same_pairs_at_other_positions(small_world: DataPaths) -> None:
    served = rows(
        small_world,
        "SELECT retriever_id, metadata, query_text, created_at, documents FROM executions",
    )
    previous = [e for e in served if e["retriever_id"] == "demo_prod_previous"]
    production = [e for e in served if e["retriever_id"] == "demo_prod"]
    assert previous and production
    assert {e["metadata"] for e in previous} == {'{"ranker_version":"previous"}'}
    start = min(e["created_at"] for e in served)
    switch = start + timedelta(days=STRUCTURE.previous_ranker_days)
    assert (
        max(e["created_at"] for e in previous) < switch <= min(e["created_at"] for e in production)
    )

    positions: dict[tuple[str, str], set[int]] = defaultdict(set)
    for execution in served:
        for position, document in enumerate(execution["documents"]):
            positions[execution["query_text"], document].add(position)
    moved = sum(len(p) > 1 for p in positions.values())
    assert moved / len(positions) > 0.2, (moved, len(positions))

    texts = sorted({e["query_text"] for e in previous})
    prod = production_pages(small_world, texts)
    below_prods_page = {
        (e["query_text"], d)
        for e in previous
        for d in e["documents"]
        if d not in prod[e["query_text"]]
    }
    assert len(below_prods_page) > len(texts), "the earlier ranker showed documents prod does not"


def test_exploration_shuffles_prods_top_12_and_says_so(small_world: DataPaths) -> None:
    served = rows(
        small_world,
        "SELECT retriever_id, metadata, query_text, documents FROM executions"
        " WHERE retriever_id = 'demo_prod'",
    )
    explored = [e for e in served if e["metadata"] is not None]
    assert all(json.loads(e["metadata"]) == EXPLORATION for e in explored)
    share = len(explored) / len(served)
    assert abs(share - STRUCTURE.exploration_share) < binomial_bound(len(served), 0.05), share

    prod = production_pages(small_world, sorted({e["query_text"] for e in explored}))
    reordered = 0
    for execution in explored:
        page, shown = prod[execution["query_text"]], execution["documents"]
        assert sorted(shown[:12]) == sorted(page[:12])
        assert shown[12:] == page[12:]
        reordered += shown[:12] != page[:12]
    assert reordered > 0.9 * len(explored)
    unexplored = [e for e in served if e["metadata"] is None]
    assert all(e["documents"] == prod.get(e["query_text"], e["documents"]) for e in unexplored)


def test_impressions_are_logged_on_a_tenth_of_searches_for_rendered_slots_only(
    small_world: DataPaths,
) -> None:
    executions = rows(small_world, "SELECT execution_id, documents FROM executions")
    served = {e["execution_id"]: e["documents"] for e in executions}
    logged = rows(
        small_world,
        "SELECT execution_id, document_id, interaction_type, position FROM interactions",
    )
    impressions: dict[str, dict[int, str]] = defaultdict(dict)
    for row in logged:
        if row["interaction_type"] == IMPRESSION:
            impressions[row["execution_id"]][row["position"]] = row["document_id"]
    share = len(impressions) / len(served)
    assert abs(share - STRUCTURE.impression_share) < binomial_bound(len(served), 0.1), share

    pages_rendered = []
    for execution_id, shown in impressions.items():
        documents = served[execution_id]
        rendered = len(shown)
        assert rendered in {min(12, len(documents)), min(24, len(documents))}
        assert shown == dict(enumerate(documents[:rendered]))
        pages_rendered.append(rendered > 12)
    for row in logged:
        if row["interaction_type"] != IMPRESSION and row["execution_id"] in impressions:
            assert row["position"] in impressions[row["execution_id"]]
    loaded_more = float(np.mean(pages_rendered))
    assert abs(loaded_more - ClickModel().load_more) < binomial_bound(len(pages_rendered), 0.5)


def test_the_fixed_structure_logs_one_page_per_query_and_nothing_else(
    world_copy: DataPaths, instance: DagsterInstance
) -> None:
    """Today's world: the demo_logs asset re-materialized over the same catalog with the resource's
    log_structure "fixed" (DemoLogStructure.fixed())."""
    paths = world_copy
    result = materialize(
        [demo_logs],
        instance=instance,
        resources={
            "data_dir": DataDirResource(path=str(paths.root)),
            "demo_world": DemoWorldResource(size="small", log_structure="fixed"),
        },
    )
    assert result.success
    logs = json.loads((paths.demo_dir / "steps" / "logs.json").read_text())
    assert logs["structure"] == {
        **logs["structure"],
        **DemoLogStructure.fixed().to_dict(),
    }
    structure = logs["structure"]
    assert structure["executions_by_kind"] == {
        "production": DemoScale.small().executions,
        "previous_ranker": 0,
        "exploration": 0,
    }
    assert structure["impressions"] == structure["query_document_pairs_at_several_positions"] == 0
    executions = rows(paths, "SELECT retriever_id, metadata, query_text, documents FROM executions")
    assert {(e["retriever_id"], e["metadata"]) for e in executions} == {("demo_prod", None)}
    pages = defaultdict(set)
    for execution in executions:
        pages[execution["query_text"]].add(tuple(execution["documents"]))
    assert all(len(p) == 1 for p in pages.values())
    types = rows(paths, "SELECT DISTINCT interaction_type AS t FROM interactions")
    assert IMPRESSION not in {row["t"] for row in types}


def test_the_varied_structure_is_recorded_in_the_logs_step(small_world: DataPaths) -> None:
    logs = json.loads((small_world.demo_dir / "steps" / "logs.json").read_text())
    structure = logs["structure"]
    kinds = structure["executions_by_kind"]
    assert sum(kinds.values()) == logs["executions"]
    assert min(kinds.values()) > 0
    assert structure["exploration"] == EXPLORATION[EXPLORATION_KEY]
    assert structure["previous_ranker_days"] == 12
    assert structure["impressions"] == logs["interactions_by_type"][IMPRESSION] > 0
    assert structure["query_document_pairs_at_several_positions"] > 0
    assert logs["examination_file"] == "demo/examination.parquet"


def test_the_examination_truth_is_the_user_model(small_world: DataPaths) -> None:
    truth = pq.read_table(small_world.demo_dir / "examination.parquet")
    assert truth.schema == pa.schema(
        [
            ("position", pa.int32()),
            ("examination", pa.float64()),
            ("rendered", pa.float64()),
            ("relative_examination", pa.float64()),
        ]
    )
    assert truth.column("position").to_pylist() == list(range(1, DEPTH + 1))
    examination = truth.column("examination").to_numpy()
    rendered = truth.column("rendered").to_numpy()
    # Rendered 12 at a time (the second page when the user loads more, half the time); examined
    # given rendered 0.95 * 0.8 ** row, rows of 4.
    row = np.arange(DEPTH) // 4
    expected_rendered = np.where(np.arange(DEPTH) < 12, 1.0, 0.5)
    np.testing.assert_allclose(rendered, expected_rendered)
    np.testing.assert_allclose(examination, expected_rendered * 0.95 * 0.8**row)
    np.testing.assert_allclose(truth.column("relative_examination").to_numpy(), examination / 0.95)
    np.testing.assert_allclose(examination, ClickModel().examination(DEPTH))


def _chi_square(observed: np.ndarray, expected: np.ndarray, variance: np.ndarray) -> float:
    """p-value of observed counts against independent Bernoulli sums with these means/variances."""
    statistic = float(np.sum((observed - expected) ** 2 / variance))
    return float(stats.chi2.sf(statistic, df=len(observed)))


def test_clicks_by_position_on_exploration_traffic_agree_with_the_truth(
    full_demo_world: tuple[DataPaths, dict],
) -> None:
    """On shuffled searches, clicks at each position are what the true examination and the click
    probability of each served document's true grade predict; a chi-square test (its tolerance set by
    the number of searches) accepts the truth and rejects a user model without pagination."""
    paths, _ = full_demo_world
    click = ", ".join(str(p) for p in ClickModel().click)
    served = rows(
        paths,
        f"""
        WITH explored AS (
            SELECT e.execution_id, i.intent_id, d.document_id, d.position
            FROM executions e
            JOIN intents i USING (query_text)
            CROSS JOIN LATERAL (
                SELECT unnest(e.documents) AS document_id,
                       generate_subscripts(e.documents, 1) - 1 AS position) d
            WHERE json_extract_string(e.metadata, '$.exploration.method') = 'shuffle_top_k'
        ), clicks AS (
            SELECT DISTINCT execution_id, position FROM interactions WHERE interaction_type = 'click'
        )
        SELECT x.position,
               count(*) AS searches,
               count(c.execution_id) AS clicks,
               sum(CAST([{click}] AS DOUBLE[])[coalesce(g.grade, 0) + 1]) AS click_if_examined,
               sum(CAST([{click}] AS DOUBLE[])[coalesce(g.grade, 0) + 1] ** 2) AS click_if_examined_squared
        FROM explored x
        LEFT JOIN grades g USING (intent_id, document_id)
        LEFT JOIN clicks c USING (execution_id, position)
        GROUP BY x.position ORDER BY x.position
        """,
    )
    truth = pq.read_table(paths.demo_dir / "examination.parquet")
    assert [r["position"] for r in served] == list(range(DEPTH))
    clicks = np.array([r["clicks"] for r in served], dtype=float)
    q = np.array([r["click_if_examined"] for r in served])
    q2 = np.array([r["click_if_examined_squared"] for r in served])
    assert min(r["searches"] for r in served[:12]) > 1_000

    def p_value(examination: np.ndarray) -> float:
        expected = examination * q
        return _chi_square(clicks, expected, expected - examination**2 * q2)

    examination = truth.column("examination").to_numpy()
    assert p_value(examination) > 0.001
    assert p_value(truth.column("relative_examination").to_numpy() * 0.95) > 0.001
    without_pagination = ClickModel().examination_if_rendered(DEPTH)
    assert p_value(without_pagination) < 1e-6


def test_the_demo_benchmark_replays_only_sessions_demo_prod_served(small_world: DataPaths) -> None:
    request = demo_benchmark_request(small_world, seed=7)
    sample = sample_sessions(small_world, request.sampling_filter, 500, request.seed)
    sampled = sample.sessions.column("execution_id").to_pylist()
    retrievers = rows(
        small_world,
        "SELECT execution_id, retriever_id FROM executions",
    )
    retriever_of = {r["execution_id"]: r["retriever_id"] for r in retrievers}
    assert len(sampled) == 500
    assert {retriever_of[s] for s in sampled} == {"demo_prod"}
    assert "demo_prod_previous" in set(retriever_of.values())


@pytest.mark.parametrize(
    "field, value",
    [("exploration_share", 1.5), ("impression_share", -0.1), ("previous_ranker_days", -1)],
)
def test_a_structure_out_of_range_is_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"DemoLogStructure.{field}"):
        DemoLogStructure(**{field: value})


def test_an_earlier_ranker_with_fewer_candidates_than_the_page_leaves_slots_empty() -> None:
    top = np.arange(3 * 30).reshape(3, 30)
    structure = DemoLogStructure(previous_candidates=10, exploration_share=0.0)
    traffic = assign_traffic(
        np.random.default_rng(0), structure, np.zeros(3), np.arange(3), top, DEPTH
    )
    assert traffic.served.shape == (3, DEPTH)
    assert np.all(traffic.served[:, 10:] == -1)
    assert all(sorted(row[:10]) == sorted(top[i, :10]) for i, row in enumerate(traffic.served))
