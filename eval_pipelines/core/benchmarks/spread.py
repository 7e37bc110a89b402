"""The spread a plan sizes a candidate by: sd and icc measured from the pilot, or assumed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eval_pipelines.core.benchmarks.pilot import PilotResult
from eval_pipelines.core.stats import power as pw
from eval_pipelines.core.stats.clustered import ClusteredMeans, clustered_means

SOURCE_PILOT, SOURCE_ASSUMED = "pilot", "assumed"
# The plan's range: the 10th and 90th percentiles of sessions needed over this many resamples of
# the pilot's queries (their own random stream of the request's seed).
RANGE_DRAWS = 1000
RANGE_STREAM = 7


@dataclass(frozen=True)
class Spread:
    """The spread model of one candidate's per-session differences (or the assumed one), and for
    a pilot, resampled values of (sd, icc) that show how far the pilot pins them down."""

    retriever_id: str | None
    source: str
    sd: float | None
    icc: float | None
    pilot: dict[str, Any] | None = None
    problem: str | None = None
    resampled: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)


def pilot_spread(result: PilotResult, seed: int, clustered: bool = True) -> Spread:
    """sd and the pairwise icc of the pilot's differences, checked against the design effect the
    pilot benchmark reports; a cluster bootstrap of both (seeded) for the plan's range.
    clustered=False (session-level inference) plans without the icc, so it may be unknown."""
    d, clusters = result.differences, result.clusters
    sizes = np.unique(clusters, return_counts=True)[1]
    measured = clustered_means(d, clusters) if d.size else None
    icc = pw.pairwise_correlation(d, clusters)
    sd = None if measured is None else float(measured.spread[0])
    pilot = _pilot_record(result, measured, sizes, icc)
    problem = _spread_problem(result, measured, sd, icc, sizes.size, clustered)
    if problem is not None:
        return Spread(result.retriever_id, SOURCE_PILOT, sd, icc, pilot, problem)
    if icc is None:
        icc = 0.0
    resampled = pw.cluster_bootstrap(
        d, clusters, RANGE_DRAWS, np.random.default_rng([seed, RANGE_STREAM])
    )
    return Spread(result.retriever_id, SOURCE_PILOT, sd, icc, pilot, resampled=resampled)


def _pilot_record(
    result: PilotResult,
    measured: ClusteredMeans | None,
    sizes: np.ndarray,
    icc: float | None,
) -> dict[str, Any]:
    """What the plan reports of the pilot: its comparison, and the design effect it measured (CR2)
    beside the one the icc predicts."""
    d, compared = result.differences, result.comparison
    model = None
    if icc is not None:
        model = 1 + icc * (float(np.sum(sizes.astype(np.float64) ** 2)) / d.size - 1)
    cr2 = None if measured is None else float(measured.design_effect[0])
    return {
        "sessions": int(d.size),
        "queries": int(sizes.size),
        "delta": compared["effect"]["delta"],
        "confidence_interval": compared["effect"]["confidence_interval"],
        "verdict": compared["verdict"],
        "failure_rate": compared["failures"]["candidate_rate"],
        "design_effect": {
            "measured": None if cr2 is None or math.isnan(cr2) else cr2,
            "model": model,
        },
        "icc_anova": pw.anova_correlation(d, result.clusters),
    }


def _spread_problem(
    result: PilotResult,
    measured: ClusteredMeans | None,
    sd: float | None,
    icc: float | None,
    queries: int,
    clustered: bool,
) -> str | None:
    """Why the pilot gives no spread to plan with (None when it does)."""
    sessions = result.differences.size
    delta = result.comparison["effect"]["delta"]
    if result.unscored is not None:
        return f"{result.unscored}, so the pilot measured no spread"
    if sessions < 2:
        return f"the pilot scored {sessions} session(s); a spread needs at least 2"
    if measured is not None and (bool(measured.no_variance[0]) or not sd):
        alike = (
            "ranks exactly like the baseline on every pilot session"
            if delta == 0.0
            else f"differs from the baseline by the same {delta:+.4f} on every pilot session"
        )
        return (
            f"the candidate {alike}: no spread to plan with (assume an sd and icc to plan anyway)"
        )
    if icc is None and clustered:
        return (
            f"no query repeats among the pilot's {sessions} sessions, so the intra-query"
            " correlation cannot be estimated; a larger pilot, or an assumed sd and icc, can"
            if queries > 1
            else f"the pilot's {sessions} sessions all have one query: nothing to tell how queries"
            " differ; widen the filter, or assume an sd and icc"
        )
    return None
