"""Inference on the mean of paired differences when sessions are nested in clusters (queries).

Sessions of one query share its difficulty and the candidate's behaviour on it, so they are not
independent: treating them as such makes a test reject far too often. The estimate is the session
mean of the differences; its variance is the cluster-robust CR2 estimator (Bell & McCaffrey 2002)
and its t reference has the Bell-McCaffrey degrees of freedom (Imbens & Kolesar 2016), the pairing
that stays calibrated with few and unequal clusters. For the intercept-only model both have closed
forms, computed here for every group at once with bincounts:

    V = sum_g w_g E_g^2 / N^2,  E_g = sum_{s in g} (d_s - mean),  w_g = 1 / (1 - n_g / N)
    df = N^2 / (sum_g w_g^2 n_g^2 - 2 sum_g w_g^2 n_g^3 / N + (sum_g w_g n_g^2)^2 / N^2)

With one session per cluster this is exactly the paired t-test (V = s^2 / N, df = N - 1).
Where too few clusters or no variance leave that approximation without footing, the exact
sign-flip test over cluster sums gives a p-value that is never 0 (the smallest is 2 / 2^G).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.stats

DEFAULT_CONFIDENCE = 0.95
DEFAULT_POWER = 0.8
# Differences are rounded to this many decimals: below it lies the floating-point noise of equal
# scores (5.6e-17), and of equal gains on different scores ((b + 0.3) - b), not an effect.
DECIMALS = 12
# Up to this many clusters the sign-flip test enumerates every sign pattern; beyond, it samples.
EXACT_SIGN_FLIP_CLUSTERS = 16
SIGN_FLIP_SAMPLES = 20_000


@dataclass(frozen=True)
class ClusteredMeans:
    """One inference per group, as arrays indexed by group; NaN where a value is undefined."""

    sessions: npt.NDArray[np.int64]
    clusters: npt.NDArray[np.int64]
    mean: npt.NDArray[np.float64]
    standard_error: npt.NDArray[np.float64]
    degrees_of_freedom: npt.NDArray[np.float64]
    p_value: npt.NDArray[np.float64]
    ci_low: npt.NDArray[np.float64]
    ci_high: npt.NDArray[np.float64]
    design_effect: npt.NDArray[np.float64]
    spread: npt.NDArray[np.float64]  # standard deviation of the session differences
    no_variance: npt.NDArray[np.bool_]  # every difference is the same: no uncertainty to estimate


def denoised(differences: np.ndarray) -> np.ndarray:
    """Differences without their floating-point noise, so equal ones compare equal."""
    values = np.asarray(differences, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"differences: expected a 1-D array, got shape {values.shape}")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"differences[{int(bad[0])}] is {values[bad[0]]}; filter pairs first")
    return np.round(values, DECIMALS) + 0.0


def _codes(values: np.ndarray, name: str, size: int, count: int | None = None) -> np.ndarray:
    codes = np.asarray(values, dtype=np.int64)
    if codes.shape != (size,):
        raise ValueError(f"{name}: shape {codes.shape} differs from ({size},)")
    if codes.size and codes.min() < 0:
        raise ValueError(f"{name}: codes must be >= 0")
    if count is not None and codes.size and codes.max() >= count:
        raise ValueError(f"{name}: codes must lie in 0..{count - 1}")
    return codes


def clustered_means(
    differences: np.ndarray,
    clusters: np.ndarray,
    groups: np.ndarray | None = None,
    group_count: int = 1,
    confidence: float = DEFAULT_CONFIDENCE,
) -> ClusteredMeans:
    """CR2 / Bell-McCaffrey inference on each group's mean difference (one group by default).

    differences: one per session; clusters: each session's cluster code (a query); groups: each
    session's group code (a taxonomy node), all sessions of a cluster-in-group counted together.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: {confidence!r} is not strictly between 0 and 1")
    d = denoised(differences)
    size = d.size
    cluster = _codes(clusters, "clusters", size)
    group = (
        np.zeros(size, dtype=np.int64)
        if groups is None
        else _codes(groups, "groups", size, group_count)
    )
    n = np.bincount(group, minlength=group_count).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.bincount(group, weights=d, minlength=group_count) / n, 0.0)
        residual = d - mean[group]
        # One cell per (group, cluster) pair that has sessions.
        _, cell, cell_size = np.unique(
            group * (int(cluster.max()) + 1 if size else 1) + cluster,
            return_inverse=True,
            return_counts=True,
        )
        cell_group = np.zeros(cell_size.size, dtype=np.int64)
        cell_group[cell] = group
        cell_size = cell_size.astype(np.float64)
        residual_sum = np.bincount(cell, weights=residual, minlength=cell_size.size)
        total = n[cell_group]
        weight = 1.0 / (1.0 - cell_size / total)  # inf for a group of one cluster
        cluster_count = np.bincount(cell_group, minlength=group_count)
        variance = np.bincount(
            cell_group, weights=weight * residual_sum**2, minlength=group_count
        ) / (n**2)
        spread = np.sqrt(
            np.bincount(group, weights=residual**2, minlength=group_count) / np.maximum(n - 1, 1)
        )
        denominator = (
            np.bincount(cell_group, weights=weight**2 * cell_size**2, minlength=group_count)
            - 2
            * np.bincount(cell_group, weights=weight**2 * cell_size**3, minlength=group_count)
            / n
            + (np.bincount(cell_group, weights=weight * cell_size**2, minlength=group_count) / n)
            ** 2
        )
        degrees = n**2 / denominator
        standard_error = np.sqrt(variance)
        statistic = mean / standard_error
        p_value = 2.0 * scipy.stats.t.sf(np.abs(statistic), degrees)
        half_width = scipy.stats.t.ppf((1.0 + confidence) / 2.0, degrees) * standard_error
        iid_variance = spread**2 / n
        design_effect = variance / iid_variance
    low = np.full(group_count, np.inf)
    high = np.full(group_count, -np.inf)
    np.minimum.at(low, group, d)
    np.maximum.at(high, group, d)
    testable = (cluster_count >= 2) & (n >= 2)
    no_variance = testable & ((low == high) | ~(variance > 0))
    usable = testable & ~no_variance
    nan = np.full(group_count, np.nan)
    return ClusteredMeans(
        sessions=n.astype(np.int64),
        clusters=cluster_count,
        mean=mean + 0.0,
        standard_error=np.where(usable, standard_error, nan),
        degrees_of_freedom=np.where(usable, degrees, nan),
        p_value=np.where(usable, p_value, nan),
        ci_low=np.where(usable, mean - half_width, nan),
        ci_high=np.where(usable, mean + half_width, nan),
        design_effect=np.where(usable, design_effect, nan),
        spread=np.where(n >= 2, spread, nan),
        no_variance=no_variance,
    )


