"""Benchmark planning on real logs: the population's query mix counted in DuckDB as the benchmark
clusters it, the pilot replayed and scored as a benchmark scores it, and the plan checked against
simulated benchmarks on the small demo world, through the real comparison code.

The validation pool is every session the small demo world's logs hold after the default filter
(3,078 sessions of 275 queries, the most frequent holding 11.7%), replayed once per pipeline in
memory and scored by the real scoring code. A simulated benchmark samples the planned number of
sessions without replacement, as the sampler does, and goes through benchmark_results.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml

from eval_pipelines.core.benchmarks import planning
from eval_pipelines.core.benchmarks.comparison import PipelineInfo, benchmark_results
from eval_pipelines.core.benchmarks.pilot import (
    primary_differences,
    replay_in_memory,
    run_pilot,
)
from eval_pipelines.core.benchmarks.plan_settings import PlanSettings, parse_plan_request
from eval_pipelines.core.benchmarks.population import population
from eval_pipelines.core.benchmarks.request import BenchmarkRequest, parse_request
from eval_pipelines.core.benchmarks.sampling import sample_sessions
from eval_pipelines.core.benchmarks.scoring import score_benchmark
from eval_pipelines.core.benchmarks.spread import pilot_spread
from eval_pipelines.core.demo.retrievers import BETTER, PROD, PROD_COPY, WORSE
from eval_pipelines.core.logs.ingest import ingest_files
from eval_pipelines.core.metrics.alignment import COUNT_COLUMNS
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.query_keys import query_keys
from eval_pipelines.core.retrieval.execution import Retriever
from eval_pipelines.core.retrieval.registry import open_retrievers
from eval_pipelines.core.stats import power as pw
from eval_pipelines.core.stats.clustered import clustered_means
from eval_pipelines_tests.fault_server import HTTP_400, Fault, FaultPlan, FaultRule, fault_server

SIMULATED_BENCHMARKS = 200
FLAKY = "flaky_better"


def plan_request(paths: DataPaths, **fields: Any) -> BenchmarkRequest:
    data = {"baseline_retriever_id": PROD, "candidate_retriever_ids": [BETTER], **fields}
    return parse_plan_request(data, paths, PlanSettings())


@dataclass(frozen=True)
class Pool:
    """Every matching session of the small world, scored for each pipeline (same session order)."""

    arms: dict[str, pa.Table]
    infos: dict[str, PipelineInfo]
    query: np.ndarray
    counts: np.ndarray

    @property
    def size(self) -> int:
        return self.query.size

    def differences(self, candidate: str) -> np.ndarray:
        table = pa.concat_tables([self.arms[PROD], self.arms[candidate]])
        return primary_differences(table, PROD, candidate)[0]

    def benchmark(self, candidate: str, sessions: np.ndarray) -> dict[str, Any]:
        """The comparison of one simulated benchmark of these sessions."""
        rows = pa.array(np.sort(sessions))
        table = pa.concat_tables([self.arms[PROD].take(rows), self.arms[candidate].take(rows)])
        _, comparison = benchmark_results(table, [self.infos[PROD], self.infos[candidate]])
        return comparison["comparisons"][0]


@pytest.fixture(scope="module")
def pool(small_world: DataPaths) -> Pool:
    request = plan_request(small_world, candidate_retriever_ids=[BETTER, WORSE])
    sample = sample_sessions(small_world, request.sampling_filter, 10_000, 0)
    assert sample.sessions.num_rows == sample.matched > 2000
    replays, infos = replay_in_memory(
        small_world, sample.sessions, request.retriever_ids, request.replay_depth
    )
    scores = score_benchmark(request, sample.sessions, sample.interactions, replays)
    arms = {
        p: scores.filter(pc.equal(scores.column("retriever_id"), p)) for p in (PROD, BETTER, WORSE)
    }
    for arm in arms.values():
        assert arm.column("execution_id").equals(arms[PROD].column("execution_id"))
        assert pc.all(pc.equal(arm.column("status"), "completed")).as_py()
    keys = arms[PROD].column("query_key").to_numpy(zero_copy_only=False)
    query = np.unique(keys, return_inverse=True)[1]
    assert np.bincount(query).max() > 0.1 * query.size, "head queries repeat"
    return Pool(arms, {i.retriever_id: i for i in infos}, query, np.bincount(query))


# --- the population: counted in SQL, clustered as the benchmark clusters --------------------------


def write_logs(paths: DataPaths) -> None:
    """Queries whose texts differ only as query_keys normalizes them, one with filters, a session
    without interactions and one of another retriever, ingested through the real ingest path."""
    texts = [
        ("sofa", None),
        ("Sofa ", None),
        ("SOFA", None),
        ("red  chair", None),
        ("red chair", None),
        ("\uff4c\uff41\uff4d\uff50", None),  # full-width "lamp": NFKC makes it "lamp"
        ("lamp", None),
        ("desk", {"brand": "a"}),
        ("desk", {"brand": "a"}),
        ("desk", None),
        ("quiet", None),  # never interacted with
    ]
    executions = [
        {
            "execution_id": f"e{index:02d}",
            "retriever_id": "prod",
            "session_id": f"s{index:02d}",
            "query_input": {"text": text, **({"filters": filters} if filters else {})},
            "documents": ["d0", "d1"],
            "created_at": "2026-10-01T12:00:00Z",
        }
        for index, (text, filters) in enumerate(texts)
    ]
    executions.append({**executions[0], "execution_id": "other", "retriever_id": "other"})
    clicked = [e["execution_id"] for e in executions if e["query_input"]["text"] != "quiet"]
    interactions = [
        {
            "execution_id": execution_id,
            "document_id": "d1",
            "interaction_type": "click",
            "position": 1,
            "timestamp": "2026-10-01T12:00:01Z",
        }
        for execution_id in clicked
    ]
    for table, rows in (("executions", executions), ("interactions", interactions)):
        source = paths.root.parent / f"{table}.jsonl"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        report = ingest_files(paths, table, [source])  # type: ignore[arg-type]
        assert report.quarantined == {}, report.summary_lines()


@pytest.mark.parametrize(
    ("query_key", "expected"),
    [
        ("text", [3, 3, 2, 2]),  # sofa, desk, red chair, lamp
        ("text_and_filters", [3, 2, 2, 2, 1]),  # desk with and without its filters apart
    ],
)
def test_the_population_is_counted_per_query_as_the_benchmark_clusters_it(
    tmp_path: Path, query_key: str, expected: list[int]
) -> None:
    paths = DataPaths(tmp_path / "data")
    write_logs(paths)
    data = {
        "benchmark_name": "plan",
        "baseline_retriever_id": "prod",
        "candidate_retriever_ids": ["cand"],
        "query_key": query_key,
        "session_filter": {"retriever_ids": ["prod"]},
    }
    request = parse_request(data)
    counted = population(paths, request)
    assert counted.counts.tolist() == expected
    assert counted.concentration == pytest.approx(sum(c * c for c in expected) / 100)
    # The sampler matches the same sessions, and scoring's query keys cluster them alike.
    everything = sample_sessions(paths, request.sampling_filter, 1000, 0)
    assert everything.matched == counted.sessions == 10
    keys = query_keys(everything.sessions, query_key).to_pylist()
    assert sorted(np.unique(keys, return_counts=True)[1].tolist(), reverse=True) == expected


def test_the_population_of_the_demo_world_matches_the_sampler(small_world: DataPaths) -> None:
    for fields in (
        {},
        {"session_filter": {"taxonomy_node_ids": ["furniture-01", "bags-04"]}},
        {"session_filter": {"min_interactions": 3, "sample_strategy": "stratified"}},
        {"session_filter": {"time_range": {"start": "2026-10-15T00:00:00Z"}}},
    ):
        request = plan_request(small_world, **fields)
        counted = population(small_world, request)
        sample = sample_sessions(small_world, request.sampling_filter, 10_000, 0)
        assert counted.sessions == sample.matched > 0, fields
        keys = query_keys(sample.sessions, request.query_key).to_numpy(zero_copy_only=False)
        by_key = np.sort(np.unique(keys, return_counts=True)[1])[::-1]
        assert counted.counts.tolist() == by_key.tolist(), fields


# --- the pilot: sampled, replayed and scored as the benchmark would, nothing stored ---------------


def test_the_pilot_measures_what_the_benchmark_reports(small_world: DataPaths) -> None:
    request = plan_request(small_world, candidate_retriever_ids=[BETTER, WORSE], seed=4)
    pilot = run_pilot(small_world, request, 200)
    benchmark = sample_sessions(small_world, request.sampling_filter, 1000, 4)
    first = benchmark.sessions.column("execution_id").to_pylist()[:200]
    assert pilot.sampled == 200 and pilot.matched == benchmark.matched
    assert pilot.failed_sessions == {PROD: 0, BETTER: 0, WORSE: 0}
    for result in pilot.results:
        compared = result.comparison
        assert result.differences.size == compared["inference"]["sessions"] == 200
        assert np.unique(result.clusters).size == compared["inference"]["clusters"]
        measured = clustered_means(result.differences, result.clusters)
        assert result.differences.mean() == pytest.approx(compared["effect"]["delta"], abs=1e-12)
        assert measured.design_effect[0] == pytest.approx(compared["effect"]["design_effect"])
        assert compared["effect"]["delta"] / measured.spread[0] == pytest.approx(
            compared["effect"]["standardized"]
        )
    # The pilot's sessions are the first a benchmark with the same filter and seed samples.
    sampled = sample_sessions(small_world, request.sampling_filter, 200, 4)
    assert sampled.sessions.column("execution_id").to_pylist() == first


def answer_with(retriever: Retriever) -> Any:
    def answer(query_input: dict[str, Any], limit: int | None) -> list[tuple[str, float]]:
        execution = retriever.search(query_input, limit)
        return [(d.document_id, d.score) for d in execution.documents]

    return answer


def test_a_failed_pilot_replay_scores_zero_and_nothing_is_stored(world_copy: DataPaths) -> None:
    """demo_better behind an engine that refuses a fifth of the query texts: each refused session
    counts as NDCG@10 0 for the candidate, exactly as the benchmark's primary estimate counts it."""
    faults = FaultPlan(rules=[FaultRule(0.2, Fault(HTTP_400))], seed=3)
    with (
        open_retrievers(world_copy, [BETTER]) as engines,
        fault_server(faults, answer_with(engines[BETTER])) as server,
    ):
        config = {"id": FLAKY, "kind": "http", "http": {"url": server.url, "max_retries": 0}}
        (world_copy.retrievers_dir / f"{FLAKY}.yaml").write_text(yaml.safe_dump(config))
        request = plan_request(world_copy, candidate_retriever_ids=[FLAKY, BETTER])
        pilot = run_pilot(world_copy, request, 200)
    flaky, better = pilot.results
    sample = sample_sessions(world_copy, request.sampling_filter, 200, 0)
    texts = sample.sessions["query_text"].to_pylist()
    refused = np.array([faults.fault_for(text) is not None for text in texts])
    assert 20 < refused.sum() < 80
    assert pilot.failed_sessions == {PROD: 0, FLAKY: int(refused.sum()), BETTER: 0}
    plain = plan_request(world_copy)
    replays, _ = replay_in_memory(
        world_copy, sample.sessions, plain.retriever_ids, plain.replay_depth
    )
    scores = score_benchmark(plain, sample.sessions, sample.interactions, replays)
    baseline = scores.filter(pc.equal(scores["retriever_id"], PROD))["ndcg_at_10"].to_numpy()
    assert np.array_equal(flaky.differences[refused], -baseline[refused])
    assert np.array_equal(flaky.differences[~refused], better.differences[~refused])
    assert flaky.differences.mean() == pytest.approx(flaky.comparison["effect"]["delta"], abs=1e-12)
    assert any(FLAKY in w and "failed on" in w for w in pilot.warnings)
    spread = pilot_spread(flaky, 0)
    assert spread.problem is None
    assert spread.pilot is not None and spread.pilot["failure_rate"] == pytest.approx(
        refused.mean()
    )
    assert not world_copy.executions_dir.exists() or not any(world_copy.executions_dir.iterdir())
    assert not (world_copy.root / "benchmarks").exists()


