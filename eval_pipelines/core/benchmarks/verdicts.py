"""From each candidate's tests to its verdict, and from the verdicts to the recommendation sentence.

A verdict is one of better, worse, no_detectable_difference, not_testable, with the reasons in words.
The rules, in order:
1. not_testable when the baseline or the candidate scored no session (nothing to compare), when
   there are fewer clusters or sessions than the minimum, or when non-zero differences have no
   variance: no p-value from such a sample can carry a promotion.
2. worse when the candidate fails more often than the baseline by more than the tolerance, whatever
   its NDCG: a retriever that drops users' queries is not shippable.
3. no_detectable_difference when every difference is 0.
4. better / worse when the primary test stays significant after Holm correction across the
   candidates tested, by the sign of the delta; otherwise no_detectable_difference, always stating
   the minimum detectable effect so that "no difference" is never read as "equal". A loss is worse
   only if it survives scoring the candidate's never-shown documents as the query's best: no
   candidate is called worse for documents nobody saw (comparison.py makes a candidate whose top 10
   is mostly unseen not_testable before any test).
The recommendation promotes the better candidate with the largest primary delta, or keeps the
baseline and says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eval_pipelines.core.benchmarks.inference import (
    UNIT_QUERY,
    CandidateTest,
    Estimate,
    InferenceSettings,
    mde,
)
from eval_pipelines.core.stats.multiple_testing import holm_adjust

BETTER, WORSE, NO_DIFFERENCE, NOT_TESTABLE = (
    "better",
    "worse",
    "no_detectable_difference",
    "not_testable",
)
VERDICTS = (BETTER, WORSE, NO_DIFFERENCE, NOT_TESTABLE)


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reasons: list[str]
    p_adjusted: float | None
    minimum_detectable_effect: float | None


def _percent(rate: float) -> str:
    return f"{100 * rate:.1f}%"


def _signed(value: float, digits: int = 4) -> str:
    return f"{round(float(value), digits) + 0.0:+.{digits}f}"


def p_text(p_value: float | None) -> str:
    """A bootstrap p-value is no finer than 1 / (draws + 1): below 0.001 it says so, no more."""
    p = float(p_value if p_value is not None else 1.0)
    return "< 0.001" if p < 0.001 else f"= {p:.4f}"


def _units(found: Estimate, settings: InferenceSettings) -> str:
    if settings.unit == UNIT_QUERY:
        return f"{found.clusters} queries, n = {found.sessions} sessions"
    return f"n = {found.sessions} sessions"


def decide(
    tests: Sequence[CandidateTest], not_testable: Sequence[list[str]], settings: InferenceSettings
) -> list[Verdict]:
    """One verdict per candidate; not_testable[i] holds the reasons candidate i cannot be tested."""
    family = [
        i
        for i, test in enumerate(tests)
        if not not_testable[i] and test.primary.testable and not _fails_too_often(test, settings)
    ]
    adjusted = dict(
        zip(family, holm_adjust([tests[i].primary.p_value for i in family]), strict=True)
    )
    alpha_per_test = settings.alpha / max(len(family), 1)
    verdicts = []
    for i, test in enumerate(tests):
        primary = test.primary
        detectable = mde(primary, alpha_per_test, settings.power)
        reasons = list(not_testable[i])
        if reasons:
            verdicts.append(Verdict(NOT_TESTABLE, reasons, None, detectable))
            continue
        failure = (
            f"failure rate {_percent(test.candidate_failure_rate)} vs"
            f" {_percent(test.baseline_failure_rate)} for the baseline"
        )
        if _fails_too_often(test, settings):
            reasons = [
                f"{failure}: more than {100 * settings.max_failure_excess:g} points above it"
            ]
            verdicts.append(Verdict(WORSE, reasons, None, detectable))
            continue
        if primary.identical:
            reasons = ["identical NDCG@10 on every session"]
            verdicts.append(Verdict(NO_DIFFERENCE, reasons, None, 0.0))
            continue
        verdicts.append(_tested(test, adjusted[i], len(family), detectable, failure, settings))
    return verdicts


def _tested(
    test: CandidateTest,
    p: float,
    family_size: int,
    detectable: float | None,
    failure: str,
    settings: InferenceSettings,
) -> Verdict:
    """The verdict of a candidate whose primary test ran: rules 3 and 4 of the module docstring."""
    primary = test.primary
    reasons = [
        f"NDCG@10 {_signed(primary.delta)}, adjusted p {p_text(p)}"
        f" (Holm across {family_size} candidate(s), alpha {settings.alpha:g})"
    ]
    if test.failed_sessions:
        reasons.append(failure)
    if p < settings.alpha and _unseen_could_explain(test, family_size, settings):
        bound = test.if_unseen_best
        assert bound is not None
        reasons.append(
            "worse only if its never-shown documents are irrelevant: scored as the best document"
            f" users saw for their query, NDCG@10 {_signed(bound.delta)}, p"
            f" {p_text(bound.p_value)}; the logs hold no evidence about them"
        )
        return Verdict(NO_DIFFERENCE, reasons, p, detectable)
    if p < settings.alpha:
        return Verdict(BETTER if primary.delta > 0 else WORSE, reasons, p, detectable)
    reasons.append(
        f"an effect smaller than ±{detectable:.4f} could not be detected"
        f" (minimum detectable effect at {100 * settings.power:g}% power)"
    )
    return Verdict(NO_DIFFERENCE, reasons, p, detectable)


def _unseen_could_explain(
    test: CandidateTest, family_size: int, settings: InferenceSettings
) -> bool:
    """A loss that vanishes once the candidate's never-shown documents are given the benefit of the
    doubt (Bonferroni across the family, so the bound is no easier to pass than the test)."""
    bound = test.if_unseen_best
    if test.primary.delta >= 0 or bound is None:
        return False
    p = bound.p_value if bound.p_value is not None else 1.0
    return not (bound.delta < 0 and p * max(family_size, 1) < settings.alpha)


def _fails_too_often(test: CandidateTest, settings: InferenceSettings) -> bool:
    return test.failure_excess > settings.max_failure_excess


def recommendation(
    baseline: str,
    candidates: Sequence[str],
    tests: Sequence[CandidateTest],
    verdicts: Sequence[Verdict],
    latency_deltas: Sequence[float],
    settings: InferenceSettings,
) -> str:
    """A deterministic sentence: the candidate to promote, or why the baseline stays."""
    better = [i for i, v in enumerate(verdicts) if v.verdict == BETTER]
    if better:
        best = max(better, key=lambda i: (tests[i].primary.delta, -i))
        found = tests[best].primary
        return (
            f"Promote {candidates[best]}: NDCG@10 {_signed(found.delta)} (95% CI"
            f" [{found.ci_low:.4f}, {found.ci_high:.4f}], p {p_text(found.p_value)},"
            f" {_units(found, settings)}), latency {_signed(latency_deltas[best], 1)} ms per query."
        )
    if all(v.verdict == NOT_TESTABLE for v in verdicts):
        reasons = "; ".join(
            f"{candidates[i]}: {', '.join(v.reasons)}" for i, v in enumerate(verdicts)
        )
        return f"No verdict: no candidate could be tested against {baseline} ({reasons})."
    parts = []
    for i, v in enumerate(verdicts):
        if v.verdict == NO_DIFFERENCE:
            detail = (
                "identical on every session"
                if tests[i].primary.identical
                else f"NDCG@10 {_signed(tests[i].primary.delta)}, adjusted p"
                f" {p_text(v.p_adjusted)}, MDE {v.minimum_detectable_effect:.4f}"
            )
            parts.append(f"{candidates[i]} no detectable difference ({detail})")
        elif v.verdict == WORSE:
            parts.append(f"{candidates[i]} worse ({v.reasons[0]})")
        else:
            parts.append(f"{candidates[i]} not testable ({', '.join(v.reasons)})")
    return f"Keep the baseline {baseline}: no candidate is better: {'; '.join(parts)}."
