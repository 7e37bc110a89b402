"""The plan's sample sizes against statsmodels' power solver for a one-sample z test: equal with
independent sessions, and equal in effective sessions (n / design effect) when queries repeat."""

import pytest
from statsmodels.stats.power import NormalIndPower

from eval_pipelines.core.stats import power as pw


@pytest.mark.parametrize(
    ("delta", "sd", "alpha", "power", "family"),
    [
        (0.02, 0.15, 0.05, 0.8, 1),
        (0.05, 0.3, 0.05, 0.9, 1),
        (0.01, 0.1, 0.01, 0.8, 3),
        (0.1, 0.25, 0.1, 0.5, 2),
    ],
)
def test_sessions_needed_match_statsmodels(
    delta: float, sd: float, alpha: float, power: float, family: int
) -> None:
    """statsmodels counts the far rejection tail too, which moves n by under 0.1% here."""
    critical = pw.critical_sum(alpha, power, family)
    expected = NormalIndPower().solve_power(
        effect_size=delta / sd, alpha=alpha / family, power=power, ratio=0.0
    )
    assert pw.sessions_needed(delta, sd, 0.0, 1.0, critical) == pytest.approx(expected, rel=1e-3)
    for icc, s in ((0.05, 0.005), (0.2, 0.001)):
        needed = pw.sessions_needed(delta, sd, icc, s, critical)
        assert needed is not None
        effective = needed / pw.design_effect(needed, icc, s)
        assert effective == pytest.approx(expected, rel=1e-3)


def test_the_mde_is_the_effect_statsmodels_solves_for() -> None:
    for sessions in (100, 1000, 10_000):
        critical = pw.critical_sum(0.05, 0.8)
        mde = pw.minimum_detectable_effect(sessions, 0.2, 0.0, 1.0, critical)
        effect = NormalIndPower().solve_power(nobs1=sessions, alpha=0.05, power=0.8, ratio=0.0)
        assert mde / 0.2 == pytest.approx(effect, rel=1e-3)
