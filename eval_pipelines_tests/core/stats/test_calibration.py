"""Do the benchmark's p-values and intervals mean what they say? Simulated benchmarks on the demo world.

The population is every session the small demo world's logs hold after the default filter, replayed
once per pipeline through the real engine and scored by the real scoring code. A simulated benchmark
draws DEFAULT_SESSION_COUNT of them independently with replacement (iid, as the paired t-test models
logged traffic) and goes through the real comparison code, benchmark_results: only the statistics
run again and again, not the replays.

What A/A means in a paired design: demo_prod_copy ranks every session exactly as demo_prod does, so on
the same sessions every paired difference is 0 and the test can never reject (p = 1 by definition,
see test_degenerate_inputs.py). Two constructions keep a true null and a real spread:
- independent samples (the issue's "baseline against its copy with independently sampled sessions"):
  slot i pairs demo_prod's score on one session with demo_prod_copy's score on a second session drawn
  independently from the same taxonomy node. Each difference has mean exactly 0, overall and per node.
- swapped arms (a paired A/A that keeps the within-session structure): both arms replay the same
  session, and a fair coin per slot decides which arm gets demo_prod's ranking and which demo_better's.
  The arms are the same mixture of retrievers, so each difference is symmetric around 0, while the
  differences keep the heavy tails and many exact ties of two different retrievers on one session.
A correct test rejects a true null in alpha = 5% of benchmarks; with 400 benchmarks sampling noise
alone stays inside 2%..8% (about +-2 points is two standard errors).

Power: a candidate that ranks like demo_better on a fixed, seeded subset of the sessions and like the
baseline elsewhere is truly better by a known margin (its mean difference over the population, exact).
The subset is the smallest one whose margin a paired t-test at the default session count detects with
90% probability in theory (noncentral t); it must be detected, and recommended, in >= 80% of
benchmarks, and its 95% interval must cover the true margin in 95% of them (92%..98% allowed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import scipy.stats

from eval_pipelines.core.benchmarks.comparison import PipelineInfo, benchmark_results
from eval_pipelines.core.benchmarks.replay import replay_sessions
from eval_pipelines.core.benchmarks.request import DEFAULT_SESSION_COUNT, parse_request
from eval_pipelines.core.benchmarks.sampling import SessionFilter, sample_sessions
from eval_pipelines.core.benchmarks.scoring import score_benchmark
from eval_pipelines.core.demo import DemoScale, build_demo_world
from eval_pipelines.core.demo.retrievers import BETTER, PROD, PROD_COPY
from eval_pipelines.core.paths import DataPaths

ALPHA = 0.05
AA_BENCHMARKS = 400
POWER_BENCHMARKS = 400
TARGET_POWER = 0.9
PIPELINES = (PROD, PROD_COPY, BETTER)
ARMS = [
    PipelineInfo("baseline", "Baseline arm", "hash-a"),
    PipelineInfo("candidate", "Candidate arm", "hash-b"),
]


@dataclass(frozen=True)
class Pool:
    """Every scored session of every pipeline, stacked: row p * size + s is pipeline p on session s."""

    stacked: pa.Table
    size: int
    node: np.ndarray
    ndcg: dict[str, np.ndarray]

    def rows(self, pipeline: str, sessions: np.ndarray) -> np.ndarray:
        return PIPELINES.index(pipeline) * self.size + sessions


@dataclass(frozen=True)
class Outcome:
    """What each simulated benchmark reported for its candidate, one entry per benchmark."""

    p_value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    ndcg_delta: np.ndarray
    promoted: np.ndarray
    taxonomy_calls: np.ndarray


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Pool:
    paths = DataPaths(Path(tmp_path_factory.mktemp("calibration")) / "data")
    build_demo_world(paths, scale=DemoScale.small())
    request = parse_request(
        {
            "benchmark_name": "calibration pool",
            "baseline_retriever_id": PROD,
            "candidate_retriever_ids": [PROD_COPY, BETTER],
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
        paths, "calibration", sample.sessions, request.pipeline_ids, request.replay_depth
    )
    scores = score_benchmark(request, sample.sessions, sample.interactions, replays)
    parts = [scores.filter(pc.equal(scores.column("pipeline_id"), p)) for p in PIPELINES]
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
    return Pool(
        pa.concat_tables(parts), order.length(), np.unique(nodes, return_inverse=True)[1], ndcg
    )


def simulate(
    pool: Pool,
    benchmarks: int,
    seed: int,
    draw: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]],
) -> Outcome:
    """Run `benchmarks` benchmarks; draw gives each slot's (baseline row, candidate row) in the pool.

    A slot is one paired session of the simulated benchmark: it takes its taxonomy node and logged
    reference from the baseline's row, so the two rows of a slot agree as the comparison requires.
    The p-values the records report must be the textbook t-test of the pairs drawn (so the pairing
    survived the trip through the scores table).
    """
    rng = np.random.default_rng(seed)
    slots = pa.array([f"slot_{i:05d}" for i in range(DEFAULT_SESSION_COUNT)])
    columns = pool.stacked.column_names
    ndcg = pool.stacked.column("ndcg_at_10").to_numpy()
    differences = np.empty((benchmarks, DEFAULT_SESSION_COUNT))
    reported: dict[str, list] = {field: [] for field in Outcome.__dataclass_fields__}
    for benchmark in range(benchmarks):
        baseline_rows, candidate_rows = draw(rng)
        differences[benchmark] = ndcg[candidate_rows] - ndcg[baseline_rows]
        baseline = pool.stacked.take(baseline_rows)
        candidate = pool.stacked.take(candidate_rows)
        for name in ("taxonomy_node_id", "logged_ndcg_at_10"):
            candidate = candidate.set_column(columns.index(name), name, baseline.column(name))
        arms = [
            arm.set_column(columns.index("execution_id"), "execution_id", slots).set_column(
                columns.index("pipeline_id"),
                "pipeline_id",
                pa.repeat(pa.scalar(info.retriever_id), DEFAULT_SESSION_COUNT),
            )
            for arm, info in zip((baseline, candidate), ARMS, strict=True)
        ]
        _, comparison = benchmark_results(pa.concat_tables(arms), ARMS, alpha=ALPHA)
        (pair,) = comparison["comparisons"]
        assert pair["paired_sessions"] == DEFAULT_SESSION_COUNT
        reported["p_value"].append(pair["p_value"])
        reported["ci_low"].append(pair["confidence_interval"][0])
        reported["ci_high"].append(pair["confidence_interval"][1])
        reported["ndcg_delta"].append(pair["ndcg_delta"]["10"])
        reported["promoted"].append(comparison["recommendation"].startswith("Promote candidate"))
        reported["taxonomy_calls"].append(len(pair["taxonomy_wins"]) + len(pair["taxonomy_losses"]))
    outcome = Outcome(**{field: np.array(values) for field, values in reported.items()})
    textbook = scipy.stats.ttest_1samp(differences, 0.0, axis=1)
    np.testing.assert_allclose(outcome.p_value, textbook.pvalue, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(outcome.ndcg_delta, differences.mean(axis=1), rtol=1e-9, atol=1e-15)
    return outcome


def assert_a_calibrated_null(outcome: Outcome) -> None:
    rejected = outcome.p_value < ALPHA
    rate = rejected.mean()
    assert 0.02 <= rate <= 0.08, f"A/A rejection rate {rate:.3f} outside 2%..8%"
    assert np.array_equal(rejected, (outcome.ci_low > 0) | (outcome.ci_high < 0))
    assert np.array_equal(outcome.promoted, rejected & (outcome.ndcg_delta > 0))
    family_rate = (outcome.taxonomy_calls > 0).mean()
    assert family_rate <= 0.08, f"A/A benchmarks with a taxonomy verdict: {family_rate:.3f}"


def test_aa_independent_samples_reject_at_alpha(pool: Pool) -> None:
    by_node = np.argsort(pool.node, kind="stable")
    node_start = np.searchsorted(pool.node[by_node], np.arange(pool.node.max() + 1))
    node_size = np.bincount(pool.node)

    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        first = rng.integers(0, pool.size, DEFAULT_SESSION_COUNT)
        node = pool.node[first]
        second = by_node[node_start[node] + rng.integers(0, node_size[node])]
        return pool.rows(PROD, first), pool.rows(PROD_COPY, second)

    assert_a_calibrated_null(simulate(pool, AA_BENCHMARKS, seed=1, draw=draw))


def test_aa_swapped_arms_reject_at_alpha(pool: Pool) -> None:
    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        sessions = rng.integers(0, pool.size, DEFAULT_SESSION_COUNT)
        swap = rng.random(DEFAULT_SESSION_COUNT) < 0.5
        prod, better = pool.rows(PROD, sessions), pool.rows(BETTER, sessions)
        return np.where(swap, better, prod), np.where(swap, prod, better)

    assert_a_calibrated_null(simulate(pool, AA_BENCHMARKS, seed=2, draw=draw))


def theoretical_power(margin: np.ndarray, spread: np.ndarray, n: int) -> np.ndarray:
    """Power of the two-sided paired t-test at ALPHA for a true mean difference with this spread."""
    critical = scipy.stats.t.ppf(1 - ALPHA / 2, n - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.nan_to_num(margin / spread * np.sqrt(n))
    return scipy.stats.nct.sf(critical, n - 1, shift) + scipy.stats.nct.cdf(-critical, n - 1, shift)


def test_a_truly_better_candidate_is_detected_and_its_margin_covered(pool: Pool) -> None:
    gain = pool.ndcg[BETTER] - pool.ndcg[PROD]
    order = np.random.default_rng(3).permutation(pool.size)
    margins = np.cumsum(gain[order]) / pool.size
    spreads = np.sqrt(np.maximum(np.cumsum(gain[order] ** 2) / pool.size - margins**2, 0.0))
    power = theoretical_power(margins, spreads, DEFAULT_SESSION_COUNT)
    subset_size = int(np.flatnonzero(power >= TARGET_POWER)[0])
    improved = np.zeros(pool.size, dtype=bool)
    improved[order[: subset_size + 1]] = True
    margin, spread = margins[subset_size], spreads[subset_size]
    assert margin == pytest.approx(np.mean(np.where(improved, gain, 0.0)), rel=1e-9)
    assert 0 < margin < 0.02

    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        sessions = rng.integers(0, pool.size, DEFAULT_SESSION_COUNT)
        candidate = np.where(
            improved[sessions], pool.rows(BETTER, sessions), pool.rows(PROD_COPY, sessions)
        )
        return pool.rows(PROD, sessions), candidate

    outcome = simulate(pool, POWER_BENCHMARKS, seed=4, draw=draw)
    detected = (outcome.p_value < ALPHA) & (outcome.ndcg_delta > 0)
    assert detected.mean() >= 0.8, f"power {detected.mean():.3f} at margin {margin:.4f}"
    assert np.array_equal(outcome.promoted, detected)
    covered = ((outcome.ci_low <= margin) & (margin <= outcome.ci_high)).mean()
    assert 0.92 <= covered <= 0.98, f"95% intervals cover the true margin in {covered:.3f}"
    standard_error = spread / np.sqrt(DEFAULT_SESSION_COUNT * POWER_BENCHMARKS)
    assert outcome.ndcg_delta.mean() == pytest.approx(margin, abs=4 * standard_error)
