"""Do the benchmark's verdicts mean what they say on logs like our users'? Simulated benchmarks on the
demo world, whose truth is known, through the real scoring and comparison code.

The population is every session the small demo world's logs hold after the default filter (about
3,000 sessions of about 300 queries; the most frequent query has a tenth of them, as head queries do),
replayed once per pipeline through the real engine and scored by the real scoring code. A simulated
benchmark samples DEFAULT_SESSION_COUNT of them without replacement, as the sampler does, and goes
through benchmark_results: only the statistics run again and again, not the replays.

Nulls whose truth is "equal" (each measured with query-level inference, the default, and for the
record with session-level inference, to show why it is not the default):
- query coin: a fair coin per query (drawn anew per benchmark) decides which arm gets demo_prod's
  rankings and which demo_better's on every session of that query. The arms are exchangeable, but a
  query's sessions share their coin: the intra-query correlation of real candidates, which help some
  queries and hurt others.
- query coin, better vs worse: the same with demo_better against demo_worse, a far larger contrast.
- session coin: the coin is drawn per session (no intra-query correlation at all).
- independent samples: demo_prod on one session against demo_prod_copy on another session of the
  same taxonomy node (mean exactly 0, overall and per node).
A correct test promotes a candidate under an "equal" truth in at most alpha / 2 = 2.5% of benchmarks
(the promotion needs a positive, significant delta); the issue asks for <= 3%, and for a false
taxonomy win or loss in <= 8% of benchmarks.

Power and coverage: a candidate that ranks like demo_better on a fixed set of queries and like the
baseline elsewhere is truly better by a known margin (its mean difference over the population).
Each benchmark's own standard error and degrees of freedom predict its power (noncentral t); the
promotion rate must match the average prediction within the simulation's error, and 95% intervals
must cover the true margin 95% of the time, within three standard errors of a share estimated from
POWER_BENCHMARKS benchmarks (about 92-98% for 400).

Failures: a truly worse candidate that fails exactly where it is worse (so the sessions it completes
make it look better) is never promoted; a truly better one failing at random on 1% is still promoted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import scipy.stats

from eval_pipelines.core.benchmarks.comparison import PipelineInfo, benchmark_results
from eval_pipelines.core.benchmarks.inference import UNIT_SESSION, InferenceSettings
from eval_pipelines.core.benchmarks.replay import replay_sessions
from eval_pipelines.core.benchmarks.request import DEFAULT_SESSION_COUNT, parse_request
from eval_pipelines.core.benchmarks.sampling import SessionFilter, sample_sessions
from eval_pipelines.core.benchmarks.scoring import score_benchmark
from eval_pipelines.core.demo.retrievers import BETTER, PROD, PROD_COPY, WORSE
from eval_pipelines.core.metrics.alignment import COUNT_COLUMNS
from eval_pipelines.core.paths import DataPaths

ALPHA = 0.05
NULL_BENCHMARKS = 800
UNIT_BENCHMARKS = 300
POWER_BENCHMARKS = 400
FAILURE_BENCHMARKS = 200
PIPELINES = (PROD, PROD_COPY, BETTER, WORSE)
ARMS = [
    PipelineInfo("baseline", "Baseline arm", "hash-a"),
    PipelineInfo("candidate", "Candidate arm", "hash-b"),
]
METRIC_PREFIXES = ("ndcg_at_", "recall_at_")


@dataclass(frozen=True)
class Pool:
    """Every scored session of every pipeline, stacked: row p * size + s is pipeline p on session s."""

    stacked: pa.Table
    size: int
    node: np.ndarray
    query: np.ndarray
    ndcg: dict[str, np.ndarray]

    def rows(self, pipeline: str, sessions: np.ndarray) -> np.ndarray:
        return PIPELINES.index(pipeline) * self.size + sessions


@dataclass(frozen=True)
class Outcome:
    """What each simulated benchmark reported for its candidate, one entry per benchmark."""

    p_value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    delta: np.ndarray
    standard_error: np.ndarray
    degrees_of_freedom: np.ndarray
    mde: np.ndarray
    promoted: np.ndarray
    verdict: np.ndarray
    taxonomy_calls: np.ndarray


# A draw: each slot's (baseline row, candidate row) in the pool, and which candidate rows fail.
Draw = Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray, np.ndarray]]


@pytest.fixture(scope="module")
def pool(module_world_copy: DataPaths) -> Pool:
    """A copy of the small world, not the shared one: replay_sessions stores its executions."""
    paths = module_world_copy
    request = parse_request(
        {
            "benchmark_name": "calibration pool",
            "baseline_retriever_id": PROD,
            "candidate_retriever_ids": [PROD_COPY, BETTER, WORSE],
            "session_count": 10_000,
        },
        paths,
    )
    sample = sample_sessions(
        paths,
        SessionFilter(
            min_interactions=request.min_interactions,
            counted_types=request.counted_types,
            strategy=request.sample_strategy,
        ),
        request.session_count,
        request.seed,
    )
    assert sample.sessions.num_rows == sample.matched > 2 * DEFAULT_SESSION_COUNT
    replays = replay_sessions(
        paths, "calibration", sample.sessions, request.retriever_ids, request.replay_depth
    )
    scores = score_benchmark(request, sample.sessions, sample.interactions, replays)
    parts = [scores.filter(pc.equal(scores.column("retriever_id"), p)) for p in PIPELINES]
    order = parts[0].column("execution_id")
    for part in parts:
        assert part.column("execution_id").equals(order)
        assert pc.all(pc.equal(part.column("status"), "completed")).as_py()
    ndcg = {
        p: part.column("ndcg_at_10").to_numpy() for p, part in zip(PIPELINES, parts, strict=True)
    }
    assert not any(np.isnan(values).any() for values in ndcg.values())
    assert np.array_equal(ndcg[PROD], ndcg[PROD_COPY])
    nodes = parts[0].column("taxonomy_node_id").fill_null("").to_numpy(zero_copy_only=False)
    queries = parts[0].column("query_key").to_numpy(zero_copy_only=False)
    query = np.unique(queries, return_inverse=True)[1]
    assert np.bincount(query).max() > 0.05 * order.length(), "head queries repeat"
    return Pool(
        pa.concat_tables(parts),
        order.length(),
        np.unique(nodes, return_inverse=True)[1],
        query,
        ndcg,
    )


def _failed(arm: pa.Table, failing: np.ndarray) -> pa.Table:
    """The arm with the rows of `failing` turned into failed replays (no metrics)."""
    if not failing.any():
        return arm
    mask = pa.array(failing)
    for index, name in enumerate(arm.column_names):
        column = arm.column(name)
        if name == "status":
            arm = arm.set_column(index, name, pc.if_else(mask, "failed", column))
        elif name == "error_type":
            arm = arm.set_column(index, name, pc.if_else(mask, "timeout", column))
        elif name.startswith(METRIC_PREFIXES) or name in COUNT_COLUMNS:
            arm = arm.set_column(
                index, name, pc.if_else(mask, pa.scalar(None, column.type), column)
            )
    return arm


def simulate(
    pool: Pool, benchmarks: int, seed: int, draw: Draw, settings: InferenceSettings
) -> Outcome:
    """Run `benchmarks` benchmarks of DEFAULT_SESSION_COUNT slots through benchmark_results.

    A slot is one sampled session: both arms take its taxonomy node, logged reference and query
    from the baseline's row, so the two rows of a slot agree as the comparison requires.
    """
    rng = np.random.default_rng(seed)
    slots = pa.array([f"slot_{i:05d}" for i in range(DEFAULT_SESSION_COUNT)])
    columns = pool.stacked.column_names
    reported: dict[str, list] = {field: [] for field in Outcome.__dataclass_fields__}
    for _ in range(benchmarks):
        baseline_rows, candidate_rows, failing = draw(rng)
        baseline = pool.stacked.take(baseline_rows)
        candidate = pool.stacked.take(candidate_rows)
        for name in ("taxonomy_node_id", "logged_ndcg_at_10", "query_key"):
            candidate = candidate.set_column(columns.index(name), name, baseline.column(name))
        arms = [
            arm.set_column(columns.index("execution_id"), "execution_id", slots).set_column(
                columns.index("retriever_id"),
                "retriever_id",
                pa.repeat(pa.scalar(info.retriever_id), DEFAULT_SESSION_COUNT),
            )
            for arm, info in zip((baseline, _failed(candidate, failing)), ARMS, strict=True)
        ]
        _, comparison = benchmark_results(pa.concat_tables(arms), ARMS, settings=settings)
        (pair,) = comparison["comparisons"]
        interval = pair["confidence_interval"] or [np.nan, np.nan]
        reported["p_value"].append(pair["p_value"])
        reported["ci_low"].append(interval[0])
        reported["ci_high"].append(interval[1])
        reported["delta"].append(pair["effect"]["delta"])
        reported["standard_error"].append(pair["inference"]["standard_error"])
        reported["degrees_of_freedom"].append(pair["inference"]["degrees_of_freedom"])
        reported["mde"].append(pair["effect"]["minimum_detectable_effect"])
        reported["promoted"].append(comparison["recommendation"].startswith("Promote candidate"))
        reported["verdict"].append(pair["verdict"])
        reported["taxonomy_calls"].append(len(pair["taxonomy_wins"]) + len(pair["taxonomy_losses"]))
    return Outcome(**{field: np.array(values) for field, values in reported.items()})


def sample(pool: Pool, rng: np.random.Generator) -> np.ndarray:
    """DEFAULT_SESSION_COUNT sessions without replacement, as the random sampling strategy draws."""
    return rng.choice(pool.size, DEFAULT_SESSION_COUNT, replace=False)


def query_coin(first: str, second: str) -> Callable[[Pool], Draw]:
    def build(pool: Pool) -> Draw:
        def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            sessions = sample(pool, rng)
            swap = (rng.random(pool.query.max() + 1) < 0.5)[pool.query[sessions]]
            one, two = pool.rows(first, sessions), pool.rows(second, sessions)
            return np.where(swap, two, one), np.where(swap, one, two), np.zeros(len(sessions), bool)

        return draw

    return build


def session_coin(pool: Pool) -> Draw:
    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sessions = sample(pool, rng)
        swap = rng.random(sessions.size) < 0.5
        prod, better = pool.rows(PROD, sessions), pool.rows(BETTER, sessions)
        return (
            np.where(swap, better, prod),
            np.where(swap, prod, better),
            np.zeros(sessions.size, bool),
        )

    return draw


def independent_samples(pool: Pool) -> Draw:
    by_node = np.argsort(pool.node, kind="stable")
    node_start = np.searchsorted(pool.node[by_node], np.arange(pool.node.max() + 1))
    node_size = np.bincount(pool.node)

    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        first = sample(pool, rng)
        node = pool.node[first]
        second = by_node[node_start[node] + rng.integers(0, node_size[node])]
        return pool.rows(PROD, first), pool.rows(PROD_COPY, second), np.zeros(first.size, bool)

    return draw


def consistent_with_at_most(events: np.ndarray, rate: float) -> bool:
    """False only when the observed frequency is significantly above rate (one-sided, 1%)."""
    test = scipy.stats.binomtest(int(np.sum(events)), events.size, rate, alternative="greater")
    return test.pvalue > 0.01


# design -> (draw builder, benchmarks): the designs (a query's sessions share the effect)
# get the most benchmarks; the two without intra-query correlation are checks that we lose nothing.
NULL_DESIGNS = {
    "query coin, prod vs better": (query_coin(PROD, BETTER), NULL_BENCHMARKS),
    "query coin, better vs worse": (query_coin(BETTER, WORSE), NULL_BENCHMARKS),
    "session coin": (session_coin, NULL_BENCHMARKS // 2),
    "independent samples": (independent_samples, NULL_BENCHMARKS // 2),
}


@pytest.mark.parametrize("design", list(NULL_DESIGNS))
def test_an_equal_candidate_is_not_promoted_and_gets_no_false_taxonomy_claims(
    pool: Pool, design: str
) -> None:
    build, benchmarks = NULL_DESIGNS[design]
    outcome = simulate(pool, benchmarks, 11, build(pool), InferenceSettings())
    promoted, claims = outcome.promoted.mean(), (outcome.taxonomy_calls > 0).mean()
    rejected = (outcome.verdict == "better") | (outcome.verdict == "worse")
    if design.startswith("query coin"):  # the bars, as measured
        assert promoted <= 0.03 and claims <= 0.08, (design, promoted, claims)
    # And no excess over them that a one-sided binomial test at 1% could tell from chance.
    assert consistent_with_at_most(outcome.promoted, 0.03), f"{design}: promoted in {promoted:.3f}"
    assert consistent_with_at_most(outcome.taxonomy_calls > 0, 0.08), (
        f"{design}: claims {claims:.3f}"
    )
    assert consistent_with_at_most(rejected, ALPHA), f"{design}: rejected in {rejected.mean():.3f}"
    assert np.array_equal(outcome.promoted, outcome.verdict == "better")
    assert np.array_equal(rejected, outcome.p_value < ALPHA)


def test_session_level_inference_is_anti_conservative_where_queries_share_an_effect(
    pool: Pool,
) -> None:
    """The measurement behind the default: on the query-coin null, treating sessions as independent
    rejects several times too often, while query-level inference holds alpha."""
    draw = NULL_DESIGNS["query coin, prod vs better"][0](pool)
    by_session = simulate(pool, UNIT_BENCHMARKS, 11, draw, InferenceSettings(unit=UNIT_SESSION))
    by_query = simulate(pool, UNIT_BENCHMARKS, 11, draw, InferenceSettings())
    session_rate = (by_session.p_value < ALPHA).mean()
    query_rate = (by_query.p_value < ALPHA).mean()
    assert session_rate >= 0.15, f"session-level rejection {session_rate:.3f}"
    assert query_rate <= 0.075 and session_rate >= 2.5 * query_rate, (session_rate, query_rate)


def better_on_queries(pool: Pool, share: float, seed: int) -> tuple[np.ndarray, float]:
    """demo_better's rankings on a fixed random share of the queries, the baseline's elsewhere; the
    per-session improvement flag and the true margin (mean difference over the population)."""
    queries = pool.query.max() + 1
    chosen = np.random.default_rng(seed).random(queries) < share
    improved = chosen[pool.query]
    margin = float(np.mean(np.where(improved, pool.ndcg[BETTER] - pool.ndcg[PROD], 0.0)))
    return improved, margin


def better_candidate(pool: Pool, improved: np.ndarray, failure_rate: float = 0.0) -> Draw:
    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sessions = sample(pool, rng)
        candidate = np.where(
            improved[sessions], pool.rows(BETTER, sessions), pool.rows(PROD_COPY, sessions)
        )
        return pool.rows(PROD, sessions), candidate, rng.random(sessions.size) < failure_rate

    return draw


def biased_query_coin(pool: Pool, bias: float) -> tuple[Draw, float]:
    """The query coin of the nulls, biased: on each query (drawn anew per benchmark) the candidate
    gets demo_better's rankings and the baseline demo_prod's with probability `bias`, else the
    reverse. The truth is a query-level effect with the nulls' heavy, symmetric noise; the true
    margin is (2 bias - 1) times demo_better's mean gain over the population."""

    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sessions = sample(pool, rng)
        better = (rng.random(pool.query.max() + 1) < bias)[pool.query[sessions]]
        prod, good = pool.rows(PROD, sessions), pool.rows(BETTER, sessions)
        return (
            np.where(better, prod, good),
            np.where(better, good, prod),
            np.zeros(sessions.size, bool),
        )

    return draw, (2 * bias - 1) * float(np.mean(pool.ndcg[BETTER] - pool.ndcg[PROD]))


