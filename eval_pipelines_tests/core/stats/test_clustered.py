"""The clustered inference of stats/clustered.py against independent references: scipy's t-test,
the CR2 and Bell-McCaffrey formulas written out as matrices, hand-enumerated sign flips, and the
wild cluster bootstrap computed one draw at a time."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from eval_pipelines.core.stats.clustered import (
    SIGN_FLIP_SAMPLES,
    SignDraws,
    clustered_means,
    denoised,
    minimum_detectable_effect,
    sign_flip_p_value,
    wild_cluster_bootstrap,
)


def cr2_by_matrices(d: np.ndarray, clusters: np.ndarray) -> tuple[float, float]:
    """CR2 variance and Bell-McCaffrey df of the mean, straight from the textbook definitions
    (Imbens & Kolesar 2016): A_g = (I - H_gg)^(-1/2), G_g = (I - H)_g A_g X_g (X'X)^-1."""
    n = d.size
    x = np.ones((n, 1))
    hat = x @ np.linalg.inv(x.T @ x) @ x.T
    annihilator = np.eye(n) - hat
    residual = annihilator @ d
    variance = 0.0
    columns = []
    for g in np.unique(clusters):
        rows = np.flatnonzero(clusters == g)
        values, vectors = np.linalg.eigh(np.eye(rows.size) - hat[np.ix_(rows, rows)])
        adjust = vectors @ np.diag(values**-0.5) @ vectors.T
        u = x[rows].T @ adjust @ residual[rows] / n
        variance += float(u @ u)
        columns.append((annihilator[:, rows] @ adjust @ x[rows] / n)[:, 0])
    eigenvalues = np.linalg.eigvalsh(np.array(columns) @ np.array(columns).T)
    return variance, eigenvalues.sum() ** 2 / (eigenvalues**2).sum()


def test_one_session_per_cluster_is_exactly_the_paired_t_test() -> None:
    d = np.random.default_rng(1).normal(0.03, 0.25, 300)
    result = clustered_means(d, np.arange(d.size))
    expected = scipy.stats.ttest_1samp(d, 0.0)
    interval = expected.confidence_interval(0.95)
    assert result.p_value[0] == pytest.approx(expected.pvalue, rel=1e-10)
    assert result.degrees_of_freedom[0] == pytest.approx(d.size - 1)
    assert (result.ci_low[0], result.ci_high[0]) == pytest.approx((interval.low, interval.high))
    assert result.design_effect[0] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_cr2_and_bell_mccaffrey_match_their_matrix_definitions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 25, size=rng.integers(3, 30))  # unequal clusters, Zipf-like heads
    clusters = np.repeat(np.arange(sizes.size), sizes)
    effects = rng.standard_t(3, sizes.size) * 0.1  # heavy-tailed per-query effects
    d = effects[clusters] + rng.normal(0, 0.2, clusters.size)
    variance, degrees = cr2_by_matrices(d, clusters)
    result = clustered_means(d, clusters)
    assert result.standard_error[0] ** 2 == pytest.approx(variance, rel=1e-10)
    assert result.degrees_of_freedom[0] == pytest.approx(degrees, rel=1e-10)
    statistic = d.mean() / np.sqrt(variance)
    assert result.p_value[0] == pytest.approx(2 * scipy.stats.t.sf(abs(statistic), degrees))


def test_equal_clusters_have_g_minus_1_degrees_of_freedom() -> None:
    clusters = np.repeat(np.arange(12), 7)
    d = np.random.default_rng(2).normal(0, 1, clusters.size)
    assert clustered_means(d, clusters).degrees_of_freedom[0] == pytest.approx(11)


def test_groups_are_tested_as_if_each_were_alone() -> None:
    rng = np.random.default_rng(3)
    clusters = rng.integers(0, 40, 500)
    groups = rng.integers(0, 4, 500)
    d = rng.normal(0.02, 0.3, 500)
    together = clustered_means(d, clusters, groups, 5)
    for g in range(4):
        alone = clustered_means(d[groups == g], clusters[groups == g])
        for name in ("mean", "p_value", "ci_low", "ci_high", "degrees_of_freedom", "clusters"):
            assert getattr(together, name)[g] == pytest.approx(getattr(alone, name)[0]), name
    assert (together.sessions[4], together.clusters[4], np.isnan(together.p_value[4])) == (
        0,
        0,
        True,
    )


def test_one_cluster_or_no_variance_has_no_test() -> None:
    one = clustered_means(np.array([0.1, 0.3, 0.2]), np.zeros(3, dtype=int))
    assert np.isnan(one.p_value[0]) and one.clusters[0] == 1 and not one.no_variance[0]
    constant = clustered_means(np.full(20, 0.3), np.arange(20))
    assert constant.no_variance[0] and np.isnan(constant.p_value[0])
    noise = clustered_means(np.full(20, 5.6e-17), np.arange(20))
    assert noise.no_variance[0] and noise.mean[0] == 0.0


