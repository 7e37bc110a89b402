"""The click model on the small demo world, against the examination probabilities of its user model
(<data>/demo/examination.parquet, written by the world and never read by the estimator)."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from eval_pipelines.core.click_model import fit_click_model
from eval_pipelines.core.demo import DemoLogStructure
from eval_pipelines.core.demo.world import DemoScale, simulate_logs
from eval_pipelines.core.paths import DataPaths


@pytest.fixture
def varied_demo(small_world: DataPaths) -> DataPaths:
    return small_world  # read only: fit_click_model stores nothing


def test_the_fitted_curve_matches_the_demo_users_examination(varied_demo: DataPaths) -> None:
    model = fit_click_model(varied_demo)
    assert model.available, model.reason
    assert model.fit["converged"]
    truth = pq.read_table(varied_demo.demo_dir / "examination.parquet")
    assert truth.column("position").to_pylist() == model.propensities.column("position").to_pylist()
    expected = np.array(truth.column("relative_examination").to_pylist())
    rows = model.propensities.to_pylist()
    estimate = np.array([r["propensity"] for r in rows])
    se = np.array([r["standard_error"] for r in rows])
    low = np.array([r["ci_low"] for r in rows])
    high = np.array([r["ci_high"] for r in rows])
    # 4,000 searches: the stated error holds at every position (within 3 standard errors), and
    # the 95% intervals hold the truth at most positions (18 of 24 in this world: its few
    # impressions per pair bias the deepest positions upwards, a known small-sample effect).
    assert np.all(np.abs(estimate - expected) <= 3 * se + 1e-9)
    assert np.mean((low <= expected) & (expected <= high)) >= 0.7
    assert model.fit["depth"] >= 12


def test_the_fixed_demo_world_says_the_correction_is_unavailable(world_copy: DataPaths) -> None:
    paths = world_copy
    simulate_logs(paths, scale=DemoScale.small(), structure=DemoLogStructure.fixed())
    model = fit_click_model(paths, draws=10)
    assert not model.available
    assert model.reason.startswith("0 of ")
    assert model.reason.endswith(
        "(query, document) pairs were served at more than one position and no search was "
        "randomized: examination cannot be separated from relevance"
    )
