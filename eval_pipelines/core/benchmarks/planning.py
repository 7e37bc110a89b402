"""How many sessions a benchmark needs to detect a given NDCG@10 delta, before running it.

Three inputs, each from where it can be known (the maths is in stats/power.py):
- S = sum_q p_q^2, the query concentration of the population a benchmark samples (population.py):
  every session the request's filter matches, counted per query in DuckDB with the sampler's own
  filter SQL, the query normalized as inference clusters it (query_keys.query_keys, the request's
  query_key).
- sd and rho, the spread and intra-query correlation of the per-session primary differences
  (intention to treat: a failed replay scores 0 NDCG@10; spread.py), from a pilot (pilot.py): a
  few hundred sessions sampled with the request's filter, strategy and seed, replayed in this
  process through the baseline and each candidate and scored as a benchmark scores them. Nothing
  is stored: no execution, no benchmark folder, no partition. Or sd and rho as the user assumes
  them.
  rho is the pairwise estimate (stats/power.py), which weighs queries by their pairs of sessions
  as the design effect does. On the small demo world the one-way ANOVA estimate, which weighs
  queries alike, put demo_worse's rho at 0.21 against 0.07 and predicted a design effect at
  1,000 sessions of 7.0 where benchmarks measure 3.1 (its tail queries vary more than its head
  ones); the plan reports it only as pilot.icc_anova. A cluster bootstrap of the pilot's
  queries gives each number of the plan an 80% range: a 200-session pilot pins rho down only
  roughly.
- alpha, power and the Holm family (the request's candidates; plan_settings.py).

The pilot is also compared as a benchmark would (benchmark_results), for its delta and interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eval_pipelines.core.benchmarks.inference import UNIT_SESSION
from eval_pipelines.core.benchmarks.pilot import Pilot, run_pilot
from eval_pipelines.core.benchmarks.plan_settings import (
    DEFAULT_DELTAS,
    DEFAULT_PILOT_SESSIONS,
    MAX_SESSION_COUNT,
    PlanSettings,
    candidates,
)
from eval_pipelines.core.benchmarks.population import Population, minimum_sessions, population
from eval_pipelines.core.benchmarks.request import BenchmarkRequest
from eval_pipelines.core.benchmarks.spread import SOURCE_ASSUMED, SOURCE_PILOT, Spread, pilot_spread
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.stats import power as pw

PLAN_SIZES: tuple[int, ...] = (100, 500, 1000, 2000, 5000, 10_000)
DESIGN_EFFECT_SIZE = 1000
# The plan's 80% range over spread.RANGE_DRAWS resamples of the pilot's queries.
RANGE_PERCENTILES = (10, 90)


@dataclass(frozen=True)
class _Sizing:
    """One candidate's spread in the population it is sized for, and the pilot's resamples of it."""

    sd: float
    icc: float
    s: float
    critical: float
    smallest: int | None
    resampled: list[tuple[float, float]]


def _sizes(population: Population, request: BenchmarkRequest) -> list[int]:
    wanted = set(PLAN_SIZES)
    if "session_count" in request.model_fields_set:
        wanted.add(request.session_count)
    return sorted({min(size, population.sessions) for size in wanted if size >= 1})


def _sessions_for(
    delta: float, sd: float, icc: float, s: float, critical: float, smallest: int | None
) -> int | None:
    """The whole sessions that reach delta (at least the smallest testable benchmark), or None."""
    needed = pw.sessions_needed(delta, sd, icc, s, critical)
    if needed is None:
        return None
    return max(math.ceil(needed - 1e-9), smallest or 0)


def _range(values: Sequence[float | None]) -> list[float | None]:
    """The plan's percentile range of resampled values; None (unreachable) counts as infinite."""
    numbers = np.array([math.inf if v is None else v for v in values], dtype=np.float64)
    ends = np.percentile(numbers, RANGE_PERCENTILES, method="inverted_cdf")
    return [None if math.isinf(e) else float(e) for e in ends]