def test_floating_point_noise_is_no_difference() -> None:
    base = np.random.default_rng(4).uniform(0, 1, 50)
    assert np.all(denoised((base + 0.3) - base) == 0.3)
    assert np.all(denoised(np.full(5, -5.6e-17)) == 0.0)
    with pytest.raises(ValueError, match=r"differences\[1\] is nan"):
        denoised(np.array([0.1, np.nan]))


def test_sign_flips_are_exact_for_few_clusters_and_never_zero() -> None:
    # Cluster sums 0.3 and 0.1: |+-0.3 +-0.1| >= 0.4 only for (+,+) and (-,-): p = 2/4.
    assert sign_flip_p_value(np.array([0.1, 0.2, 0.1]), np.array([0, 0, 1])) == 0.5
    assert sign_flip_p_value(np.full(10, 0.3), np.arange(10)) == pytest.approx(2 / 2**10)
    assert sign_flip_p_value(np.zeros(4), np.arange(4)) == 1.0
    assert sign_flip_p_value(np.array([]), np.array([], dtype=int)) == 1.0
    # Sampled beyond 16 clusters: seeded (the same p twice), and at least 1 / (samples + 1).
    many = np.full(30, 0.3)
    assert sign_flip_p_value(many, np.arange(30), seed=5) == 1 / (SIGN_FLIP_SAMPLES + 1)
    d = np.random.default_rng(6).normal(0.05, 0.3, 60)
    first = sign_flip_p_value(d, np.arange(60) // 3, seed=7)
    assert first == sign_flip_p_value(d, np.arange(60) // 3, seed=7)
    assert 0 < first <= 1


def test_the_minimum_detectable_effect_has_the_asked_power() -> None:
    """An estimate about normal around the true effect with this standard error passes the
    critical |t| with the asked probability at the MDE."""
    se, critical = 0.01, 2.1
    effect = minimum_detectable_effect(se, critical, power=0.8)
    assert scipy.stats.norm.sf(critical - effect / se) == pytest.approx(0.8)
    assert np.isnan(minimum_detectable_effect(float("nan"), critical, 0.8))
    assert np.isnan(minimum_detectable_effect(se, float("inf"), 0.8))


def brute_force_bootstrap_p(
    d: np.ndarray, codes: np.ndarray, signs: np.ndarray, delta: float
) -> float:
    """The wild cluster bootstrap-t p-value of "mean = delta", one draw at a time."""
    n = np.bincount(codes).astype(float)
    weight = 1 / (1 - n / d.size)
    restricted = np.bincount(codes, weights=d - delta)
    residual = np.bincount(codes, weights=d - d.mean())
    observed = abs(d.mean() - delta) / (np.sqrt((weight * residual**2).sum()) / d.size)
    extreme = 0
    for row in signs:
        drawn = row * restricted
        mean = drawn.sum() / d.size
        se = np.sqrt((weight * (drawn - n * mean) ** 2).sum()) / d.size
        extreme += abs(mean / se) >= observed * (1 - 1e-12)
    return (extreme + 1) / (len(signs) + 1)


def test_the_wild_cluster_bootstrap_equals_its_draw_by_draw_definition() -> None:
    rng = np.random.default_rng(8)
    clusters = rng.integers(0, 40, 300)
    d = 0.03 + 0.1 * rng.normal(0, 1, 40)[clusters] + rng.normal(0, 0.3, 300)
    codes = np.unique(clusters, return_inverse=True)[1]
    signs = SignDraws.draw(codes.max() + 1, 999, np.random.default_rng(9))
    dense = 1 - 2.0 * np.unpackbits(signs.packed, axis=1, bitorder="little")[:, : signs.clusters]
    values = rng.normal(size=(signs.clusters, 3))
    assert signs.signed_sums(values) == pytest.approx(dense @ values)
    tested = wild_cluster_bootstrap(d, clusters, signs)
    assert tested.p_value == pytest.approx(brute_force_bootstrap_p(d, codes, dense, 0.0))
    # The interval's ends are where the test's p-value crosses 5%.
    for end, outward in ((tested.ci_low, -1e-6), (tested.ci_high, 1e-6)):
        assert brute_force_bootstrap_p(d, codes, dense, end - outward) > 0.05
        assert brute_force_bootstrap_p(d, codes, dense, end + outward) <= 0.05
    assert tested.ci_low < d.mean() < tested.ci_high
    assert 1 / 1000 <= tested.p_value <= 1
    # The critical |t| at 5% is the draws' 95th percentile: the test rejects exactly beyond it.
    critical = tested.critical_value(0.05)
    assert np.mean(tested.null_statistics >= critical) == pytest.approx(0.05, abs=0.002)