def sign_flip_p_value(differences: np.ndarray, clusters: np.ndarray, seed: int = 0) -> float:
    """Two-sided p-value of "the mean difference is 0" by flipping the sign of whole clusters.

    Under the null each cluster's differences are symmetric around 0, so every sign pattern of the
    cluster sums is equally likely; the p-value counts the patterns whose |mean| reaches the
    observed one, including the observed pattern, so it is never 0. Exact (all 2^G patterns) up to
    EXACT_SIGN_FLIP_CLUSTERS clusters, else SIGN_FLIP_SAMPLES seeded random patterns.
    """
    d = denoised(differences)
    if d.size == 0:
        return 1.0
    cluster = _codes(clusters, "clusters", d.size)
    sums = np.bincount(np.unique(cluster, return_inverse=True)[1], weights=d)
    observed = abs(sums.sum())
    if observed == 0.0:
        return 1.0
    count = sums.size
    if count <= EXACT_SIGN_FLIP_CLUSTERS:
        patterns = (np.arange(2**count)[:, None] >> np.arange(count)) & 1
        signs = 1.0 - 2.0 * patterns
        extreme = np.abs(signs @ sums) >= observed * (1 - 1e-12)
        return float(extreme.mean())
    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(SIGN_FLIP_SAMPLES, count))
    extreme = np.count_nonzero(np.abs(signs @ sums) >= observed * (1 - 1e-12))
    return float((extreme + 1) / (SIGN_FLIP_SAMPLES + 1))


