"""Paired comparisons of two retrievers over the same sessions: t-tests, t-intervals, Holm correction.

Degenerate inputs give defined answers instead of NaN or exceptions, so records stay JSON:
fewer than 2 pairs -> no p-value and no interval; every difference 0 -> p = 1 and interval [0, 0];
every difference the same non-zero value -> p = 0 and interval [d, d] (the t statistic is infinite).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.stats

DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class PairedTest:
    n: int
    mean_difference: float
    p_value: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class GroupedPairedTests:
    """One paired test per group, as arrays indexed by group; NaN where a value is undefined (n < 2)."""

    n: np.ndarray
    mean_difference: np.ndarray
    p_value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray


def _differences(candidate: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    candidate = np.asarray(candidate, dtype=np.float64)
    baseline = np.asarray(baseline, dtype=np.float64)
    if candidate.ndim != 1 or candidate.shape != baseline.shape:
        raise ValueError(
            f"paired samples need two 1-D arrays of equal length, got {candidate.shape} and {baseline.shape}"
        )
    _require_finite(candidate, "candidate")
    _require_finite(baseline, "baseline")
    return candidate - baseline


def _require_finite(values: np.ndarray, name: str) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"{name}[{int(bad[0])}] is {values[bad[0]]}; filter pairs first")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: {confidence!r} is not strictly between 0 and 1")


def paired_t_test(
    candidate: np.ndarray, baseline: np.ndarray, confidence: float = DEFAULT_CONFIDENCE
) -> PairedTest:
    """Two-sided paired t-test (scipy.stats.ttest_rel) and t-interval of the mean difference."""
    _check_confidence(confidence)
    differences = _differences(candidate, baseline)
    n = int(differences.size)
    if n == 0:
        return PairedTest(0, 0.0, None, None, None)
    mean = float(differences.mean())
    if n < 2:
        return PairedTest(n, mean, None, None, None)
    if np.all(differences == differences[0]):
        constant = float(differences[0])
        return PairedTest(n, constant, 1.0 if constant == 0 else 0.0, constant, constant)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Precision loss", category=RuntimeWarning)
        result = scipy.stats.ttest_rel(candidate, baseline)
        interval = result.confidence_interval(confidence_level=confidence)
    return PairedTest(n, mean, float(result.pvalue), float(interval.low), float(interval.high))


def grouped_paired_t_tests(
    differences: np.ndarray,
    groups: np.ndarray,
    group_count: int,
    confidence: float = DEFAULT_CONFIDENCE,
) -> GroupedPairedTests:
    """paired_t_test of each group's differences at once: the same t-distribution maths, vectorised."""
    _check_confidence(confidence)
    differences = np.asarray(differences, dtype=np.float64)
    if differences.ndim != 1:
        raise ValueError(f"differences: expected a 1-D array, got shape {differences.shape}")
    _require_finite(differences, "differences")
    groups = np.asarray(groups, dtype=np.int64)
    if groups.shape != differences.shape:
        raise ValueError(f"groups: shape {groups.shape} differs from {differences.shape}")
    if groups.size and not (groups.min() >= 0 and groups.max() < group_count):
        raise ValueError(f"groups: codes must lie in 0..{group_count - 1}")
    n = np.bincount(groups, minlength=group_count)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(
            n > 0, np.bincount(groups, weights=differences, minlength=group_count) / n, 0.0
        )
        squares = np.bincount(
            groups, weights=(differences - mean[groups]) ** 2, minlength=group_count
        )
        standard_error = np.sqrt(squares / (n - 1) / n)
        degrees = np.maximum(n - 1, 1)
        p_value = 2.0 * scipy.stats.t.sf(np.abs(mean / standard_error), degrees)
        half_width = scipy.stats.t.ppf((1.0 + confidence) / 2.0, degrees) * standard_error
    constant = _group_is_constant(differences, groups, group_count)
    too_few = n < 2
    return GroupedPairedTests(
        n=n,
        mean_difference=mean,
        p_value=np.where(too_few, np.nan, np.where(constant, (mean == 0).astype(float), p_value)),
        ci_low=np.where(too_few, np.nan, np.where(constant, mean, mean - half_width)),
        ci_high=np.where(too_few, np.nan, np.where(constant, mean, mean + half_width)),
    )


def _group_is_constant(differences: np.ndarray, groups: np.ndarray, group_count: int) -> np.ndarray:
    """True for groups whose differences are all exactly equal (an exact test, no rounding)."""
    low = np.full(group_count, np.inf)
    high = np.full(group_count, -np.inf)
    np.minimum.at(low, groups, differences)
    np.maximum.at(high, groups, differences)
    return low == high


def holm_adjust(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values, in the input order (monotone, capped at 1)."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values: expected a 1-D sequence, got shape {p.shape}")
    bad = np.flatnonzero(~((p >= 0.0) & (p <= 1.0)))
    if bad.size:
        raise ValueError(f"p_values[{int(bad[0])}] is {p[bad[0]]}, not a probability")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted
