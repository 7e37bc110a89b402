"""The fitted curve against the click model the logs were drawn from, and the availability rule."""

from __future__ import annotations

import numpy as np
import pytest

from eval_pipelines.core.click_model import MAX_RELATIVE_SE, fit_click_model
from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.core.click_model.pbm_logs import write_logs


def column(model, name: str) -> np.ndarray:
    return np.array(model.propensities.column(name).to_pylist(), dtype=np.float64)


def test_fitted_propensities_match_the_true_curve_within_their_standard_errors(randomized_world):
    paths, truth = randomized_world
    model = fit_click_model(paths)
    assert model.available, model.reason
    assert model.fit["converged"] and model.fit["bootstrap_draws"] == 100
    relative_truth = truth.theta / truth.theta[0]
    estimate, se = column(model, "propensity"), column(model, "standard_error")
    assert model.propensities.column("position").to_pylist() == list(range(1, 13))
    assert estimate[0] == 1.0
    # Within 3 reported standard errors at every position, and the errors are honest: the truth
    # falls inside the 95% interval at most positions (11 compared; 9 or more expected).
    assert np.all(np.abs(estimate[1:] - relative_truth[1:]) <= 3 * se[1:])
    inside = (column(model, "ci_low") <= relative_truth) & (
        relative_truth <= column(model, "ci_high")
    )
    assert inside[1:].sum() >= 9
    assert np.all(se[1:] / estimate[1:] < MAX_RELATIVE_SE)
    assert model.fit["depth"] == 12 and model.fit["monotone_violations"] == []


def test_the_randomized_traffic_estimate_brackets_the_truth_and_agrees_with_the_fit(
    randomized_world,
):
    paths, truth = randomized_world
    model = fit_click_model(paths)
    relative_truth = truth.theta / truth.theta[0]
    low, high = column(model, "randomized_ci_low"), column(model, "randomized_ci_high")
    assert ((low <= relative_truth) & (relative_truth <= high))[1:].sum() >= 9
    randomized = model.propensities.column("randomized_impressions").to_pylist()
    assert set(randomized) == {model.fit["randomized_searches"]}
    assert model.fit["agreement"]["positions_compared"] == 11
    assert model.fit["agreement"]["disagreeing_positions"] == []


def test_fixed_pages_make_the_correction_unavailable_and_say_why(fixed_world):
    paths, _ = fixed_world
    model = fit_click_model(paths)
    assert not model.available
    assert model.reason == (
        "0 of 480 (query, document) pairs were served at more than one position and no search was "
        "randomized: examination cannot be separated from relevance"
    )
    assert model.propensities.column("propensity").null_count == 12
    assert model.propensities.column("impressions").to_pylist() == [6000] * 12
    with pytest.raises(ValueError, match="correction unavailable: 0 of 480"):
        model.propensity(np.array([0, 1]), clip=0.05)


def test_too_little_randomized_traffic_is_unavailable_naming_the_position_and_its_evidence(
    tmp_path,
):
    paths = DataPaths(tmp_path / "data")
    write_logs(paths, tmp_path / "raw", searches=1500, randomized_share=0.01)
    model = fit_click_model(paths, draws=40)
    assert not model.available
    depth = model.fit["depth"]
    assert depth < 10
    assert model.reason.startswith(
        f"position {depth + 1} has a bootstrap relative standard error of "
    )
    assert f"and the logs have it up to position {depth}" in model.reason
    row = model.propensities.to_pylist()[depth]
    assert (
        f"{row['varied_impressions']:,} varied and {row['randomized_impressions']:,} randomized"
        in (model.reason)
    )


def test_propensity_lookup_clips_and_extends_the_last_reliable_value(randomized_world):
    paths, _ = randomized_world
    model = fit_click_model(paths, draws=20)
    curve = column(model, "propensity")
    looked_up = model.propensity(np.array([0, 3, 11, 30]), clip=0.3)
    assert looked_up.tolist() == [1.0, max(curve[3], 0.3), max(curve[11], 0.3), max(curve[11], 0.3)]


def test_max_position_limits_the_fitted_depth(randomized_world):
    paths, _ = randomized_world
    model = fit_click_model(paths, max_position=5, draws=20)
    assert model.propensities.column("position").to_pylist() == [1, 2, 3, 4, 5]
    assert model.available and model.fit["required_depth"] == 5
