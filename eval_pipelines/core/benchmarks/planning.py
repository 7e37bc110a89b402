"""How many sessions a benchmark needs to detect a given NDCG@10 delta, before running it.

Three inputs, each from where it can be known (the maths is in stats/power.py):
- S = sum_q p_q^2, the query concentration of the population a benchmark samples: every session
  the request's filter matches, counted per query in DuckDB with the sampler's own filter SQL, the
  query normalized as inference clusters it (scoring.query_keys, the request's query_key).
- sd and rho, the spread and intra-query correlation of the per-session primary differences
  (intention to treat: a failed replay scores 0 NDCG@10), from a pilot: a few hundred sessions
  sampled with the request's filter, strategy and seed, replayed in this process through the
  baseline and each candidate and scored as a benchmark scores them. Nothing is stored: no
  execution, no benchmark folder, no partition. Or sd and rho as the user assumes them.
  rho is the pairwise estimate (stats/power.py), which weighs queries by their pairs of sessions
  as the design effect does. On the small demo world the one-way ANOVA estimate, which weighs
  queries alike, put demo_worse's rho at 0.21 against 0.07 and predicted a design effect at
  1,000 sessions of 7.0 where benchmarks measure 3.1 (its tail queries vary more than its head
  ones); the plan reports it only as pilot.icc_anova. A cluster bootstrap of the pilot's
  queries gives each number of the plan an 80% range: a 200-session pilot pins rho down only
  roughly.
- alpha, power and the Holm family (the request's candidates).

The pilot is also compared as a benchmark would (benchmark_results), for its delta and interval.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.benchmarks.comparison import (
    COMPLETED,
    LOGGED_NDCG_COLUMN,
    PRIMARY_NDCG,
    QUERY_KEY_COLUMN,
    PipelineInfo,
    benchmark_results,
)
from eval_pipelines.core.benchmarks.inference import DEFAULT_ALPHA, UNIT_SESSION
from eval_pipelines.core.benchmarks.replay import replay_rows
from eval_pipelines.core.benchmarks.request import (
    BenchmarkRequest,
    RequestValidationError,
    parse_request,
    request_schema,
)
from eval_pipelines.core.benchmarks.sampling import (
    query_counts,
    sample_sessions,
)
from eval_pipelines.core.benchmarks.scoring import query_keys, score_benchmark
from eval_pipelines.core.errors import InvalidInputError, InvalidRequestError
from eval_pipelines.core.paths import DataPaths, shown
from eval_pipelines.core.retrieval.execution_store import executions_table
from eval_pipelines.core.retrieval.registry import load_retriever_registry, open_retrievers
from eval_pipelines.core.stats import power as pw
from eval_pipelines.core.stats.clustered import DEFAULT_POWER, clustered_means

DEFAULT_PILOT_SESSIONS = 200
DEFAULT_DELTAS: tuple[float, ...] = (0.01, 0.02, 0.05)
PLAN_SIZES: tuple[int, ...] = (100, 500, 1000, 2000, 5000, 10_000)
DESIGN_EFFECT_SIZE = 1000
# A plan needs no name, and with assumed sd and icc no candidate, but the request schema does.
PLACEHOLDER_NAME = "(plan)"
PLACEHOLDER_CANDIDATE = "(assumed effect)"
PILOT_ID = "pilot"
_COUNT_LIMITS = request_schema()["properties"]["session_count"]
MIN_SESSION_COUNT: int = _COUNT_LIMITS["minimum"]
MAX_SESSION_COUNT: int = _COUNT_LIMITS["maximum"]
SOURCE_PILOT, SOURCE_ASSUMED = "pilot", "assumed"
# The plan's range: the 10th and 90th percentiles of sessions needed over this many resamples of
# the pilot's queries (their own random stream of the request's seed).
RANGE_DRAWS = 1000
RANGE_PERCENTILES = (10, 90)
RANGE_STREAM = 7


class PlanSettingsError(InvalidRequestError):
    title = "invalid plan settings"


@dataclass(frozen=True)
class PlanSettings:
    """What the plan is for; every problem is listed at once (field: problem)."""

    alpha: float = DEFAULT_ALPHA
    power: float = DEFAULT_POWER
    deltas: tuple[float, ...] | None = None  # None: DEFAULT_DELTAS and each pilot's own |delta|
    pilot_sessions: int | None = None  # None: DEFAULT_PILOT_SESSIONS when a pilot runs
    sd: float | None = None
    icc: float | None = None

    def __post_init__(self) -> None:
        problems = []
        for name in ("alpha", "power"):
            value = getattr(self, name)
            if not _number(value) or not 0 < value < 1:
                problems.append(f"{name}: {shown(value)} must lie strictly between 0 and 1")
        for index, delta in enumerate(self.deltas or ()):
            if not _number(delta) or not 0 < delta <= 1:
                problems.append(
                    f"deltas[{index}]: {shown(delta)} must be a number > 0 and <= 1"
                    " (an NDCG@10 difference)"
                )
        if self.deltas is not None and not self.deltas:
            problems.append("deltas: give at least one target delta, or none for the defaults")
        if (self.sd is None) != (self.icc is None):
            given, missing = ("sd", "icc") if self.icc is None else ("icc", "sd")
            problems.append(
                f"{given}: given without {missing} (assume both, or neither to run a pilot)"
            )
        if self.sd is not None and (not _number(self.sd) or not self.sd > 0):
            problems.append(f"sd: {shown(self.sd)} must be a finite number > 0")
        if self.icc is not None and (not _number(self.icc) or not 0 <= self.icc <= 1):
            problems.append(f"icc: {shown(self.icc)} must lie between 0 and 1")
        pilot = self.pilot_sessions
        if pilot is not None:
            if self.assumed:
                problems.append("pilot_sessions: no pilot is replayed when sd and icc are given")
            elif type(pilot) is not int or not MIN_SESSION_COUNT <= pilot <= MAX_SESSION_COUNT:
                problems.append(
                    f"pilot_sessions: expected an integer from {MIN_SESSION_COUNT} to"
                    f" {MAX_SESSION_COUNT:,}, got {shown(pilot)}"
                )
        if problems:
            raise PlanSettingsError(problems)

    @property
    def assumed(self) -> bool:
        return self.sd is not None or self.icc is not None


def _number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def parse_plan_request(data: Any, paths: DataPaths, settings: PlanSettings) -> BenchmarkRequest:
    """The create-benchmark request validated as `benchmark create` validates it, with a
    placeholder name when it has none and, when sd and icc are assumed, a placeholder candidate
    when it has none (its real candidates then only set the Holm family)."""
    if not isinstance(data, dict):
        return parse_request(data, paths)
    data = {"benchmark_name": PLACEHOLDER_NAME, **data}
    if "candidate_retriever_ids" in data:
        return parse_request(data, paths)
    if not settings.assumed:
        raise RequestValidationError(
            [
                "candidate_retriever_ids: missing; the pilot replays a candidate against the"
                " baseline (without one, assume sd and icc)"
            ]
        )
    data["candidate_retriever_ids"] = [PLACEHOLDER_CANDIDATE]
    request = parse_request(data, paths, check_references=False)
    problem = load_retriever_registry(paths).problem_for(request.baseline_retriever_id)
    if problem is not None:
        raise RequestValidationError([f"baseline_retriever_id: {problem}"])
    return request


def candidates(request: BenchmarkRequest) -> tuple[str, ...]:
    return tuple(c for c in request.candidate_retriever_ids if c != PLACEHOLDER_CANDIDATE)


@dataclass(frozen=True)
class Population:
    """Sessions per query among every session the filter matches."""

    counts: np.ndarray

    @property
    def sessions(self) -> int:
        return int(self.counts.sum())

    @property
    def concentration(self) -> float:
        return pw.concentration(self.counts)


def population(paths: DataPaths, request: BenchmarkRequest) -> Population:
    """Counted in SQL per raw query text (and input, when filters are part of the key), then merged
    per normalized key with query_keys itself, so the clusters are the benchmark's."""
    columns = ("query_text",) if request.query_key == "text" else ("query_text", "query_input")
    counted = query_counts(paths, request.sampling_filter, columns)
    if counted.num_rows == 0:
        return Population(np.zeros(0, dtype=np.int64))
    keyed = pa.table(
        {"key": query_keys(counted, request.query_key), "sessions": counted.column("sessions")}
    )
    merged = keyed.group_by("key").aggregate([("sessions", "sum")])
    return Population(np.sort(merged.column("sessions_sum").to_numpy())[::-1])


