"""Paired t-tests and Holm correction: against scipy, hand-computed examples and degenerate inputs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from eval_pipelines.core.stats.paired import (
    PairedTest,
    grouped_paired_t_tests,
    holm_adjust,
    paired_t_test,
)


@pytest.mark.parametrize(("seed", "n", "confidence"), [(0, 2, 0.95), (1, 12, 0.95), (2, 500, 0.9)])
def test_paired_t_test_matches_scipy(seed: int, n: int, confidence: float) -> None:
    rng = np.random.default_rng(seed)
    baseline = rng.uniform(0, 1, n)
    candidate = np.clip(baseline + rng.normal(0.03, 0.1, n), 0, 1)
    expected = scipy.stats.ttest_rel(candidate, baseline)
    interval = expected.confidence_interval(confidence_level=confidence)
    test = paired_t_test(candidate, baseline, confidence)
    assert test.n == n
    assert test.mean_difference == pytest.approx(np.mean(candidate - baseline), rel=1e-12)
    assert test.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert (test.ci_low, test.ci_high) == pytest.approx((interval.low, interval.high), rel=1e-12)
    assert all(type(v) is float for v in (test.mean_difference, test.p_value, test.ci_low))


def test_identical_samples_give_p_one_and_a_zero_interval() -> None:
    values = np.array([0.2, 0.5, 0.9, 0.1])
    assert paired_t_test(values, values.copy()) == PairedTest(4, 0.0, 1.0, 0.0, 0.0)


def test_a_constant_non_zero_shift_is_certain() -> None:
    baseline = np.array([0.0, 1.0, 2.0])
    assert paired_t_test(baseline + 1.0, baseline) == PairedTest(3, 1.0, 0.0, 1.0, 1.0)


def test_too_few_pairs_give_no_test() -> None:
    assert paired_t_test(np.array([0.75]), np.array([0.5])) == PairedTest(1, 0.25, None, None, None)
    assert paired_t_test(np.array([]), np.array([])) == PairedTest(0, 0.0, None, None, None)


def test_bad_samples_raise() -> None:
    with pytest.raises(ValueError, match=r"candidate\[1\] is nan"):
        paired_t_test(np.array([0.1, np.nan]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"baseline\[0\] is inf"):
        paired_t_test(np.array([0.1, 0.2]), np.array([np.inf, 0.2]))
    with pytest.raises(ValueError, match="equal length"):
        paired_t_test(np.array([0.1, 0.2]), np.array([0.1]))
    with pytest.raises(ValueError, match="confidence"):
        paired_t_test(np.array([0.1, 0.2]), np.array([0.1, 0.3]), confidence=1.0)


def test_grouped_tests_match_one_test_per_group() -> None:
    rng = np.random.default_rng(7)
    differences = rng.normal(0.05, 0.2, 300)
    groups = rng.integers(0, 5, 300)
    groups[groups == 4] = 3  # group 4 stays empty
    differences = np.append(differences, [0.25, 0.0, 0.0, 0.0, 0.1, 0.1])
    groups = np.append(groups, [5, 6, 6, 6, 7, 7])  # one pair; all zero; constant non-zero
    grouped = grouped_paired_t_tests(differences, groups, 8)
    for group in range(8):
        members = differences[groups == group]
        expected = paired_t_test(members, np.zeros_like(members))
        assert grouped.n[group] == expected.n
        assert grouped.mean_difference[group] == pytest.approx(expected.mean_difference, rel=1e-9)
        for field in ("p_value", "ci_low", "ci_high"):
            value = getattr(expected, field)
            got = getattr(grouped, field)[group]
            if value is None:
                assert np.isnan(got), (group, field)
            else:
                assert got == pytest.approx(value, rel=1e-9, abs=1e-15), (group, field)
    assert (grouped.p_value[6], grouped.ci_low[6], grouped.ci_high[6]) == (1.0, 0.0, 0.0)
    assert (grouped.p_value[7], grouped.ci_low[7], grouped.ci_high[7]) == (0.0, 0.1, 0.1)


def test_grouped_tests_reject_bad_groups() -> None:
    with pytest.raises(ValueError, match=r"codes must lie in 0\.\.1"):
        grouped_paired_t_tests(np.array([0.1, 0.2]), np.array([0, 2]), 2)
    with pytest.raises(ValueError, match=r"differences\[0\] is nan"):
        grouped_paired_t_tests(np.array([np.nan]), np.array([0]), 1)


@pytest.mark.parametrize(
    ("p_values", "adjusted"),
    [
        # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> running max
        ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),
        ([0.5, 0.6], [1.0, 1.0]),  # 0.5 * 2 = 1.0, capped; 0.6 stays below its predecessor
        ([0.02, 0.02], [0.04, 0.04]),
        ([0.001], [0.001]),
        ([0.0, 1.0, 0.2], [0.0, 1.0, 0.4]),
        ([], []),
    ],
)
def test_holm_hand_computed(p_values: list[float], adjusted: list[float]) -> None:
    assert holm_adjust(p_values) == pytest.approx(np.array(adjusted), abs=1e-15)


def test_holm_is_monotone_in_p_and_capped() -> None:
    p = np.random.default_rng(3).uniform(0, 0.3, 40)
    adjusted = holm_adjust(p)
    order = np.argsort(p)
    assert np.all(np.diff(adjusted[order]) >= 0)
    assert np.all(adjusted >= p)
    assert np.all(adjusted <= 1.0)


def test_holm_agrees_with_statsmodels_when_available() -> None:
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(4).uniform(0, 0.2, 25)
    expected = multitest.multipletests(p, method="holm")[1]
    np.testing.assert_allclose(holm_adjust(p), expected, rtol=1e-12)


@pytest.mark.parametrize("p_values", [[0.1, float("nan")], [1.2], [-0.1], [[0.1, 0.2]]])
def test_holm_rejects_non_probabilities(p_values: list) -> None:
    with pytest.raises(ValueError):
        holm_adjust(p_values)