def candidate_plan(
    spread: Spread,
    population: Population,
    request: BenchmarkRequest,
    critical: float,
    targets: Sequence[tuple[float, str]],
) -> dict[str, Any]:
    """Sessions needed per target delta and the MDE at common sizes, for one spread model; with a
    pilot, each with the range it takes over resamples of the pilot's queries."""
    plan: dict[str, Any] = {
        "candidate_retriever_id": spread.retriever_id,
        "source": spread.source,
        "sd": spread.sd,
        "icc": spread.icc,
        "icc_used": None,
        "pilot": spread.pilot,
        "problem": spread.problem,
        "design_effect_at_1000": None,
        "mde_floor": None,
        "targets": [],
        "mde": [],
    }
    if spread.problem is not None or spread.sd is None or spread.icc is None:
        return plan
    clustered = request.inference_unit != UNIT_SESSION
    sizing = _Sizing(
        sd=spread.sd,
        icc=spread.icc if clustered else 0.0,
        s=population.concentration,
        critical=critical,
        smallest=minimum_sessions(population, request),
        resampled=_resampled(spread, clustered),
    )
    plan.update(
        icc_used=sizing.icc,
        design_effect_at_1000=pw.design_effect(DESIGN_EFFECT_SIZE, sizing.icc, sizing.s),
        mde_floor=pw.mde_floor(sizing.sd, sizing.icc, sizing.s, critical),
        targets=[
            _target_row(delta, origin, sizing, population, request) for delta, origin in targets
        ],
        mde=[_mde_row(size, sizing, population) for size in _sizes(population, request)],
    )
    return plan


def _resampled(spread: Spread, clustered: bool) -> list[tuple[float, float]]:
    """The pilot's resampled (sd, icc) pairs a plan can use (icc 0 without clustering)."""
    if spread.resampled is None:
        return []
    sds, iccs = spread.resampled
    usable = np.isfinite(sds) & (sds > 0) & (np.isfinite(iccs) | (not clustered))
    return [
        (float(a), float(b) if clustered else 0.0)
        for a, b in zip(sds[usable], iccs[usable], strict=True)
    ]


def _target_row(
    delta: float,
    origin: str,
    sizing: _Sizing,
    population: Population,
    request: BenchmarkRequest,
) -> dict[str, Any]:
    """Sessions needed for one target delta, and whether a benchmark of that size can be run."""
    s, critical, smallest = sizing.s, sizing.critical, sizing.smallest
    sessions = _sessions_for(delta, sizing.sd, sizing.icc, s, critical, smallest)
    row: dict[str, Any] = {"delta": delta, "origin": origin, "sessions_needed": sessions}
    row["sessions_range"] = (
        _range([_sessions_for(delta, a, b, s, critical, smallest) for a, b in sizing.resampled])
        if sizing.resampled
        else None
    )
    if sessions is None:
        floor = pw.mde_floor(sizing.sd, sizing.icc, s, critical)
        row.update(
            expected_queries=None,
            feasible=False,
            limit=f"at or below the floor {floor:.4f}: the query mix bounds what any"
            " benchmark of this traffic detects",
        )
        return row
    row["expected_queries"] = pw.expected_clusters(sessions, population.counts)
    limit = _size_limit(sessions, smallest, population, request)
    row.update(feasible=limit is None, limit=limit)
    return row


def _size_limit(
    sessions: int, smallest: int | None, population: Population, request: BenchmarkRequest
) -> str | None:
    """What stops a benchmark of this many sessions from being run and tested (None: nothing)."""
    if smallest is None:
        return (
            f"the filter matches {population.counts.size:,} queries: too few for"
            f" min_clusters ({request.min_clusters})"
        )
    if sessions > population.sessions:
        return f"the filter matches only {population.sessions:,} sessions"
    if sessions > MAX_SESSION_COUNT:
        return f"more than one benchmark samples (session_count <= {MAX_SESSION_COUNT:,})"
    return None


def _mde_row(size: int, sizing: _Sizing, population: Population) -> dict[str, Any]:
    """The minimum detectable effect of a benchmark of `size` sessions."""
    s, critical = sizing.s, sizing.critical
    return {
        "sessions": size,
        "expected_queries": pw.expected_clusters(size, population.counts),
        "design_effect": pw.design_effect(size, sizing.icc, s),
        "mde": pw.minimum_detectable_effect(size, sizing.sd, sizing.icc, s, critical),
        "testable": sizing.smallest is not None and size >= sizing.smallest,
        "mde_range": (
            _range(
                [pw.minimum_detectable_effect(size, a, b, s, critical) for a, b in sizing.resampled]
            )
            if sizing.resampled
            else None
        ),
    }