def test_a_candidate_that_fails_everywhere_or_never_differs_gets_no_plan(
    small_world: DataPaths,
) -> None:
    request = plan_request(small_world, candidate_retriever_ids=[PROD_COPY])
    plan = planning.plan_benchmark(small_world, request, PlanSettings())
    (copy,) = plan["plans"]
    assert "ranks exactly like the baseline" in copy["problem"]
    assert copy["targets"] == [] and copy["mde"] == []


# --- the plan against simulated benchmarks --------------------------------------------------------


def achieved_power(pool: Pool, candidate: str, sessions: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    verdicts = [
        pool.benchmark(candidate, rng.choice(pool.size, sessions, replace=False))["verdict"]
        for _ in range(SIMULATED_BENCHMARKS)
    ]
    return float(np.mean([v == "better" for v in verdicts]))


def test_a_benchmark_of_the_planned_size_has_the_planned_power(
    small_world: DataPaths, pool: Pool
) -> None:
    """Plan demo_better against demo_prod for a delta equal to its true margin over the population
    (a pilot of 1,000 sessions, so the check is of the plan, not of a small pilot's luck), then
    run 200 benchmarks of the recommended size: they promote it at the planned rate, within three
    standard errors of the simulation (0.085)."""
    margin = float(pool.differences(BETTER).mean())
    settings = PlanSettings(deltas=(margin,), pilot_sessions=1000)
    request = parse_plan_request(
        {"baseline_retriever_id": PROD, "candidate_retriever_ids": [BETTER]}, small_world, settings
    )
    plan = planning.plan_benchmark(small_world, request, settings)
    assert plan["population"]["sessions"] == pool.size
    assert plan["population"]["concentration"] == pytest.approx(pw.concentration(pool.counts))
    (target,) = plan["plans"][0]["targets"]
    sessions = target["sessions_needed"]
    assert target["feasible"] and 30 < sessions < 300
    achieved = achieved_power(pool, BETTER, sessions, seed=21)
    error = math.sqrt(0.8 * 0.2 / SIMULATED_BENCHMARKS)
    assert abs(achieved - settings.power) <= 3 * error, (sessions, achieved)


def test_a_200_session_pilot_brackets_what_the_whole_population_says(
    small_world: DataPaths, pool: Pool
) -> None:
    """The sessions the population's own sd and icc call for fall in the plan's 80% range in most
    pilots (eight seeds; the range missing more than three of them would happen under 5% of the
    time if it covered 80%)."""
    differences = pool.differences(BETTER)
    sd, icc = float(differences.std(ddof=1)), pw.pairwise_correlation(differences, pool.query)
    critical = pw.critical_sum(0.05, 0.8)
    s = pw.concentration(pool.counts)
    truth = {
        delta: math.ceil(pw.sessions_needed(delta, sd, icc, s, critical)) for delta in (0.05, 0.07)
    }
    covered = 0
    for seed in range(8):
        request = plan_request(small_world, seed=seed)
        settings = PlanSettings(deltas=tuple(truth))
        plan = planning.plan_benchmark(small_world, request, settings)
        for target in plan["plans"][0]["targets"]:
            low, high = target["sessions_range"]
            covered += low <= truth[target["delta"]] <= (high or math.inf)
    assert covered >= 10, f"{covered} of 16"


def test_where_queries_share_the_effect_the_design_effect_decides_the_size(pool: Pool) -> None:
    """A candidate whose effect is a query's: on each query (drawn anew per benchmark) it ranks like
    demo_better with probability 0.85, else the two swap. Planned with the design effect, 200
    benchmarks promote it at the planned 80%; planned as if sessions were independent, the
    benchmark is half the size and falls clearly short of 80% (the model says 63%)."""
    bias = 0.85
    gain = pool.arms[BETTER]["ndcg_at_10"].to_numpy() - pool.arms[PROD]["ndcg_at_10"].to_numpy()
    margin = (2 * bias - 1) * float(gain.mean())
    rng = np.random.default_rng(5)
    draws = [
        np.where(rng.random(pool.counts.size) < bias, 1.0, -1.0)[pool.query] * gain
        for _ in range(50)
    ]
    sd = float(np.mean([d.std(ddof=1) for d in draws]))
    icc = float(np.mean([pw.pairwise_correlation(d, pool.query) for d in draws]))
    s, critical = pw.concentration(pool.counts), pw.critical_sum(0.05, 0.8)
    planned = math.ceil(pw.sessions_needed(margin, sd, icc, s, critical))
    naive = math.ceil(pw.sessions_needed(margin, sd, 0.0, s, critical))
    assert pw.design_effect(planned, icc, s) > 1.8 and planned > 2 * naive

    def power_at(sessions: int, seed: int) -> float:
        rng = np.random.default_rng(seed)
        promoted = 0
        for _ in range(SIMULATED_BENCHMARKS):
            chosen = np.sort(rng.choice(pool.size, sessions, replace=False))
            flip = pa.array(~(rng.random(pool.counts.size) < bias)[pool.query[chosen]])
            baseline = pool.arms[PROD].take(pa.array(chosen))
            candidate = pool.arms[BETTER].take(pa.array(chosen))
            swapped = {}
            for name in baseline.column_names:
                if name.startswith(("ndcg_at_", "recall_at_")) or name in COUNT_COLUMNS:
                    swapped[name] = (
                        pc.if_else(flip, candidate[name], baseline[name]),
                        pc.if_else(flip, baseline[name], candidate[name]),
                    )
            arms = [baseline, candidate]
            for name, columns in swapped.items():
                for index in (0, 1):
                    position = arms[index].column_names.index(name)
                    arms[index] = arms[index].set_column(position, name, columns[index])
            _, comparison = benchmark_results(
                pa.concat_tables(arms), [pool.infos[PROD], pool.infos[BETTER]]
            )
            promoted += comparison["comparisons"][0]["verdict"] == "better"
        return promoted / SIMULATED_BENCHMARKS

    error = math.sqrt(0.8 * 0.2 / SIMULATED_BENCHMARKS)
    assert abs(power_at(planned, 31) - 0.8) <= 3 * error
    assert power_at(naive, 32) < 0.8 - 3 * error


def test_the_pairwise_icc_predicts_the_demo_worse_design_effect_where_anova_does_not(
    pool: Pool,
) -> None:
    """demo_worse changes tail queries more than head ones. Benchmarks of 1,000 sessions measure
    (CR2) a design effect the pairwise icc predicts; the ANOVA icc predicts over twice it."""
    differences = pool.differences(WORSE)
    rng = np.random.default_rng(8)
    measured = np.mean(
        [
            clustered_means(differences[chosen], pool.query[chosen]).design_effect[0]
            for chosen in (rng.choice(pool.size, 1000, replace=False) for _ in range(200))
        ]
    )
    s = pw.concentration(pool.counts)
    pairwise = pw.design_effect(1000, pw.pairwise_correlation(differences, pool.query), s)
    anova = pw.design_effect(1000, pw.anova_correlation(differences, pool.query), s)
    assert pairwise == pytest.approx(measured, rel=0.15), (pairwise, measured)
    assert anova > 2 * measured, (anova, measured)