def predicted_power(margin: float, outcome: Outcome) -> np.ndarray:
    """Each benchmark's power against the true margin as its own MDE predicts it: the MDE is where
    power is 80%, and the estimate is about normal with the recorded standard error."""
    shift = (margin - outcome.mde) / outcome.standard_error
    return scipy.stats.norm.cdf(shift + scipy.stats.norm.ppf(0.8))


def test_a_truly_better_candidate_is_promoted_as_often_as_its_mde_predicts(pool: Pool) -> None:
    draw, margin = biased_query_coin(pool, 0.75)
    assert 0 < margin < 0.05
    outcome = simulate(pool, POWER_BENCHMARKS, 12, draw, InferenceSettings())
    predicted = predicted_power(margin, outcome).mean()
    observed = outcome.promoted.mean()
    error = np.sqrt(predicted * (1 - predicted) / POWER_BENCHMARKS)
    assert 0.3 < predicted < 0.9, f"a design with informative power, not {predicted:.3f}"
    assert abs(observed - predicted) <= 3 * error, (observed, predicted)
    covered = ((outcome.ci_low <= margin) & (margin <= outcome.ci_high)).mean()
    coverage_error = np.sqrt(0.95 * 0.05 / POWER_BENCHMARKS)
    assert abs(covered - 0.95) <= 3 * coverage_error, (
        f"95% intervals cover the true margin in {covered:.3f}"
    )
    spread = np.std(outcome.delta)
    assert outcome.delta.mean() == pytest.approx(margin, abs=4 * spread / np.sqrt(POWER_BENCHMARKS))


