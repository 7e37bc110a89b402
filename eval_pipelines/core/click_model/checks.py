"""What the click_model asset checks, as plain findings: the fit converged, the curve does not clearly
rise with depth, the randomized estimate agrees with the fit, the correction is available."""

from __future__ import annotations

from eval_pipelines.core.click_model.model import ClickModel
from eval_pipelines.core.findings import Finding


def converged(model: ClickModel) -> Finding:
    fit = model.fit
    passed = bool(fit["converged"]) and fit["bootstrap_converged"] == fit["bootstrap_draws"]
    return Finding(
        passed,
        f"EM {'converged' if fit['converged'] else 'did not converge'} in {fit['iterations']} "
        f"iterations; {fit['bootstrap_converged']} of {fit['bootstrap_draws']} bootstrap draws converged",
        {"iterations": fit["iterations"], "bootstrap_converged": fit["bootstrap_converged"]},
    )


def non_increasing(model: ClickModel) -> Finding:
    violations = model.fit["monotone_violations"]
    if not violations:
        return Finding(True, "no deeper position is clearly more examined than a shallower one", {})
    worst = max(violations, key=lambda v: v["increase"])
    return Finding(
        False,
        f"{len(violations)} pairs of positions rise with depth beyond 1.96 combined standard errors "
        f"(worst: position {worst['deeper_position']} above position {worst['position']} by "
        f"{worst['increase']:.3f})",
        {"violations": violations[:20]},
    )


def randomized_agrees(model: ClickModel) -> Finding:
    agreement = model.fit["agreement"]
    compared = agreement["positions_compared"]
    disagreeing = agreement["disagreeing_positions"]
    if not compared:
        return Finding(
            True, "no position has both a fitted and a randomized-traffic estimate", agreement
        )
    if disagreeing:
        return Finding(
            False,
            f"the 95% intervals of the fit and of the randomized traffic do not overlap at positions "
            f"{', '.join(str(p) for p in disagreeing)} (of {compared} compared)",
            agreement,
        )
    return Finding(True, f"the intervals overlap at all {compared} positions compared", agreement)


def available(model: ClickModel) -> Finding:
    if model.available:
        return Finding(
            True, f"correction available up to position {model.depth}", {"depth": model.depth}
        )
    return Finding(False, f"correction unavailable: {model.reason}", {"depth": model.depth})