def assumptions(
    request: BenchmarkRequest, settings: PlanSettings, family: int, pilot_sessions: int | None
) -> str:
    """The plan's assumptions, in two or three sentences."""
    source = (
        f"from a pilot replay of {pilot_sessions:,} sessions"
        if pilot_sessions is not None
        else "as assumed (sd and icc given)"
    )
    text = (
        "Sessions are drawn at random from traffic with the query mix of the sessions the filter"
        " matches (S = sum of squared query shares); per-session NDCG@10 differences (a failed"
        f" replay scores 0) have spread sd and intra-query correlation icc, {source}."
        f" Power is for a two-sided test at alpha {settings.alpha:g}"
        + (f" / {family} (the first Holm step over {family} candidates)" if family > 1 else "")
        + " with normal critical values;"
        " the benchmark's wild cluster bootstrap-t has somewhat larger ones with few queries, and"
        " a benchmark that samples a large share of the matching sessions has more power than"
        " planned."
    )
    if request.inference_unit == UNIT_SESSION:
        text += (
            " The request tests sessions as independent (inference_unit session), so the plan"
            " uses no design effect (icc_used 0), as that test does."
        )
    if request.sample_strategy == "recent":
        text += (
            " With sample_strategy recent a benchmark takes the newest sessions, not a random"
            " draw: the plan assumes their query mix is the population's."
        )
    return text


def plan_benchmark(
    paths: DataPaths,
    request: BenchmarkRequest,
    settings: PlanSettings,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The plan as a JSON-ready dict (README "Planning a benchmark" describes its fields)."""
    named = candidates(request)
    family = max(len(named), 1)
    critical = pw.critical_sum(settings.alpha, settings.power, family)
    counted = population(paths, request)
    if counted.sessions == 0:
        raise InvalidInputError(
            "session_filter: no logged session matches the filter, so there is nothing to plan"
            " a benchmark of"
        )
    spreads, pilot, warnings = _spreads(paths, request, settings, progress)
    smallest = minimum_sessions(counted, request)
    if smallest is None:
        warnings.append(
            f"the filter matches {len(counted.counts):,} queries in {counted.sessions:,} sessions:"
            f" no benchmark of it can expect min_clusters ({request.min_clusters}) clusters, so"
            " every one would be not testable"
        )
    plans = [
        candidate_plan(spread, counted, request, critical, _targets(settings, spread))
        for spread in spreads
    ]
    return {
        "baseline_retriever_id": request.baseline_retriever_id,
        "candidate_retriever_ids": list(named),
        "source": SOURCE_ASSUMED if settings.assumed else SOURCE_PILOT,
        "settings": _settings_record(request, settings, family, pilot),
        "population": {
            "sessions": counted.sessions,
            "queries": int(counted.counts.size),
            "concentration": counted.concentration,
            "largest_query_share": float(counted.counts.max() / counted.sessions),
            "minimum_sessions": smallest,
            "session_filter": request.session_filter_record(),
        },
        "pilot": None
        if pilot is None
        else {
            "sampled": pilot.sampled,
            "queries": pilot.queries,
            "failed_sessions": pilot.failed_sessions,
        },
        "plans": plans,
        "assumptions": assumptions(
            request, settings, family, None if pilot is None else pilot.sampled
        ),
        "warnings": warnings,
    }


def _spreads(
    paths: DataPaths,
    request: BenchmarkRequest,
    settings: PlanSettings,
    progress: Callable[[str], None] | None,
) -> tuple[list[Spread], Pilot | None, list[str]]:
    """The spread each candidate is planned with, the pilot that measured them, and its warnings."""
    if settings.assumed:
        assert settings.sd is not None and settings.icc is not None
        return [Spread(None, SOURCE_ASSUMED, float(settings.sd), float(settings.icc))], None, []
    size = settings.pilot_sessions or DEFAULT_PILOT_SESSIONS
    pilot = run_pilot(paths, request, size, progress)
    clustered = request.inference_unit != UNIT_SESSION
    spreads = [pilot_spread(result, request.seed, clustered) for result in pilot.results]
    return spreads, pilot, list(pilot.warnings)


def _targets(settings: PlanSettings, spread: Spread) -> list[tuple[float, str]]:
    """The deltas to size for: the given ones, or the defaults and the pilot's own |delta|."""
    if settings.deltas is not None:
        return [(d, "given") for d in settings.deltas]
    targets = [(d, "default") for d in DEFAULT_DELTAS]
    if spread.pilot is not None and spread.pilot["delta"]:
        targets.append((abs(spread.pilot["delta"]), "pilot"))
    return targets


def _settings_record(
    request: BenchmarkRequest, settings: PlanSettings, family: int, pilot: Pilot | None
) -> dict[str, Any]:
    return {
        "alpha": settings.alpha,
        "power": settings.power,
        "family_size": family,
        "critical_value": pw.critical_value(settings.alpha, family),
        "power_quantile": pw.power_quantile(settings.power),
        "inference_unit": request.inference_unit,
        "query_key": request.query_key,
        "min_clusters": request.min_clusters,
        "sample_strategy": request.sample_strategy,
        "seed": request.seed,
        "pilot_sessions": None
        if pilot is None
        else settings.pilot_sessions or DEFAULT_PILOT_SESSIONS,
    }
