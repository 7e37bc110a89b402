"""Sample sizes for a paired benchmark whose sessions are nested in queries.

A benchmark of n sessions drawn from traffic whose query shares are p_q (S = sum_q p_q^2) has
n_q sessions of query q, multinomial, so E[sum_q n_q^2] = n + n (n - 1) S. With per-session
differences of spread sigma and intra-query correlation rho (the share of their variance that a
query's sessions share), the variance of the mean difference is sigma^2 / n times the design effect

    DEFF(n) = 1 + rho (n - 1) S,

and a two-sided test at alpha over a Holm family of m candidates detects, with probability `power`,

    MDE(n) = (z_{1 - alpha / (2 m)} + z_power) sigma sqrt(DEFF(n) / n).

Inverting it gives the sessions a target delta needs in closed form (sessions_needed). As n grows,
DEFF(n) / n falls to rho S, not 0: the query mix bounds what any benchmark can detect
(mde_floor). Normal critical values make this a planning approximation: the benchmark tests with
a wild cluster bootstrap-t, whose critical values are somewhat larger with few queries.

rho is estimated from a pilot by pairwise_correlation, which weighs queries as the design effect
does (by their pairs of sessions, so head queries dominate); anova_correlation, the textbook
estimator, weighs queries alike and misjudges the design effect when head and tail queries
differ in how much a candidate changes them.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.stats

from eval_pipelines.core.stats.clustered import denoised


def critical_value(alpha: float, family: int = 1) -> float:
    """z_{1 - alpha / (2 family)}: Bonferroni's level, Holm's first step, and so a bound that holds
    for every candidate of the family."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: {alpha!r} must lie strictly between 0 and 1")
    if isinstance(family, bool) or not isinstance(family, int) or family < 1:
        raise ValueError(f"family: {family!r} must be an integer >= 1")
    return float(scipy.stats.norm.ppf(1 - alpha / (2 * family)))


def power_quantile(power: float) -> float:
    if not 0 < power < 1:
        raise ValueError(f"power: {power!r} must lie strictly between 0 and 1")
    return float(scipy.stats.norm.ppf(power))


def critical_sum(alpha: float, power: float, family: int = 1) -> float:
    """z_{1 - alpha / (2 family)} + z_power: the MDE in standard errors."""
    return critical_value(alpha, family) + power_quantile(power)


def concentration(counts: np.ndarray) -> float:
    """S = sum_q p_q^2 of sessions per query: the chance that two sessions share their query."""
    values = np.asarray(counts, dtype=np.float64)
    total = values.sum()
    if values.ndim != 1 or (values < 0).any() or not total > 0:
        raise ValueError("counts: expected non-negative session counts with a positive total")
    return float(np.sum((values / total) ** 2))


def _check(sd: float, icc: float, s: float) -> None:
    if not (math.isfinite(sd) and sd >= 0):
        raise ValueError(f"sd: {sd!r} must be a finite number >= 0")
    if not 0 <= icc <= 1:
        raise ValueError(f"icc: {icc!r} must lie between 0 and 1")
    if not 0 < s <= 1:
        raise ValueError(f"concentration: {s!r} must lie in (0, 1]")


def design_effect(sessions: float, icc: float, s: float) -> float:
    """1 + rho (n - 1) S: the variance of the mean relative to n independent sessions."""
    _check(0.0, icc, s)
    return 1.0 + icc * (sessions - 1.0) * s


def minimum_detectable_effect(
    sessions: float, sd: float, icc: float, s: float, critical: float
) -> float:
    """MDE(n) = critical sd sqrt(DEFF(n) / n); critical is critical_sum's value."""
    _check(sd, icc, s)
    if not sessions >= 1:
        raise ValueError(f"sessions: {sessions!r} must be >= 1")
    return critical * sd * math.sqrt(design_effect(sessions, icc, s) / sessions)


def mde_floor(sd: float, icc: float, s: float, critical: float) -> float:
    """The MDE as n grows without bound, critical sd sqrt(rho S): below it no benchmark of this
    traffic detects an effect, however many sessions it samples."""
    _check(sd, icc, s)
    return critical * sd * math.sqrt(icc * s)


def sessions_needed(delta: float, sd: float, icc: float, s: float, critical: float) -> float | None:
    """The real n >= 1 at which MDE(n) = delta, or None when delta is at or below mde_floor.

    n = K (1 - rho S) / (1 - K rho S), K = (critical sd / delta)^2, from solving
    delta^2 n = critical^2 sd^2 (1 + rho (n - 1) S); 1 when even one session suffices."""
    _check(sd, icc, s)
    if not (math.isfinite(delta) and delta > 0):
        raise ValueError(f"delta: {delta!r} must be a finite number > 0")
    k = (critical * sd / delta) ** 2
    if k * icc * s >= 1:
        return None
    return max(1.0, k * (1 - icc * s) / (1 - k * icc * s))


def expected_clusters(sessions: float, counts: np.ndarray) -> float:
    """E[distinct queries] in n sessions drawn from traffic with these sessions per query."""
    values = np.asarray(counts, dtype=np.float64)
    shares = values[values > 0] / values.sum()
    with np.errstate(divide="ignore"):  # a query holding every session: log(0), seen once
        return float(np.sum(-np.expm1(sessions * np.log1p(-shares))))


def sessions_for_clusters(clusters: int, counts: np.ndarray, upper: int) -> int | None:
    """The smallest n <= upper whose expected distinct queries reach `clusters`, else None."""
    if expected_clusters(upper, counts) < clusters:
        return None
    low, high = 1, upper
    while low < high:
        middle = (low + high) // 2
        if expected_clusters(middle, counts) >= clusters:
            high = middle
        else:
            low = middle + 1
    return low


