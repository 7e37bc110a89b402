"""query_document_evidence: per-pair gains and exposure from the whole logs, corrected for position."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from eval_pipelines.core.click_model import fit_click_model, query_document_evidence
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines_tests.core.click_model.pbm_logs import CART_SHARE

WEIGHTS = {"click": 1.0, "add_to_cart": 2.0, "impression": 0.0}
COUNTED = {"click", "add_to_cart"}
# A clicked session's gain is 2 with probability CART_SHARE, else 1.
GAIN_PER_RELEVANT = 1.0 + CART_SHARE
SECOND_MOMENT = (1 - CART_SHARE) * 1.0 + CART_SHARE * 4.0


def test_relevance_recovers_the_true_gamma_times_weight(randomized_world):
    paths, truth = randomized_world
    model = fit_click_model(paths, draws=20)
    evidence = query_document_evidence(paths, model, WEIGHTS, COUNTED)
    assert evidence.num_rows == 480
    rows = evidence.to_pylist()
    expected = np.array([truth.gamma[(r["query_key"], r["document_id"])] for r in rows])
    expected *= GAIN_PER_RELEVANT
    relevance = np.array([r["relevance"] for r in rows])
    exposure = np.array([r["exposure"] for r in rows])
    # Each examination yields a gain of mean g * 1.3 and second moment g * 1.9: its standard error
    # over `exposure` examinations bounds the error (4 SE, plus the curve's own few percent).
    se = np.sqrt(expected / GAIN_PER_RELEVANT * SECOND_MOMENT / exposure)
    assert np.mean(np.abs(relevance - expected) <= 4 * se + 0.05 * expected) >= 0.97
    assert abs(np.median(relevance / expected) - 1.0) < 0.05
    # Per impression (uncorrected), the same pairs look far less relevant: position bias.
    impressions = np.array([r["impressions"] for r in rows])
    uncorrected = np.array([r["gain_sum"] for r in rows]) / impressions
    assert np.median(uncorrected / expected) < 0.7


def test_counts_add_up_and_only_counted_types_give_gain(randomized_world):
    paths, _ = randomized_world
    model = fit_click_model(paths, draws=20)
    clicks_only = query_document_evidence(paths, model, WEIGHTS, {"click"})
    both = query_document_evidence(paths, model, WEIGHTS, COUNTED)
    assert sum(clicks_only.column("impressions").to_pylist()) == 6000 * 12
    assert sum(model.propensities.column("clicks").to_pylist()) == sum(
        clicks_only.column("interacted_sessions").to_pylist()
    )
    assert clicks_only.column("gain_sum").to_pylist() == [
        float(n) for n in clicks_only.column("interacted_sessions").to_pylist()
    ]
    assert both.column("interacted_sessions").equals(clicks_only.column("interacted_sessions"))
    assert sum(both.column("gain_sum").to_pylist()) > sum(
        clicks_only.column("gain_sum").to_pylist()
    )


def test_query_texts_select_queries_by_their_normalized_text(randomized_world):
    paths, _ = randomized_world
    model = fit_click_model(paths, draws=20)
    evidence = query_document_evidence(
        paths, model, WEIGHTS, COUNTED, query_texts=pa.array(["  QUERY 3 ", "query 7"])
    )
    assert sorted(set(evidence.column("query_key").to_pylist())) == ["query 3", "query 7"]
    assert evidence.num_rows == 24


def test_an_unavailable_model_counts_every_impression_as_one_examination(fixed_world):
    paths, _ = fixed_world
    model = fit_click_model(paths, draws=5)
    evidence = query_document_evidence(paths, model, WEIGHTS, COUNTED)
    assert evidence.column("exposure").to_pylist() == [
        float(n) for n in evidence.column("impressions").to_pylist()
    ]


def test_a_counted_type_without_a_weight_is_refused(randomized_world):
    paths, _ = randomized_world
    model = fit_click_model(paths, draws=5)
    with pytest.raises(InvalidInputError, match="no weight for counted interaction type"):
        query_document_evidence(paths, model, {"click": 1.0}, {"click", "purchase"})
