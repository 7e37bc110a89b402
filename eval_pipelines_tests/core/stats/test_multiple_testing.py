"""Holm's correction against hand-computed values and statsmodels (a test dependency)."""

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from eval_pipelines.core.stats.multiple_testing import holm_adjust


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


def test_holm_agrees_with_statsmodels() -> None:
    p = np.random.default_rng(4).uniform(0, 0.2, 25)
    expected = multipletests(p, method="holm")[1]
    np.testing.assert_allclose(holm_adjust(p), expected, rtol=1e-12)


@pytest.mark.parametrize("p_values", [[0.1, float("nan")], [1.2], [-0.1], [[0.1, 0.2]]])
def test_holm_rejects_non_probabilities(p_values: list) -> None:
    with pytest.raises(ValueError):
        holm_adjust(p_values)