def test_a_fixed_query_mix_makes_query_level_inference_conservative(pool: Pool) -> None:
    """The other side of the estimand: when which queries improve is fixed (the logged queries at
    their logged weights), query-level intervals are wider than the estimate's spread, so they
    over-cover and the verdict is cautious; README "Statistics" states this."""
    improved, margin = better_on_queries(pool, 0.35, seed=3)
    outcome = simulate(pool, 100, 15, better_candidate(pool, improved), InferenceSettings())
    assert np.std(outcome.delta) < 0.6 * np.median(outcome.standard_error)
    covered = ((outcome.ci_low <= margin) & (margin <= outcome.ci_high)).mean()
    assert covered >= 0.97


def test_a_worse_candidate_failing_where_it_is_worse_is_never_promoted(pool: Pool) -> None:
    """Completed-only, it looks better; with failures counted it is worse, and it fails too often."""
    worse_than_prod = pool.ndcg[WORSE] < pool.ndcg[PROD]

    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sessions = sample(pool, rng)
        return pool.rows(PROD, sessions), pool.rows(WORSE, sessions), worse_than_prod[sessions]

    outcome = simulate(pool, FAILURE_BENCHMARKS, 13, draw, InferenceSettings())
    assert not outcome.promoted.any()
    assert set(outcome.verdict) == {"worse"}


def test_a_better_candidate_failing_at_random_on_1_percent_is_still_promoted(pool: Pool) -> None:
    improved, margin = better_on_queries(pool, 0.7, seed=4)
    draw = better_candidate(pool, improved, failure_rate=0.01)
    outcome = simulate(pool, FAILURE_BENCHMARKS, 14, draw, InferenceSettings())
    assert outcome.promoted.mean() >= 0.9, (
        f"promoted in {outcome.promoted.mean():.3f}, margin {margin:.4f}"
    )
