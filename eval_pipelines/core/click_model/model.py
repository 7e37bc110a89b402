"""A fitted click model: the per-position curve with its evidence, the fit's facts, and the lookup
the counterfactual estimators use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

TIMING_KEYS = ("seconds",)


@dataclass(frozen=True)
class ClickModel:
    """propensities: one row per 1-based position (see propensities.PROPENSITIES_SCHEMA);
    fit: how it was fitted (method, iterations, converged, log_likelihood, seconds, bootstrap
    draws, seed, depth, the availability rule, agreement with the randomized estimate)."""

    model_id: str
    snapshot_id: str
    available: bool
    reason: str | None
    propensities: pa.Table
    fit: dict[str, Any]

    @property
    def depth(self) -> int:
        """Leading positions whose propensity meets the availability rule."""
        return int(self.fit["depth"])

    def propensity(self, positions_0_based: np.ndarray, clip: float) -> np.ndarray:
        """Relative propensity at each 0-based position, clipped below at clip; positions past the
        depth get the value at the depth. Refused when the correction is unavailable: no curve is
        guessed."""
        if not self.available:
            raise ValueError(f"click model {self.model_id}: correction unavailable: {self.reason}")
        curve = self.propensities.column("propensity").to_numpy(zero_copy_only=False)[: self.depth]
        index = np.minimum(np.asarray(positions_0_based, dtype=np.int64), self.depth - 1)
        if index.size and index.min() < 0:
            raise ValueError("positions must be 0-based and non-negative")
        return np.maximum(curve.astype(np.float64)[index], clip)

    def to_dict(self, timing: bool = True) -> dict[str, Any]:
        """The model as JSON, keys in one order whether fitted or read back; timing=False leaves out
        how long the fit took, so records made from the same logs are the same bytes."""
        return {
            "model_id": self.model_id,
            "snapshot_id": self.snapshot_id,
            "available": self.available,
            "reason": self.reason,
            "propensities": self.propensities.to_pylist(),
            "fit": dict(sorted((self.fit if timing else fit_without_timing(self.fit)).items())),
        }


def fit_without_timing(fit: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fit.items() if k not in TIMING_KEYS}


def monotone_violations(propensities: pa.Table) -> list[dict[str, Any]]:
    """Pairs of positions p < q where q's propensity exceeds p's by more than 1.96 combined standard
    errors: a curve that clearly rises with depth."""
    value = propensities.column("propensity").to_numpy(zero_copy_only=False).astype(np.float64)
    se = propensities.column("standard_error").to_numpy(zero_copy_only=False).astype(np.float64)
    gap = value[None, :] - value[:, None]
    bound = 1.96 * np.sqrt(se[None, :] ** 2 + se[:, None] ** 2)
    with np.errstate(invalid="ignore"):
        clear = np.triu(np.nan_to_num(gap - bound, nan=-1.0) > 0, k=1)
    return [
        {"position": int(p) + 1, "deeper_position": int(q) + 1, "increase": float(gap[p, q])}
        for p, q in zip(*np.nonzero(clear), strict=True)
    ]


def agreement(propensities: pa.Table) -> dict[str, Any]:
    """Where both estimates exist (positions 2 on), whether their 95% intervals overlap."""
    rows = [
        r
        for r in propensities.to_pylist()
        if r["position"] > 1
        and r["propensity"] is not None
        and r["randomized_propensity"] is not None
    ]
    disagreeing = [
        r["position"]
        for r in rows
        if r["ci_high"] < r["randomized_ci_low"] or r["randomized_ci_high"] < r["ci_low"]
    ]
    return {
        "positions_compared": len(rows),
        "disagreeing_positions": disagreeing,
        "max_abs_difference": max(
            (abs(r["propensity"] - r["randomized_propensity"]) for r in rows), default=None
        ),
    }
