"""The full demo world (built once): sizes, and that better/worse are truly better/worse.

Truly better must show on both yardsticks: NDCG@10 against the true grades of the judged queries, and
an interaction-based NDCG@10 when replaying logged sessions, whose clicks demo_prod's ranking biased.
"""

import json
from collections import defaultdict
from datetime import timedelta

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from scipy import stats

from eval_pipelines.core.demo import DEFAULT_SEED, dataset_files
from eval_pipelines.core.demo.catalog import read_catalog_truth
from eval_pipelines.core.demo.intents import generate_intents, grade_table
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.registry import load_retriever_configs, open_retrievers
from eval_pipelines.core.storage import read_parquet_dir

INTERACTION_WEIGHTS = {"click": 1.0, "add_to_cart": 2.0, "purchase": 5.0}
REPLAY_DEPTH = 100
SAMPLED_SESSIONS = 1000
COMPARED = ("demo_prod", "demo_better", "demo_worse")


def ndcg_at_10(ranking: list[str], gains: dict[str, float]) -> float:
    """DCG of gains along ranking[:10] over the DCG of the gains sorted descending."""
    discounts = 1.0 / np.log2(np.arange(2, 12))
    ranked = np.array([gains.get(d, 0.0) for d in ranking[:10]])
    ideal = np.sort(np.fromiter(gains.values(), dtype=float))[::-1][:10]
    ideal_dcg = float(ideal @ discounts[: len(ideal)])
    return float(ranked @ discounts[: len(ranked)]) / ideal_dcg if ideal_dcg else 0.0


@pytest.fixture(scope="module")
def world(full_demo_world: tuple[DataPaths, dict]) -> tuple[DataPaths, dict]:
    return full_demo_world


@pytest.fixture(scope="module")
def ground_truth_ndcg(world: tuple[DataPaths, dict]) -> dict[str, np.ndarray]:
    """Per judged query NDCG@10 against the true grades, per retriever."""
    paths, _ = world
    lines = dataset_files(paths)["jsonl"].read_text().splitlines()
    queries = [json.loads(line) for line in lines]
    scores = {}
    with open_retrievers(paths, list(COMPARED)) as retrievers:
        for retriever_id, retriever in retrievers.items():
            executions = retriever.search_many([q["query_input"] for q in queries])
            assert all(e.status == "completed" for e in executions)
            scores[retriever_id] = np.array(
                [
                    ndcg_at_10(
                        [d.document_id for d in e.documents],
                        {d: float(g) for d, g in q["relevance_scores"].items()},
                    )
                    for q, e in zip(queries, executions, strict=True)
                ]
            )
    return scores


@pytest.fixture(scope="module")
def replayed_ndcg(world: tuple[DataPaths, dict]) -> dict[str, np.ndarray]:
    """Per sampled logged session (with >= 1 interaction) interaction NDCG@10, per retriever."""
    paths, _ = world
    interactions = read_parquet_dir(paths.log_table_dir("interactions"))
    gains: dict[str, dict[str, float]] = defaultdict(dict)
    for execution_id, document_id, kind in zip(
        interactions.column("execution_id").to_pylist(),
        interactions.column("document_id").to_pylist(),
        interactions.column("interaction_type").to_pylist(),
        strict=True,
    ):
        if kind not in INTERACTION_WEIGHTS:  # impressions say what was shown, not what users liked
            continue
        session = gains[execution_id]
        session[document_id] = max(session.get(document_id, 0.0), INTERACTION_WEIGHTS[kind])
    executions = read_parquet_dir(paths.log_table_dir("executions"))
    query_of = dict(
        zip(
            executions.column("execution_id").to_pylist(),
            executions.column("query_input").to_pylist(),
            strict=True,
        )
    )
    rng = np.random.default_rng(12345)
    sampled = sorted(rng.choice(sorted(gains), size=SAMPLED_SESSIONS, replace=False))
    texts = sorted({json.loads(query_of[s])["text"] for s in sampled})
    scores = {}
    with open_retrievers(paths, list(COMPARED)) as retrievers:
        for retriever_id, retriever in retrievers.items():
            executions_run = retriever.search_many([{"text": t} for t in texts])
            ranking = {
                t: [d.document_id for d in e.documents[:REPLAY_DEPTH]]
                for t, e in zip(texts, executions_run, strict=True)
            }
            scores[retriever_id] = np.array(
                [ndcg_at_10(ranking[json.loads(query_of[s])["text"]], gains[s]) for s in sampled]
            )
    return scores


def test_the_world_has_the_required_size(world: tuple[DataPaths, dict]) -> None:
    paths, summary = world
    steps = summary["steps"]
    assert steps["catalog"]["products"] >= 20_000
    assert steps["catalog"]["taxonomy_leaves"] >= 20
    assert steps["catalog"]["taxonomy_parents"] >= 5
    assert steps["intents"]["intents"] >= 2_000
    assert steps["judgments"]["queries"] >= 500
    assert steps["logs"]["distinct_queries"] > 1_000

    executions = read_parquet_dir(paths.log_table_dir("executions"))
    assert executions.num_rows >= 50_000
    created = executions.column("created_at")
    first, last = pc.min(created).as_py(), pc.max(created).as_py()
    assert last - first >= timedelta(days=30)
    assert last.isoformat() < "2026-11-01"
    # demo_prod, and for the first days the ranker it replaced.
    assert set(executions.column("retriever_id").to_pylist()) == {"demo_prod", "demo_prod_previous"}
    per_query = np.sort(
        pc.value_counts(executions.column("query_text")).field("counts").to_numpy()
    )[::-1]
    assert per_query[0] > 20 * np.median(per_query)