def _pairwise_rho(
    copies: np.ndarray, sizes: np.ndarray, sums: np.ndarray, squares: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(sd, rho) of one sample per row of `copies` (how many times each query is taken); NaN
    where undefined. sizes, sums, squares: each query's sessions, sum and sum of squares."""
    with np.errstate(divide="ignore", invalid="ignore"):
        total = copies @ sizes
        grand = copies @ sums
        mean = grand / total
        variance = np.maximum(copies @ squares - total * mean**2, 0.0) / (total - 1)
        # Each query's sessions against the mean of the other queries, which they do not move
        # (in a resample, every copy of the query is left out: its twins are not independent).
        others = total[:, None] - copies * sizes
        outside = (grand[:, None] - copies * sums) / others
        products = (sums - sizes * outside) ** 2 - (
            squares - 2 * outside * sums + sizes * outside**2
        )
        # What those others' mean varies by: the CR2 variance of the mean without the query.
        weighted = (sums - sizes * mean[:, None]) ** 2 / (1 - sizes / total[:, None])
        left = (copies * weighted).sum(axis=1)[:, None] - copies * weighted
        noise = sizes * (sizes - 1) * left / others**2
        pairs = copies @ (sizes * (sizes - 1))
        shared = (copies * (products - noise)).sum(axis=1) / pairs
        rho = np.clip(shared / variance, 0.0, 1.0)
        spread = np.sqrt(variance)
    several = (copies > 0).sum(axis=1) >= 2
    usable = several & (pairs > 0) & (variance > 0) & np.isfinite(rho)
    return np.where(total > 1, spread, np.nan), np.where(usable, rho, np.nan)


def _query_moments(values: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, ...]:
    y = denoised(values)
    code, n = np.unique(np.asarray(clusters), return_inverse=True, return_counts=True)[1:]
    y = y - (y.mean() if y.size else 0.0)  # the estimates do not depend on the location
    return n.astype(np.float64), np.bincount(code, weights=y), np.bincount(code, weights=y**2)


def pairwise_correlation(values: np.ndarray, clusters: np.ndarray) -> float | None:
    """rho as the design effect needs it: the mean product over every pair of sessions that
    share a query, over the variance, in [0, 1]; None when no query has two sessions, there is
    only one query, or nothing varies.

    Queries weigh by their pairs, n_g (n_g - 1), as they weigh in E[sum_g n_g^2] = n + n (n - 1) S:
    head queries dominate both, so the estimate predicts DEFF(n) even when head and tail queries
    differ in how much a candidate changes them (anova_correlation, weighing queries alike, then
    does not). Each query's sessions are centred on the mean of the other queries, so a head
    query does not pull the mean towards itself (centring on the overall mean under-states rho
    by a quarter when one query holds a fifth of the sessions); the products' expectation then
    exceeds the shared variance by that mean's variance, the CR2 variance without the query,
    which is subtracted."""
    sizes, sums, squares = _query_moments(values, clusters)
    if sizes.size == 0 or np.ptp(denoised(values)) == 0:
        return None
    _, rho = _pairwise_rho(np.ones((1, sizes.size)), sizes, sums, squares)
    return None if np.isnan(rho[0]) else float(rho[0])


def anova_correlation(values: np.ndarray, clusters: np.ndarray) -> float | None:
    """The one-way ANOVA estimate of rho for unbalanced clusters, truncated to [0, 1]:

        rho = (MSB - MSW) / (MSB + (n0 - 1) MSW),  n0 = (N - sum n_g^2 / N) / (G - 1).

    Each query counts about alike, whatever its traffic. None when the data cannot tell: fewer
    than two queries, none with two sessions, or no variance at all."""
    y = denoised(values)
    code, n = np.unique(np.asarray(clusters), return_inverse=True, return_counts=True)[1:]
    total, groups = y.size, n.size
    if groups < 2 or total - groups < 1 or np.ptp(y) == 0:
        return None
    means = np.bincount(code, weights=y) / n
    within = float(np.sum((y - means[code]) ** 2)) / (total - groups)
    between = float(np.sum(n * (means - y.mean()) ** 2)) / (groups - 1)
    n0 = (total - float(np.sum(n.astype(np.float64) ** 2)) / total) / (groups - 1)
    denominator = between + (n0 - 1) * within
    if not denominator > 0:
        return None
    return float(min(max((between - within) / denominator, 0.0), 1.0))


def power_at(
    sessions: float, delta: float, sd: float, icc: float, s: float, alpha: float, family: int = 1
) -> float:
    """The chance that n sessions detect a true |delta| (the MDE's inverse): the normal tail of the
    estimate beyond the critical value, the far tail neglected."""
    standard_error = sd * math.sqrt(design_effect(sessions, icc, s) / sessions)
    critical = critical_value(alpha, family)
    if standard_error == 0:
        return 1.0 if delta != 0 else 0.0
    return float(scipy.stats.norm.cdf(abs(delta) / standard_error - critical))


def cluster_bootstrap(
    values: np.ndarray, clusters: np.ndarray, draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(sd, pairwise rho) of `draws` resamples of whole queries with replacement: how much a pilot
    of this size could have told otherwise. NaN where a resample leaves them undefined."""
    sizes, sums, squares = _query_moments(values, clusters)
    copies = rng.multinomial(sizes.size, np.full(sizes.size, 1.0 / sizes.size), size=draws).astype(
        np.float64
    )
    block = max(1, 2_000_000 // max(sizes.size, 1))  # bounds the (draws, queries) temporaries
    parts = [
        _pairwise_rho(copies[start : start + block], sizes, sums, squares)
        for start in range(0, draws, block)
    ]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
