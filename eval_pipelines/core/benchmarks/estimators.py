"""Which estimator a benchmark judges candidates by, and why: counterfactual when the logs support it.

- logged_order: interaction gains where the logged user put them; biased toward rankings that copy
  the logged page (a document moved up keeps no credit for clicks it would have earned there).
- counterfactual: gains corrected for position with the click model fitted on the logs (inverse
  propensity weighting within the session, what all users of the query did elsewhere); needs
  positional variation or randomized traffic in the logs (core/click_model).
- auto (the default): counterfactual when the click model is available, else logged_order with the
  click model's reason recorded. Asking for counterfactual when it is unavailable leaves every
  candidate not_testable with that reason rather than guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from eval_pipelines.core.metrics.counterfactual import Propensities

AUTO, COUNTERFACTUAL, LOGGED_ORDER = "auto", "counterfactual", "logged_order"
ESTIMATORS = (AUTO, COUNTERFACTUAL, LOGGED_ORDER)
# A weight above 20x the top position's (propensity < 0.05) is capped: one deep click then cannot
# outweigh twenty clicks at the top, which bounds the variance a mis-fitted tail can add.
DEFAULT_PROPENSITY_CLIP = 0.05
# Below 90% of a candidate's top 10 having evidence, more than one document per page is judged by
# nobody: one unjudged document at rank 3-5 moves NDCG@10 by ~0.1, the size of the effects
# users act on (demo_better's +0.09), so the comparison could not tell them apart.
DEFAULT_MIN_COVERAGE = 0.9
COUNTERFACTUAL_PREFIX = "cf_"


@dataclass(frozen=True)
class EstimatorChoice:
    """The estimator a benchmark uses, what was asked for, and why when they differ."""

    requested: str
    used: str
    reason: str | None
    blocked: str | None  # counterfactual was required but the logs cannot support it
    click_model: dict[str, Any] | None
    propensity_clip: float
    min_coverage: float

    @property
    def counterfactual(self) -> bool:
        return self.used == COUNTERFACTUAL

    def propensities(self) -> Propensities | None:
        """The fitted curve (relative to the top position) the counterfactual gains divide by."""
        if not self.counterfactual or not self.click_model:
            return None
        curve = sorted(self.click_model["propensities"], key=lambda row: row["position"])
        depth = int(self.click_model["fit"].get("depth") or len(curve))
        return Propensities(
            np.array([row["propensity"] for row in curve[:depth]], dtype=np.float64),
            self.propensity_clip,
        )

    def record(self) -> dict[str, Any]:
        """The record's `estimator` block: what was measured and by which click model."""
        model = self.click_model or {}
        return {
            "requested": self.requested,
            "used": self.used,
            "reason": self.reason,
            "click_model_id": model.get("model_id"),
            "click_model_available": model.get("available"),
            "click_model_fit": model.get("fit"),
            "propensity_clip": self.propensity_clip,
            "min_coverage": self.min_coverage,
        }


def choose_estimator(
    requested: str,
    click_model: dict[str, Any] | None,
    propensity_clip: float = DEFAULT_PROPENSITY_CLIP,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> EstimatorChoice:
    """click_model: the fitted model as its `to_dict()` (None when no model could be fitted)."""
    if requested not in ESTIMATORS:
        raise ValueError(f"estimator: {requested!r} is not one of {', '.join(ESTIMATORS)}")
    available = bool(click_model and click_model.get("available"))
    why_not = None
    if not available:
        why_not = (click_model or {}).get("reason") or "no click model could be fitted on the logs"
    settings = {"propensity_clip": propensity_clip, "min_coverage": min_coverage}
    if requested == LOGGED_ORDER:
        reason = "requested: scores interactions where the logged users put them"
        return EstimatorChoice(requested, LOGGED_ORDER, reason, None, click_model, **settings)
    if available:
        return EstimatorChoice(requested, COUNTERFACTUAL, None, None, click_model, **settings)
    reason = f"the position-bias correction is unavailable: {why_not}"
    blocked = reason if requested == COUNTERFACTUAL else None
    return EstimatorChoice(requested, LOGGED_ORDER, reason, blocked, click_model, **settings)
