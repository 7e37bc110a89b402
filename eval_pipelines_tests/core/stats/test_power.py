"""The sample-size maths of stats/power.py against independent computations: a numeric search over
n, multinomial draws of query counts, simulated sessions with a known intra-query correlation, and
the design effect that clustered_means (the benchmark's own CR2 inference) measures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from eval_pipelines.core.stats import power as pw
from eval_pipelines.core.stats.clustered import clustered_means


def zipf_shares(queries: int, exponent: float = 1.0) -> np.ndarray:
    weights = 1.0 / np.arange(1, queries + 1) ** exponent
    return weights / weights.sum()


def random_effect_sessions(
    rng: np.random.Generator, shares: np.ndarray, sessions: int, icc: float, sd: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Sessions drawn from traffic with these query shares; difference = query effect + noise."""
    query = rng.choice(shares.size, size=sessions, p=shares)
    effect = rng.normal(0.0, sd * math.sqrt(icc), size=shares.size)
    noise = rng.normal(0.0, sd * math.sqrt(1 - icc), size=sessions)
    return effect[query] + noise, query


def smallest_n_by_search(delta: float, sd: float, icc: float, s: float, critical: float) -> int:
    """The first whole n whose MDE reaches delta, found by doubling then bisection on MDE(n)."""
    high = 1
    while pw.minimum_detectable_effect(high, sd, icc, s, critical) > delta:
        high *= 2
        assert high < 2**60, "no n reaches delta"
    low = max(high // 2, 1)
    while low < high:
        middle = (low + high) // 2
        if pw.minimum_detectable_effect(middle, sd, icc, s, critical) <= delta:
            high = middle
        else:
            low = middle + 1
    return low


@pytest.mark.parametrize(
    ("delta", "sd", "icc", "s", "family"),
    [
        (0.04, 0.25, 0.07, 0.0285, 1),
        (0.1, 0.3, 0.2, 0.0285, 3),
        (0.01, 0.07, 0.0, 0.01, 1),
        (0.03, 0.2, 0.5, 0.001, 2),
        (0.2, 0.25, 0.1, 0.1, 1),
        (0.3, 0.1, 0.1, 0.1, 1),  # one session suffices
    ],
)
def test_closed_form_sessions_match_a_numeric_search(
    delta: float, sd: float, icc: float, s: float, family: int
) -> None:
    critical = pw.critical_sum(0.05, 0.8, family)
    needed = pw.sessions_needed(delta, sd, icc, s, critical)
    assert needed is not None
    assert math.ceil(needed - 1e-9) == smallest_n_by_search(delta, sd, icc, s, critical)
    if needed > 1:
        assert pw.minimum_detectable_effect(needed, sd, icc, s, critical) == pytest.approx(delta)


def test_below_the_floor_no_sample_size_is_enough() -> None:
    sd, icc, s = 0.3, 0.2, 0.03
    critical = pw.critical_sum(0.05, 0.8)
    floor = pw.mde_floor(sd, icc, s, critical)
    assert floor == pytest.approx(critical * sd * math.sqrt(icc * s))
    assert pw.sessions_needed(floor * 0.999, sd, icc, s, critical) is None
    assert pw.sessions_needed(floor, sd, icc, s, critical) is None
    huge = pw.minimum_detectable_effect(1e12, sd, icc, s, critical)
    assert floor < huge < floor * 1.0001
    assert pw.sessions_needed(floor * 1.01, sd, icc, s, critical) > 1000


def test_critical_values_are_normal_and_bonferroni_over_the_family() -> None:
    assert pw.critical_value(0.05) == pytest.approx(1.959964, abs=1e-6)
    assert pw.critical_value(0.05, 3) == pytest.approx(scipy.stats.norm.ppf(1 - 0.05 / 6))
    assert pw.critical_sum(0.05, 0.8) == pytest.approx(1.959964 + 0.841621, abs=1e-6)
    for bad in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            pw.critical_value(bad)
        with pytest.raises(ValueError, match="power"):
            pw.power_quantile(bad)
    with pytest.raises(ValueError, match="family"):
        pw.critical_value(0.05, 0)


def test_power_at_the_mde_is_the_planned_power() -> None:
    s, critical = 0.02, pw.critical_sum(0.05, 0.8, 2)
    for n in (50, 500, 5000):
        mde = pw.minimum_detectable_effect(n, 0.25, 0.1, s, critical)
        assert pw.power_at(n, mde, 0.25, 0.1, s, 0.05, 2) == pytest.approx(0.8, abs=1e-9)


@pytest.mark.parametrize("sessions", [50, 400, 2000])
def test_design_effect_is_the_expected_sum_of_squared_query_counts(sessions: int) -> None:
    """E[sum_q n_q^2] = n + n (n - 1) S for multinomial query counts."""
    shares = zipf_shares(300)
    s = float(np.sum(shares**2))
    counts = np.random.default_rng(sessions).multinomial(sessions, shares, size=20_000)
    squares = (counts.astype(np.float64) ** 2).sum(axis=1)
    expected = sessions + sessions * (sessions - 1) * s
    error = squares.std() / math.sqrt(squares.size)
    assert abs(squares.mean() - expected) <= 4 * error
    # The design effect with rho = 1 is exactly that sum over n.
    assert pw.design_effect(sessions, 1.0, s) == pytest.approx(expected / sessions)


def test_design_effect_is_the_variance_inflation_of_the_mean() -> None:
    """Means of simulated benchmarks vary by sd^2 DEFF(n) / n, DEFF from the shares alone."""
    rng = np.random.default_rng(5)
    shares = zipf_shares(200)
    s = float(np.sum(shares**2))
    sessions, icc, sd = 600, 0.15, 0.3
    means = np.array(
        [random_effect_sessions(rng, shares, sessions, icc, sd)[0].mean() for _ in range(4000)]
    )
    predicted = sd**2 * pw.design_effect(sessions, icc, s) / sessions
    # The sample variance of 4,000 means is within about 2.2% (1 / sqrt(2000)) of the truth.
    assert means.var(ddof=1) == pytest.approx(predicted, rel=0.1)
    assert pw.design_effect(sessions, icc, s) > 2.5, "a design where clustering matters"


@pytest.mark.parametrize("icc", [0.0, 0.05, 0.2, 0.5])
def test_both_estimators_recover_a_known_intra_query_correlation(icc: float) -> None:
    rng = np.random.default_rng(int(icc * 100))
    shares = zipf_shares(150)
    pairwise, anova = [], []
    for _ in range(300):
        values, query = random_effect_sessions(rng, shares, 500, icc)
        pairwise.append(pw.pairwise_correlation(values, query))
        anova.append(pw.anova_correlation(values, query))
    for estimates in (pairwise, anova):
        mean = float(np.mean(estimates))
        error = float(np.std(estimates)) / math.sqrt(len(estimates))
        # Truncation at 0 biases the mean up a little where rho is 0.
        assert abs(mean - icc) <= 4 * error + (0.01 if icc == 0 else 0.0), (icc, mean)


def simulated_design_effects(
    rng: np.random.Generator,
    shares: np.ndarray,
    sessions: int,
    effect_sd: np.ndarray,
    noise_sd: float,
    benchmarks: int = 400,
) -> dict[str, float]:
    """Benchmarks of n sessions whose query effects are drawn anew each time (sd per query): the
    variance inflation of their means (in truth, 1 + (n - 1) S rho with rho the p_q^2-weighted
    share of variance between queries; and as simulated, known within about 7% from 400
    benchmarks), and what each estimate of it says on average."""
    s = float(np.sum(shares**2))
    means, variances, measured, pairwise, anova = [], [], [], [], []
    for _ in range(benchmarks):
        query = rng.choice(shares.size, size=sessions, p=shares)
        values = rng.normal(0.0, effect_sd)[query] + rng.normal(0.0, noise_sd, size=sessions)
        means.append(values.mean())
        variances.append(values.var(ddof=1))
        measured.append(float(clustered_means(values, query).design_effect[0]))
        pairwise.append(pw.pairwise_correlation(values, query) or 0.0)
        anova.append(pw.anova_correlation(values, query) or 0.0)
    total = float(np.sum(shares * effect_sd**2)) + noise_sd**2
    shared = float(np.sum(shares**2 * effect_sd**2)) / (s * total)
    return {
        "truth": pw.design_effect(sessions, shared, s),
        "simulated": float(np.var(means, ddof=1) / (np.mean(variances) / sessions)),
        "cr2": float(np.mean(measured)),
        "pairwise": pw.design_effect(sessions, float(np.mean(pairwise)), s),
        "anova": pw.design_effect(sessions, float(np.mean(anova)), s),
    }


@pytest.mark.parametrize("icc", [0.05, 0.2])
def test_pairwise_estimate_predicts_the_design_effect(icc: float) -> None:
    """Plugged into DEFF(n), the pairwise rho predicts how much the means of benchmarks vary, and
    agrees with the design effect clustered_means (the benchmark's CR2) measures on average (CR2
    runs 10-20% under the truth when one query holds a fifth of the sessions)."""
    shares = zipf_shares(100)
    effect_sd = np.full(shares.size, math.sqrt(icc))
    found = simulated_design_effects(
        np.random.default_rng(9), shares, 1000, effect_sd, math.sqrt(1 - icc)
    )
    assert found["simulated"] == pytest.approx(found["truth"], rel=0.2), found
    assert found["pairwise"] == pytest.approx(found["truth"], rel=0.1), found
    assert found["pairwise"] == pytest.approx(found["cr2"], rel=0.2), found
    assert found["truth"] > 4, "a design where clustering matters"


def test_only_the_pairwise_estimate_predicts_the_design_effect_where_head_and_tail_differ() -> None:
    """A candidate that changes tail queries a lot and head queries little: the design effect of
    a benchmark is driven by the head (weights p_q^2), which the pairwise estimate follows and
    the ANOVA estimate, weighing queries alike, does not."""
    shares = zipf_shares(300, exponent=1.1)
    effect_sd = np.where(np.arange(shares.size) < 10, 0.05, 0.6)  # ten head queries vary little
    found = simulated_design_effects(np.random.default_rng(11), shares, 1000, effect_sd, 0.4)
    assert found["simulated"] == pytest.approx(found["truth"], rel=0.2), found
    assert found["pairwise"] == pytest.approx(found["truth"], rel=0.1), found
    assert found["cr2"] == pytest.approx(found["truth"], rel=0.1), found
    assert found["anova"] > 3 * found["truth"], found


def test_estimators_say_when_the_data_cannot_tell() -> None:
    singletons = np.arange(10)
    values = np.linspace(0, 1, 10)
    assert pw.pairwise_correlation(values, singletons) is None
    assert pw.anova_correlation(values, singletons) is None
    one_query = np.zeros(10, dtype=int)
    assert pw.anova_correlation(values, one_query) is None
    assert pw.pairwise_correlation(np.full(10, 0.3), np.repeat([0, 1], 5)) is None
    assert pw.anova_correlation(np.full(10, 0.3), np.repeat([0, 1], 5)) is None
    assert pw.pairwise_correlation(np.zeros(1), np.zeros(1, dtype=int)) is None
    # Queries that share their values perfectly: rho 1; alternating within queries: truncated to 0.
    assert pw.pairwise_correlation(np.repeat([0.0, 1.0], 5), np.repeat([0, 1], 5)) == 1.0
    assert pw.pairwise_correlation(np.tile([0.0, 1.0], 5), np.repeat([0, 1, 2, 3, 4], 2)) == 0.0


def test_expected_distinct_queries_match_multinomial_draws() -> None:
    counts = np.round(zipf_shares(120) * 5000).astype(int)
    shares = counts / counts.sum()
    rng = np.random.default_rng(3)
    for sessions in (10, 100, 1000):
        drawn = rng.multinomial(sessions, shares, size=5000)
        distinct = (drawn > 0).sum(axis=1)
        error = distinct.std() / math.sqrt(distinct.size)
        assert abs(distinct.mean() - pw.expected_clusters(sessions, counts)) <= 4 * error + 1e-9
    needed = pw.sessions_for_clusters(10, counts, upper=int(counts.sum()))
    assert needed is not None
    assert pw.expected_clusters(needed, counts) >= 10 > pw.expected_clusters(needed - 1, counts)
    assert pw.sessions_for_clusters(500, counts, upper=int(counts.sum())) is None
    assert pw.expected_clusters(7, np.array([5])) == pytest.approx(1.0)


def test_cluster_bootstrap_resamples_whole_queries() -> None:
    """Each draw's sd is that of the resampled queries' sessions; a draw that takes each query at
    most once (a subset of the queries) has the pairwise rho of that subset. A query taken twice
    is left out whole when the others' mean is formed (its twin is no independent session)."""
    rng = np.random.default_rng(2)
    values, query = random_effect_sessions(rng, zipf_shares(40), 300, 0.2)
    sd, rho = pw.cluster_bootstrap(values, query, 50, np.random.default_rng(17))
    ids, code = np.unique(query, return_inverse=True)
    copies = np.random.default_rng(17).multinomial(ids.size, np.full(ids.size, 1 / ids.size), 50)
    for draw in range(50):
        picked = np.repeat(np.arange(ids.size), copies[draw])
        resampled = np.concatenate([values[code == g] for g in picked])
        assert sd[draw] == pytest.approx(resampled.std(ddof=1), rel=1e-9)
    assert np.isfinite(rho).all() and (rho >= 0).all() and (rho <= 1).all()
    subsets = (np.random.default_rng(4).random((20, ids.size)) < 0.6).astype(np.float64)
    centred = values - values.mean()
    sizes = np.bincount(code).astype(np.float64)
    sums = np.bincount(code, weights=centred)
    squares = np.bincount(code, weights=centred**2)
    _, subset_rho = pw._pairwise_rho(subsets, sizes, sums, squares)
    for row, chosen in zip(subset_rho, subsets.astype(bool), strict=True):
        members = chosen[code]
        expected = pw.pairwise_correlation(values[members], query[members])
        assert row == pytest.approx(0.0 if expected is None else expected, abs=1e-9)


def test_bad_arguments_are_refused() -> None:
    critical = pw.critical_sum(0.05, 0.8)
    with pytest.raises(ValueError, match="delta"):
        pw.sessions_needed(0.0, 0.2, 0.1, 0.02, critical)
    with pytest.raises(ValueError, match="icc"):
        pw.design_effect(100, 1.5, 0.02)
    with pytest.raises(ValueError, match="sd"):
        pw.mde_floor(float("nan"), 0.1, 0.02, critical)
    with pytest.raises(ValueError, match="concentration"):
        pw.design_effect(100, 0.1, 0.0)
    with pytest.raises(ValueError, match="counts"):
        pw.concentration(np.array([0, 0]))
    assert pw.concentration(np.array([3, 1])) == pytest.approx(0.625)
