"""What a benchmark plan is asked for: its settings, and its request checked as `create` checks it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from eval_pipelines.core.benchmarks.inference import DEFAULT_ALPHA
from eval_pipelines.core.benchmarks.request import (
    MAX_SESSION_COUNT,
    MIN_SESSION_COUNT,
    BenchmarkRequest,
    RequestValidationError,
    parse_request,
)
from eval_pipelines.core.errors import InvalidRequestError
from eval_pipelines.core.paths import DataPaths, shown
from eval_pipelines.core.retrieval.registry import load_retriever_registry
from eval_pipelines.core.stats.clustered import DEFAULT_POWER

DEFAULT_PILOT_SESSIONS = 200
DEFAULT_DELTAS: tuple[float, ...] = (0.01, 0.02, 0.05)
# A plan needs no name, and with assumed sd and icc no candidate, but the request schema does.
PLACEHOLDER_NAME = "(plan)"
PLACEHOLDER_CANDIDATE = "(assumed effect)"


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
        problems = [
            *self._probability_problems(),
            *self._delta_problems(),
            *self._spread_problems(),
            *self._pilot_problems(),
        ]
        if problems:
            raise PlanSettingsError(problems)

    @property
    def assumed(self) -> bool:
        return self.sd is not None or self.icc is not None

    def _probability_problems(self) -> list[str]:
        return [
            f"{name}: {shown(value)} must lie strictly between 0 and 1"
            for name, value in (("alpha", self.alpha), ("power", self.power))
            if not _number(value) or not 0 < value < 1
        ]

    def _delta_problems(self) -> list[str]:
        problems = [
            f"deltas[{index}]: {shown(delta)} must be a number > 0 and <= 1 (an NDCG@10 difference)"
            for index, delta in enumerate(self.deltas or ())
            if not _number(delta) or not 0 < delta <= 1
        ]
        if self.deltas is not None and not self.deltas:
            problems.append("deltas: give at least one target delta, or none for the defaults")
        return problems

    def _spread_problems(self) -> list[str]:
        problems = []
        if (self.sd is None) != (self.icc is None):
            given, missing = ("sd", "icc") if self.icc is None else ("icc", "sd")
            problems.append(
                f"{given}: given without {missing} (assume both, or neither to run a pilot)"
            )
        if self.sd is not None and (not _number(self.sd) or not self.sd > 0):
            problems.append(f"sd: {shown(self.sd)} must be a finite number > 0")
        if self.icc is not None and (not _number(self.icc) or not 0 <= self.icc <= 1):
            problems.append(f"icc: {shown(self.icc)} must lie between 0 and 1")
        return problems

    def _pilot_problems(self) -> list[str]:
        pilot = self.pilot_sessions
        if pilot is None:
            return []
        if self.assumed:
            return ["pilot_sessions: no pilot is replayed when sd and icc are given"]
        if type(pilot) is not int or not MIN_SESSION_COUNT <= pilot <= MAX_SESSION_COUNT:
            return [
                f"pilot_sessions: expected an integer from {MIN_SESSION_COUNT} to"
                f" {MAX_SESSION_COUNT:,}, got {shown(pilot)}"
            ]
        return []


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
    request = parse_request(data)
    problem = load_retriever_registry(paths).problem_for(request.baseline_retriever_id)
    if problem is not None:
        raise RequestValidationError([f"baseline_retriever_id: {problem}"])
    return request


def candidates(request: BenchmarkRequest) -> tuple[str, ...]:
    """The request's real candidates (without the placeholder an assumed-spread plan adds)."""
    return tuple(c for c in request.candidate_retriever_ids if c != PLACEHOLDER_CANDIDATE)
