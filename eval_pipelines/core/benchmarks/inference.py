"""What a benchmark tests for each candidate, and how: the estimates behind its verdict.

- Primary estimate (intention to treat): every session with interactions counts, and a session a
  pipeline failed to replay scores 0 NDCG@10 for it (the worst outcome), so failures count against
  the pipeline that failed instead of quietly leaving the comparison.
- Completed-only estimate: sessions both pipelines replayed, as the record's ndcg_delta reports.
- Unit of inference: the query by default (sessions nested in queries, the design the logs are
  sampled under: head queries recur, and a verdict must hold for future traffic), or the session.
- Method: the wild cluster bootstrap-t (stats/clustered.py: Rademacher signs per cluster, the null
  imposed, CR2-studentized, BOOTSTRAP_DRAWS seeded draws), its interval by inverting the test. Chosen
  by measuring on the demo world (README "Statistics"): under nulls where a query's sessions share
  the candidate's effect, it held alpha (3.8-5.4% at 5%) where CR2 with Bell-McCaffrey degrees of
  freedom did not in the small world's head-heavy logs (7.6-8.4%), and the session-level t-test
  rejected in 27-65%. CR2 / Bell-McCaffrey still gives the standard error behind the minimum
  detectable effect and the design effect. With too few clusters or no variance, the exact sign-flip
  test over clusters gives the p-value, and the comparison is not testable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eval_pipelines.core.stats.clustered import (
    DEFAULT_POWER,
    BootstrapTest,
    ClusteredMeans,
    SignDraws,
    clustered_means,
    minimum_detectable_effect,
    sign_flip_p_value,
    wild_cluster_bootstrap,
)
from eval_pipelines.core.stats.multiple_testing import holm_adjust

UNIT_QUERY, UNIT_SESSION = "query", "session"
INFERENCE_UNITS = (UNIT_QUERY, UNIT_SESSION)
METHOD_BOOTSTRAP = "wild_cluster_bootstrap_t"
METHOD_SIGN_FLIP = "cluster_sign_flip"
BOOTSTRAP_DRAWS = 4999
# A node's verdict needs only to clear Holm's thresholds across the nodes, not an interval.
NODE_BOOTSTRAP_DRAWS = 999
ESTIMANDS = {
    UNIT_QUERY: "mean NDCG@10 difference per session over future traffic from these queries' "
    "population: queries are the sampled units, so the verdict generalizes over queries",
    UNIT_SESSION: "mean NDCG@10 difference over these logged queries at their logged weights: "
    "sessions are the sampled units (anti-conservative for new queries)",
}

DEFAULT_ALPHA = 0.05
DEFAULT_MIN_CLUSTERS = 10
DEFAULT_MIN_NODE_SESSIONS = 10
# A candidate failing this much more often than the baseline (absolute rate) is never promoted. At
# 1,000 sessions a candidate failing at random on 1% exceeds it in under 0.1% of samples (binomial),
# so a rare-failure candidate that is truly better is still promoted (test_failure_aware_verdicts).
DEFAULT_MAX_FAILURE_EXCESS = 0.02


@dataclass(frozen=True)
class InferenceSettings:
    """How comparisons are tested; every field is recorded in the benchmark's settings."""

    unit: str = UNIT_QUERY
    alpha: float = DEFAULT_ALPHA
    power: float = DEFAULT_POWER
    min_clusters: int = DEFAULT_MIN_CLUSTERS
    min_node_sessions: int = DEFAULT_MIN_NODE_SESSIONS
    max_failure_excess: float = DEFAULT_MAX_FAILURE_EXCESS
    seed: int = 0

    def __post_init__(self) -> None:
        if self.unit not in INFERENCE_UNITS:
            raise ValueError(f"unit: {self.unit!r} is not one of {', '.join(INFERENCE_UNITS)}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha: {self.alpha!r} must lie strictly between 0 and 1")
        if not 0 < self.power < 1:
            raise ValueError(f"power: {self.power!r} must lie strictly between 0 and 1")
        for name in ("min_clusters", "min_node_sessions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"{name}: {value!r} must be an integer >= 2")
        if not 0 <= self.max_failure_excess <= 1:
            raise ValueError(
                f"max_failure_excess: {self.max_failure_excess!r} must lie between 0 and 1"
            )


@dataclass(frozen=True)
class Estimate:
    """One estimate of the mean NDCG@10 difference (candidate - baseline) and how it was tested."""

    sessions: int
    clusters: int
    delta: float
    p_value: float | None
    ci_low: float | None
    ci_high: float | None
    method: str
    standard_error: float | None = None
    degrees_of_freedom: float | None = None
    design_effect: float | None = None
    spread: float | None = None
    no_variance: bool = False
    bootstrap: BootstrapTest | None = field(default=None, repr=False, compare=False)

    @property
    def identical(self) -> bool:
        """Every difference is exactly 0 (up to floating-point noise)."""
        return self.no_variance and self.delta == 0.0

    @property
    def testable(self) -> bool:
        return self.method == METHOD_BOOTSTRAP


@dataclass(frozen=True)
class CandidateTest:
    """Everything a candidate's verdict is decided from."""

    primary: Estimate
    completed_only: Estimate
    baseline_mean: float  # the baseline's primary-population mean NDCG@10
    candidate_failure_rate: float
    baseline_failure_rate: float
    candidate_scored: int
    baseline_scored: int
    failed_sessions: int
    too_few: list[str] = field(default_factory=list)
    taxonomy_sessions: dict[str, int] = field(default_factory=dict)
    taxonomy_tests: dict[str, Estimate] = field(default_factory=dict)
    # The primary estimate again with the candidate's never-shown documents scored as the query's
    # best one: a candidate is called worse only if it stays worse then (None: it has none).
    if_unseen_best: Estimate | None = None
    seen_share: float | None = None  # share of its top 10 with any evidence in the logs

    @property
    def failure_excess(self) -> float:
        return self.candidate_failure_rate - self.baseline_failure_rate


def estimate(
    differences: np.ndarray,
    clusters: np.ndarray,
    settings: InferenceSettings,
    minimum_clusters: int,
    stream: int = 0,
    minimum_sessions: int = 2,
) -> tuple[Estimate, list[str]]:
    """The estimate of one mean difference, and why it is not testable (empty when it is).

    stream: which of the seed's random streams draws the bootstrap signs, so every test of a
    benchmark has its own reproducible draws."""
    result = clustered_means(differences, clusters)
    return _estimate(
        result, 0, differences, clusters, settings, minimum_clusters, minimum_sessions, stream
    )


def _estimate(
    result: ClusteredMeans,
    group: int,
    differences: np.ndarray,
    clusters: np.ndarray,
    settings: InferenceSettings,
    minimum_clusters: int,
    minimum_sessions: int,
    stream: int,
    interval: bool = True,
) -> tuple[Estimate, list[str]]:
    sessions, count = int(result.sessions[group]), int(result.clusters[group])
    delta = float(result.mean[group]) + 0.0
    spread = None if np.isnan(result.spread[group]) else float(result.spread[group])
    no_variance = bool(result.no_variance[group])
    reasons = _untestable(
        sessions, count, delta, no_variance, settings, minimum_clusters, minimum_sessions
    )
    if reasons or no_variance:
        exact = sessions and (interval or not reasons)  # a node's untested p is never shown
        p_value = sign_flip_p_value(differences, clusters, settings.seed) if exact else None
        exact_zero = 0.0 if not reasons and delta == 0.0 else None  # identical on every session
        return (
            Estimate(
                sessions,
                count,
                delta,
                p_value,
                exact_zero,
                exact_zero,
                METHOD_SIGN_FLIP,
                spread=spread,
                no_variance=no_variance,
            ),
            reasons,
        )
    draws = BOOTSTRAP_DRAWS if interval else NODE_BOOTSTRAP_DRAWS
    signs = SignDraws.draw(count, draws, np.random.default_rng([settings.seed, stream, group]))
    tested = wild_cluster_bootstrap(differences, clusters, signs, interval=interval)
    return (
        Estimate(
            sessions,
            count,
            delta,
            tested.p_value,
            tested.ci_low,
            tested.ci_high,
            METHOD_BOOTSTRAP,
            standard_error=float(result.standard_error[group]),
            degrees_of_freedom=float(result.degrees_of_freedom[group]),
            design_effect=float(result.design_effect[group]),
            spread=spread,
            bootstrap=tested,
        ),
        reasons,
    )


def _untestable(
    sessions: int,
    clusters: int,
    delta: float,
    no_variance: bool,
    settings: InferenceSettings,
    minimum_clusters: int,
    minimum_sessions: int,
) -> list[str]:
    """Why a sample cannot carry the bootstrap test (empty when it can)."""
    unit = "queries" if settings.unit == UNIT_QUERY else "sessions"
    if clusters < minimum_clusters:
        return [f"{clusters} {unit} < minimum {minimum_clusters}"]
    if sessions < minimum_sessions:
        return [f"{sessions} sessions < minimum {minimum_sessions}"]
    if no_variance and delta != 0.0:
        return ["the differences have no variance (every paired session differs alike)"]
    return []


def taxonomy_estimates(
    differences: np.ndarray,
    clusters: np.ndarray,
    node: np.ndarray,
    node_names: list[str],
    settings: InferenceSettings,
    stream: int = 0,
) -> tuple[dict[str, int], dict[str, Estimate]]:
    """Sessions per node, and the test of each node with enough sessions and clusters (p-values
    only: a node's verdict needs no interval)."""
    in_node = node >= 0
    result = clustered_means(
        differences[in_node], clusters[in_node], node[in_node], max(len(node_names), 1)
    )
    sessions = {name: int(result.sessions[g]) for g, name in enumerate(node_names)}
    tested = {}
    for g, name in enumerate(node_names):
        members = in_node & (node == g)
        found, reasons = _estimate(
            result,
            g,
            differences[members],
            clusters[members],
            settings,
            settings.min_clusters,
            settings.min_node_sessions,
            stream,
            interval=False,
        )
        if not reasons and found.testable:
            tested[name] = found
    return sessions, tested


def taxonomy_verdicts(tests: dict[str, Estimate], alpha: float) -> tuple[list[str], list[str]]:
    """Nodes whose difference stays significant after Holm across the candidate's tested nodes."""
    names = sorted(tests)
    if not names:
        return [], []
    adjusted = holm_adjust([tests[n].p_value for n in names])
    significant = [n for n, p in zip(names, adjusted, strict=True) if p < alpha]
    wins = [n for n in significant if tests[n].delta > 0]
    losses = [n for n in significant if tests[n].delta < 0]
    return wins, losses


def mde(found: Estimate, alpha: float, power: float) -> float | None:
    """The minimum detectable |effect| of a tested estimate at this alpha and power: the critical
    |t| of its own bootstrap, plus the power's normal quantile, in clustered standard errors."""
    if found.standard_error is None or found.bootstrap is None:
        return None
    critical = found.bootstrap.critical_value(alpha)
    return minimum_detectable_effect(found.standard_error, critical, power)