@dataclass(frozen=True)
class SignDraws:
    """Seeded random signs, one per cluster and bootstrap draw, packed eight clusters to a byte.

    Drawing B x G signs one by one costs more than the whole test, so they are drawn as random
    bytes, and a signed sum over the clusters is read from a table of each byte's 256 sign patterns:
    B x G / 8 lookups instead of B x G multiplications."""

    packed: np.ndarray  # (draws, ceil(clusters / 8)) uint8
    clusters: int

    @classmethod
    def draw(cls, clusters: int, draws: int, rng: np.random.Generator) -> SignDraws:
        width = max((clusters + 7) // 8, 1)
        packed = np.frombuffer(rng.bytes(draws * width), dtype=np.uint8).reshape(draws, width)
        return cls(packed, clusters)

    @property
    def draws(self) -> int:
        return self.packed.shape[0]

    def signed_sums(self, values: np.ndarray) -> np.ndarray:
        """sum_g sign[b, g] * values[g, k] for every draw b: a (draws, k) array."""
        width, columns = self.packed.shape[1], values.shape[1]
        padded = np.zeros((width * 8, columns))
        padded[: self.clusters] = values
        chunks = padded.reshape(width, 8, columns)
        signs = 1.0 - 2.0 * ((np.arange(256)[:, None] >> np.arange(8)) & 1)
        # table[k, c * 256 + v]: the signed sum of column k over byte c's 8 clusters for pattern v
        table = np.einsum("cjk,vj->kcv", chunks, signs).reshape(columns, -1)
        lookup = np.arange(width) * 256 + self.packed  # (draws, width), contiguous per column
        return np.stack([table[k][lookup].sum(axis=1) for k in range(columns)], axis=1)


@dataclass(frozen=True)
class BootstrapTest:
    p_value: float
    ci_low: float | None
    ci_high: float | None
    null_statistics: (
        np.ndarray
    )  # |t*| of every draw at the null, sorted: the test's critical values

    def critical_value(self, alpha: float) -> float:
        """The |t| a two-sided test at alpha must reach, as the bootstrap draws it."""
        return float(np.quantile(self.null_statistics, 1.0 - alpha))


def wild_cluster_bootstrap(
    differences: np.ndarray,
    clusters: np.ndarray,
    signs: SignDraws,
    confidence: float = DEFAULT_CONFIDENCE,
    interval: bool = True,
) -> BootstrapTest:
    """Wild cluster bootstrap-t of "the mean difference is delta" (Rademacher weights, the null
    imposed, each draw studentized by its own CR2 standard error); the interval inverts the test.

    Flipping the sign of whole clusters keeps what sessions of one query share, and studentizing
    keeps the test calibrated when a few large clusters dominate. The draw's statistic is a ratio of
    sums that are linear and quadratic in delta, so the test at any delta costs O(draws) once four
    signed sums over the clusters are known, and the interval's ends are found by bisection.
    """
    d = denoised(differences)
    codes = np.unique(_codes(clusters, "clusters", d.size), return_inverse=True)[1]
    n = np.bincount(codes).astype(np.float64)
    if n.size != signs.clusters:
        raise ValueError(f"signs: drawn for {signs.clusters} clusters, the data has {n.size}")
    total = float(d.size)
    sums = np.bincount(codes, weights=d)
    weight = 1.0 / (1.0 - n / total)
    u1, u2, u3, u4 = signs.signed_sums(
        np.column_stack((sums, n, weight * n * sums, weight * n * n))
    ).T
    k1, k2, k3 = (weight * sums**2).sum(), (weight * n * sums).sum(), (weight * n**2).sum()
    mean = sums.sum() / total
    observed_se = np.sqrt(max(k1 - 2 * mean * k2 + mean**2 * k3, 0.0)) / total

    threshold = 1 - 1e-12

    def statistics(delta: float) -> tuple[np.ndarray, np.ndarray]:
        """(draw mean x N)^2 and N^2 x its CR2 variance, per draw, with the null at delta."""
        draw_mean = (u1 - delta * u2) / total
        spread = (k1 - 2 * delta * k2 + delta**2 * k3) - draw_mean * (
            2 * (u3 - delta * u4) - draw_mean * k3
        )
        return (draw_mean * total) ** 2, np.maximum(spread, 0.0)

    def p_value(delta: float) -> float:
        scaled, spread = statistics(delta)
        observed = abs(mean - delta) / observed_se * threshold
        # |t*| >= observed, as draw_mean^2 N^2 >= observed^2 spread (no division by a zero spread)
        extreme = np.count_nonzero((scaled >= observed**2 * spread) & ((spread > 0) | (scaled > 0)))
        return float((extreme + 1) / (signs.draws + 1))

    scaled, spread = statistics(0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        null = np.sort(np.nan_to_num(np.sqrt(scaled / spread), nan=0.0, posinf=np.inf))
    p = p_value(0.0)
    if not interval or observed_se == 0.0:
        return BootstrapTest(p, None, None, null)
    alpha = 1.0 - confidence

    def end(direction: float) -> float:
        """Bisection between a delta the test keeps and one it rejects, to 1e-6 standard errors."""
        inside, outside = mean, mean + direction * 2.5 * observed_se
        while p_value(outside) > alpha:
            inside, outside = outside, outside + direction * 2.5 * observed_se
        while abs(outside - inside) > 1e-6 * observed_se:
            middle = (inside + outside) / 2
            if p_value(middle) > alpha:
                inside = middle
            else:
                outside = middle
        return (inside + outside) / 2

    return BootstrapTest(p, end(-1.0), end(1.0), null)


def minimum_detectable_effect(standard_error: float, critical: float, power: float) -> float:
    """The smallest true |mean difference| a test whose critical |t| is `critical` detects with this
    power, the estimate being about normal around it with this standard error."""
    if not (standard_error >= 0 and np.isfinite(critical)):
        return float("nan")
    return float((critical + scipy.stats.norm.ppf(power)) * standard_error)