def test_stored_grades_are_the_latent_truth_recomputed(world: tuple[DataPaths, dict]) -> None:
    paths, summary = world
    catalog = read_catalog_truth(paths)
    intents = generate_intents(DEFAULT_SEED, catalog, summary["scale"]["intents"])
    stored = pq.read_table(paths.demo_dir / "grades.parquet").replace_schema_metadata(None)
    assert grade_table(intents, catalog).equals(stored)


def test_logged_clicks_fall_with_rank_and_rise_with_grade(world: tuple[DataPaths, dict]) -> None:
    paths, _ = world
    interactions = read_parquet_dir(paths.log_table_dir("interactions"))
    clicks = interactions.filter(pc.equal(interactions.column("interaction_type"), "click"))
    per_row = np.bincount(clicks.column("position").to_numpy() // 4, minlength=6)
    assert np.all(np.diff(per_row) < 0), per_row

    grades = pq.read_table(paths.demo_dir / "grades.parquet")
    intents = pq.read_table(paths.demo_dir / "intents.parquet")
    intent_of_text = dict(
        zip(
            intents.column("query_text").to_pylist(),
            intents.column("intent_id").to_pylist(),
            strict=True,
        )
    )
    grade_of = {
        (i, d): g
        for i, d, g in zip(
            grades.column("intent_id").to_pylist(),
            grades.column("document_id").to_pylist(),
            grades.column("grade").to_pylist(),
            strict=True,
        )
    }
    executions = read_parquet_dir(paths.log_table_dir("executions")).slice(0, 10_000)
    served = np.zeros(4)
    clicked = np.zeros(4)
    clicked_pairs = set(
        zip(
            clicks.column("execution_id").to_pylist(),
            clicks.column("document_id").to_pylist(),
            strict=True,
        )
    )
    for execution_id, text, documents in zip(
        executions.column("execution_id").to_pylist(),
        executions.column("query_text").to_pylist(),
        executions.column("documents").to_pylist(),
        strict=True,
    ):
        intent = intent_of_text[text]
        for document in documents:
            grade = grade_of.get((intent, document), 0)
            served[grade] += 1
            clicked[grade] += (execution_id, document) in clicked_pairs
    rate = clicked / served
    assert rate[3] > 2 * rate[2] > 2 * rate[1], rate


def test_aa_control_is_the_same_pipeline(world: tuple[DataPaths, dict]) -> None:
    paths, _ = world
    configs = load_retriever_configs(paths)
    assert sorted(configs) == [
        "demo_better",
        "demo_http",
        "demo_prod",
        "demo_prod_copy",
        "demo_worse",
    ]
    assert configs["demo_prod"].pipeline_hash == configs["demo_prod_copy"].pipeline_hash
    assert configs["demo_prod"].name != configs["demo_prod_copy"].name
    assert configs["demo_better"].pipeline_hash != configs["demo_prod"].pipeline_hash
    assert configs["demo_http"].kind == "http"


def test_http_retriever_serves_demo_better_rankings(world: tuple[DataPaths, dict]) -> None:
    paths, _ = world
    queries = [{"text": t} for t in ("sofa", "red leather couch", "portable speaker", "case")]
    with open_retrievers(paths, ["demo_http", "demo_better"]) as retrievers:
        over_http = retrievers["demo_http"].search_many(queries)
        in_process = retrievers["demo_better"].search_many(queries)
    for remote, local in zip(over_http, in_process, strict=True):
        assert remote.status == "completed", remote.error
        assert [d.document_id for d in remote.documents] == [d.document_id for d in local.documents]


def test_better_and_worse_hold_on_the_true_grades(ground_truth_ndcg: dict[str, np.ndarray]) -> None:
    prod = ground_truth_ndcg["demo_prod"].mean()
    better = ground_truth_ndcg["demo_better"].mean()
    worse = ground_truth_ndcg["demo_worse"].mean()
    print(f"NDCG@10 on true grades: prod {prod:.3f} better {better:.3f} worse {worse:.3f}")
    assert better > prod + 0.05
    assert worse < prod - 0.05


def test_better_and_worse_hold_on_replayed_logs(replayed_ndcg: dict[str, np.ndarray]) -> None:
    prod = replayed_ndcg["demo_prod"]
    better = replayed_ndcg["demo_better"]
    worse = replayed_ndcg["demo_worse"]
    better_p = stats.ttest_rel(better, prod).pvalue
    worse_p = stats.ttest_rel(worse, prod).pvalue
    print(
        f"interaction NDCG@10 over {len(prod)} sessions: prod {prod.mean():.3f}"
        f" better {better.mean():.3f} (p={better_p:.1e}) worse {worse.mean():.3f} (p={worse_p:.1e})"
    )
    assert better.mean() > prod.mean() and better_p < 0.01
    assert worse.mean() < prod.mean() and worse_p < 0.01