def replay_in_memory(
    paths: DataPaths, sessions: pa.Table, pipeline_ids: Sequence[str], depth: int
) -> tuple[pa.Table, list[PipelineInfo]]:
    """Replay rows (REPLAYS_SCHEMA) of every session through every pipeline, and the pipelines as
    a comparison names them; no execution is stored."""
    logged_ids = sessions.column("execution_id").to_pylist()
    query_inputs = [json.loads(q) for q in sessions.column("query_input").to_pylist()]
    parts, infos = [], []
    with open_retrievers(paths, list(pipeline_ids)) as retrievers:
        for pipeline_id in pipeline_ids:
            retriever = retrievers[pipeline_id]
            executions = retriever.search_many(query_inputs, limit=depth)
            parts.append(
                replay_rows(PILOT_ID, logged_ids, executions, executions_table(executions))
            )
            infos.append(
                PipelineInfo(pipeline_id, retriever.config.name, retriever.config.pipeline_hash)
            )
    return pa.concat_tables(parts), infos


def primary_differences(
    scores: pa.Table, baseline: str, candidate: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per scorable session, candidate minus baseline NDCG@10 with a failed replay scored 0 (the
    primary estimate's differences), and each session's query code."""

    def rows(pipeline_id: str) -> pa.Table:
        return scores.filter(pc.equal(scores.column("pipeline_id"), pipeline_id))

    base, cand = rows(baseline), rows(candidate)
    if not base.column("execution_id").equals(cand.column("execution_id")):
        raise ValueError("scores: the pipelines' rows are not in the same session order")

    def outcome(table: pa.Table) -> np.ndarray:
        ndcg = table.column(PRIMARY_NDCG).to_numpy(zero_copy_only=False).astype(np.float64)
        completed = pc.equal(table.column("status"), COMPLETED).to_numpy(zero_copy_only=False)
        return np.where(completed, np.nan_to_num(ndcg), 0.0)

    logged = base.column(LOGGED_NDCG_COLUMN).to_numpy(zero_copy_only=False).astype(np.float64)
    scorable = np.isfinite(logged)
    keys = base.column(QUERY_KEY_COLUMN).to_numpy(zero_copy_only=False)
    query = np.unique(keys, return_inverse=True)[1]
    return (outcome(cand) - outcome(base))[scorable], query[scorable]


@dataclass
class PilotResult:
    """What the pilot measured for one candidate."""

    candidate_retriever_id: str
    differences: np.ndarray
    clusters: np.ndarray
    comparison: dict[str, Any]
    unscored: str | None = None  # which side scored no pilot session, and why


@dataclass
class Pilot:
    sampled: int
    matched: int
    queries: int
    failed_sessions: dict[str, int]
    results: list[PilotResult]
    warnings: list[str] = field(default_factory=list)


def run_pilot(
    paths: DataPaths,
    request: BenchmarkRequest,
    sessions: int,
    progress: Callable[[str], None] | None = None,
) -> Pilot:
    """Sample, replay in memory and score `sessions` sessions as the benchmark would."""
    sample = sample_sessions(paths, request.sampling_filter, sessions, request.seed)
    if sample.sessions.num_rows == 0:
        raise InvalidInputError(
            "session_filter: no logged session matches the filter, so there is nothing to plan"
            " a benchmark of"
        )
    if progress:
        progress(
            f"pilot: replaying {sample.sessions.num_rows} sessions through"
            f" {', '.join(request.pipeline_ids)} (nothing is stored)"
        )
    replays, infos = replay_in_memory(
        paths, sample.sessions, request.pipeline_ids, request.replay_depth
    )
    scores = score_benchmark(request, sample.sessions, sample.interactions, replays)
    results, comparison = benchmark_results(
        scores, infos, epsilon=request.epsilon, settings=request.inference_settings
    )
    measured = []
    for candidate, compared, outcome in zip(
        request.candidate_retriever_ids, comparison["comparisons"], results[1:], strict=True
    ):
        differences, clusters = primary_differences(
            scores, request.baseline_retriever_id, candidate
        )
        unscored = next(
            (
                f"{who} {side['retriever_id']} scored no pilot session"
                f" ({side['failed_sessions']} of {sample.sessions.num_rows} failed"
                + "".join(f", {kind} {count}" for kind, count in side["error_summary"].items())
                + ")"
                for who, side in (("the baseline", results[0]), ("the candidate", outcome))
                if side["scored_sessions"] == 0
            ),
            None,
        )
        measured.append(PilotResult(candidate, differences, clusters, compared, unscored))
    failed = {result["retriever_id"]: result["failed_sessions"] for result in results}
    sampled = sample.sessions.num_rows
    warnings = list(sample.warnings)
    warnings += [
        f"pilot: {pipeline_id} failed on {count} of {sampled} sessions; each failure scores 0"
        " NDCG@10 in the spread and delta the plan uses"
        for pipeline_id, count in failed.items()
        if count
    ]
    queries = pc.count_distinct(scores.column(QUERY_KEY_COLUMN)).as_py()
    return Pilot(sampled, sample.matched, queries, failed, measured, warnings)


@dataclass(frozen=True)
class Spread:
    """The spread model of one candidate's per-session differences (or the assumed one), and for
    a pilot, resampled values of (sd, icc) that show how far the pilot pins them down."""

    candidate_retriever_id: str | None
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
    compared = result.comparison
    sizes = np.unique(clusters, return_counts=True)[1]
    measured = clustered_means(d, clusters) if d.size else None
    icc = pw.pairwise_correlation(d, clusters)
    model = None
    if icc is not None:
        model = 1 + icc * (float(np.sum(sizes.astype(np.float64) ** 2)) / d.size - 1)
    cr2 = None if measured is None else float(measured.design_effect[0])
    sd = None if measured is None else float(measured.spread[0])
    pilot = {
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
        "icc_anova": pw.anova_correlation(d, clusters),
    }
    problem = None
    if result.unscored is not None:
        problem = f"{result.unscored}, so the pilot measured no spread"
    elif d.size < 2:
        problem = f"the pilot scored {d.size} session(s); a spread needs at least 2"
    elif measured is not None and (bool(measured.no_variance[0]) or not sd):
        alike = (
            "ranks exactly like the baseline on every pilot session"
            if compared["effect"]["delta"] == 0.0
            else f"differs from the baseline by the same {compared['effect']['delta']:+.4f} on"
            " every pilot session"
        )
        problem = (
            f"the candidate {alike}: no spread to plan with (assume an sd and icc to plan anyway)"
        )
    elif icc is None and clustered:
        problem = (
            f"no query repeats among the pilot's {d.size} sessions, so the intra-query"
            " correlation cannot be estimated; a larger pilot, or an assumed sd and icc, can"
            if sizes.size > 1
            else f"the pilot's {d.size} sessions all have one query: nothing to tell how queries"
            " differ; widen the filter, or assume an sd and icc"
        )
    elif icc is None:
        icc = 0.0
    if problem is not None:
        return Spread(result.candidate_retriever_id, SOURCE_PILOT, sd, icc, pilot, problem)
    resampled = pw.cluster_bootstrap(
        d, clusters, RANGE_DRAWS, np.random.default_rng([seed, RANGE_STREAM])
    )
    return Spread(result.candidate_retriever_id, SOURCE_PILOT, sd, icc, pilot, resampled=resampled)


def _sizes(population: Population, request: BenchmarkRequest) -> list[int]:
    wanted = set(PLAN_SIZES)
    if "session_count" in request.raw:
        wanted.add(request.session_count)
    return sorted({min(size, population.sessions) for size in wanted if size >= 1})


def minimum_sessions(population: Population, request: BenchmarkRequest) -> int | None:
    """The smallest benchmark that can be tested: session_count's minimum, and enough sessions to
    expect min_clusters queries (sessions, with session-level inference). None: no benchmark of
    this population reaches min_clusters."""
    if request.inference_unit == UNIT_SESSION:
        needed: int | None = request.min_clusters
        if request.min_clusters > population.sessions:
            needed = None
    else:
        needed = pw.sessions_for_clusters(
            request.min_clusters, population.counts, population.sessions
        )
    return None if needed is None else max(MIN_SESSION_COUNT, needed)


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
        "candidate_retriever_id": spread.candidate_retriever_id,
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
    sd, s = spread.sd, population.concentration
    clustered = request.inference_unit != UNIT_SESSION
    icc = spread.icc if clustered else 0.0
    resampled: list[tuple[float, float]] = []
    if spread.resampled is not None:
        sds, iccs = spread.resampled
        usable = np.isfinite(sds) & (sds > 0) & (np.isfinite(iccs) | (not clustered))
        resampled = [
            (float(a), float(b) if clustered else 0.0)
            for a, b in zip(sds[usable], iccs[usable], strict=True)
        ]
    floor = pw.mde_floor(sd, icc, s, critical)
    smallest = minimum_sessions(population, request)
    plan.update(
        icc_used=icc,
        design_effect_at_1000=pw.design_effect(DESIGN_EFFECT_SIZE, icc, s),
        mde_floor=floor,
    )
    for delta, origin in targets:
        sessions = _sessions_for(delta, sd, icc, s, critical, smallest)
        row: dict[str, Any] = {"delta": delta, "origin": origin, "sessions_needed": sessions}
        row["sessions_range"] = (
            _range([_sessions_for(delta, a, b, s, critical, smallest) for a, b in resampled])
            if resampled
            else None
        )
        if sessions is None:
            row.update(
                expected_queries=None,
                feasible=False,
                limit=f"at or below the floor {floor:.4f}: the query mix bounds what any"
                " benchmark of this traffic detects",
            )
        else:
            row["expected_queries"] = pw.expected_clusters(sessions, population.counts)
            if smallest is None:
                limit = (
                    f"the filter matches {population.counts.size:,} queries: too few for"
                    f" min_clusters ({request.min_clusters})"
                )
            elif sessions > population.sessions:
                limit = f"the filter matches only {population.sessions:,} sessions"
            elif sessions > MAX_SESSION_COUNT:
                limit = f"more than one benchmark samples (session_count <= {MAX_SESSION_COUNT:,})"
            else:
                limit = None
            row.update(feasible=limit is None, limit=limit)
        plan["targets"].append(row)
    for size in _sizes(population, request):
        row = {
            "sessions": size,
            "expected_queries": pw.expected_clusters(size, population.counts),
            "design_effect": pw.design_effect(size, icc, s),
            "mde": pw.minimum_detectable_effect(size, sd, icc, s, critical),
            "testable": smallest is not None and size >= smallest,
        }
        row["mde_range"] = (
            _range([pw.minimum_detectable_effect(size, a, b, s, critical) for a, b in resampled])
            if resampled
            else None
        )
        plan["mde"].append(row)
    return plan


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
    warnings: list[str] = []
    if counted.sessions == 0:
        raise InvalidInputError(
            "session_filter: no logged session matches the filter, so there is nothing to plan"
            " a benchmark of"
        )
    pilot = None
    if settings.assumed:
        assert settings.sd is not None and settings.icc is not None
        spreads = [Spread(None, SOURCE_ASSUMED, float(settings.sd), float(settings.icc))]
    else:
        size = settings.pilot_sessions or DEFAULT_PILOT_SESSIONS
        pilot = run_pilot(paths, request, size, progress)
        clustered = request.inference_unit != UNIT_SESSION
        spreads = [pilot_spread(result, request.seed, clustered) for result in pilot.results]
        warnings += pilot.warnings
    smallest = minimum_sessions(counted, request)
    if smallest is None:
        warnings.append(
            f"the filter matches {len(counted.counts):,} queries in {counted.sessions:,} sessions:"
            f" no benchmark of it can expect min_clusters ({request.min_clusters}) clusters, so"
            " every one would be not testable"
        )
    plans = []
    for spread in spreads:
        targets: list[tuple[float, str]] = (
            [(d, "given") for d in settings.deltas]
            if settings.deltas is not None
            else [(d, "default") for d in DEFAULT_DELTAS]
        )
        if settings.deltas is None and spread.pilot is not None and spread.pilot["delta"]:
            targets.append((abs(spread.pilot["delta"]), "pilot"))
        plans.append(candidate_plan(spread, counted, request, critical, targets))
    return {
        "baseline_retriever_id": request.baseline_retriever_id,
        "candidate_retriever_ids": list(named),
        "source": SOURCE_ASSUMED if settings.assumed else SOURCE_PILOT,
        "settings": {
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
        },
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
