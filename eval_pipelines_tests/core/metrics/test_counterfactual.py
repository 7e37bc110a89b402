"""Counterfactual session metrics: hand-computed gains and coverage, the logged order recovered
exactly, and unbiasedness where the logged order is biased (a simulated position-based click model
whose truth is known)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from eval_pipelines.core.metrics.alignment import (
    DEFAULT_INTERACTION_WEIGHTS,
    score_sessions,
)
from eval_pipelines.core.metrics.counterfactual import (
    Propensities,
    counterfactual_scores,
    if_unseen_best,
    session_gains,
)

WEIGHTS = DEFAULT_INTERACTION_WEIGHTS
COUNTED = frozenset(t for t, w in WEIGHTS.items() if w > 0)
CUTOFFS = (1, 5, 10, 20)


def interactions(rows: list[tuple[int, str, str, int]]) -> pa.Table:
    return pa.table(
        {
            "session_index": pa.array([r[0] for r in rows], pa.int64()),
            "document_id": pa.array([r[1] for r in rows], pa.string()),
            "interaction_type": pa.array([r[2] for r in rows], pa.string()),
            "position": pa.array([r[3] for r in rows], pa.int32()),
        }
    )


def evidence(rows: list[tuple[str, str, float, float, int]]) -> pa.Table:
    return pa.table(
        {
            "query_key": [r[0] for r in rows],
            "document_id": [r[1] for r in rows],
            "exposure": pa.array([r[2] for r in rows], pa.float64()),
            "gain_sum": pa.array([r[3] for r in rows], pa.float64()),
            "interacted_sessions": pa.array([r[4] for r in rows], pa.int64()),
        }
    )


def test_gains_by_hand_ips_in_the_session_query_evidence_elsewhere_and_coverage() -> None:
    gains = session_gains(
        [["a", "b", "c"]],
        interactions([(0, "c", "click", 2)]),
        WEIGHTS,
        COUNTED,
        CUTOFFS,
        propensities=Propensities(np.array([1.0, 0.5, 0.25]), clip=0.05),
        session_queries=pa.array(["shoes"]),
        evidence=evidence([("shoes", "x", 4.0, 2.0, 1), ("shoes", "c", 3.0, 1.0, 1)]),
    )
    scores = counterfactual_scores([["x", "c", "a", "z"]], gains, depth=100, cutoffs=CUTOFFS)
    # c: clicked at position 3 (propensity 0.25) -> 1 / 0.25 = 4; x unseen here -> 2 / 4 = 0.5.
    ideal = 4.0 + 0.5 / math.log2(3)
    dcg = 0.5 / math.log2(2) + 4.0 / math.log2(3)
    assert scores["ndcg_at_10"][0] == pytest.approx(dcg / ideal)
    assert scores["ndcg_at_1"][0] == pytest.approx(0.5 / 4.0)
    # recall: interaction evidence 1 / 0.25 for c, 1 / 4 for x, over a total of 4.25.
    assert scores["recall_at_10"][0] == pytest.approx(1.0)
    assert scores["recall_at_1"][0] == pytest.approx(0.25 / 4.25)
    assert scores["shown_at_10"][0] == pytest.approx(2 / 4)  # c and a were shown to this user
    assert scores["seen_at_10"][0] == pytest.approx(3 / 4)  # x was shown to others; z to nobody
    assert scores["unseen_at_10"][0] == 1
    # z at rank 4 given the query's best query-level gain, max(2/4, 1/3) = 0.5.
    bonus = 0.5 / math.log2(5)
    assert scores["unseen_discount_at_10"][0] == pytest.approx(1 / math.log2(5))
    bound = if_unseen_best(scores["ndcg_at_10"], scores["unseen_discount_at_10"], gains)
    assert bound[0] == pytest.approx((dcg + bonus) / ideal)
    assert gains.summary() == {
        "documents_weighted": 1,
        "weights_clipped": 0,
        "scorable_sessions": 1,
    }


def test_a_propensity_below_the_clip_is_clipped_and_counted() -> None:
    gains = session_gains(
        [["a", "b"]],
        interactions([(0, "b", "purchase", 1)]),
        WEIGHTS,
        COUNTED,
        CUTOFFS,
        propensities=Propensities(np.array([1.0, 0.01]), clip=0.05),
    )
    assert gains.shown_gain.tolist() == [0.0, pytest.approx(5.0 / 0.05)]
    assert gains.clipped.tolist() == [1]


def test_the_sample_normalizer_is_a_ratio_of_sums_so_one_deep_click_keeps_its_weight() -> None:
    """Per-session normalization would give a lone click the same NDCG wherever it was: the
    position correction would cancel. The sample's mean ideal keeps it."""
    served = [["a", "b", "c", "d"], ["a", "b", "c", "d"]]
    acted = interactions([(0, "a", "click", 0), (1, "d", "click", 3)])
    propensities = Propensities(np.array([1.0, 0.8, 0.4, 0.2]), clip=0.05)
    gains = session_gains(served, acted, WEIGHTS, COUNTED, CUTOFFS, propensities=propensities)
    flipped = counterfactual_scores([["d", "c", "b", "a"]] * 2, gains, 100, CUTOFFS)
    logged = counterfactual_scores(served, gains, 100, CUTOFFS)
    ideal = np.mean([1.0, 5.0])
    assert logged["ndcg_at_10"].tolist() == pytest.approx([1 / ideal, 5 / math.log2(5) / ideal])
    assert flipped["ndcg_at_10"].mean() > logged["ndcg_at_10"].mean()
    sums = (1.0 / math.log2(5) + 5.0) / (2 * ideal)
    assert flipped["ndcg_at_10"].mean() == pytest.approx(sums)


def test_without_evidence_or_propensities_the_session_normalized_scores_are_the_logged_orders() -> (
    None
):
    rng = np.random.default_rng(7)
    served = [[f"d{rng.integers(0, 40)}" for _ in range(12)] for _ in range(200)]
    rows = []
    for s, page in enumerate(served):
        for p, d in enumerate(page):
            if rng.random() < 0.15:
                rows.append((s, d, "click", p))
            if rng.random() < 0.04:
                rows.append((s, d, "purchase", p))
    acted = interactions(rows)
    rankings = [[*rng.permutation(page).tolist(), "fresh"] for page in served]
    expected = score_sessions(rankings, acted, WEIGHTS, COUNTED, depth=100, cutoffs=CUTOFFS)
    gains = session_gains(served, acted, WEIGHTS, COUNTED, CUTOFFS, normalize="session")
    found = counterfactual_scores(rankings, gains, 100, CUTOFFS)
    for k in CUTOFFS:
        for name in (f"ndcg_at_{k}", f"recall_at_{k}"):
            np.testing.assert_allclose(
                found[name], expected.column(name).to_numpy(zero_copy_only=False), atol=1e-12
            )


def simulated_logs(
    rng: np.random.Generator, sessions: int, examination: np.ndarray, relevance: np.ndarray
) -> tuple[list[list[str]], pa.Table]:
    """One query; the page shows the documents in a fixed order; clicks by a position-based model."""
    page = [f"d{i}" for i in range(relevance.size)]
    clicked = rng.random((sessions, relevance.size)) < examination * relevance
    session, position = np.nonzero(clicked)
    rows = [(int(s), page[p], "click", int(p)) for s, p in zip(session, position, strict=True)]
    return [page] * sessions, interactions(rows)


def test_reordering_equally_relevant_documents_costs_nothing_counterfactually_but_the_logged_order_calls_it_a_loss() -> (
    None
):
    rng = np.random.default_rng(11)
    examination = 0.95 * 0.8 ** (np.arange(12) // 4)
    relevance = np.full(12, 0.2)
    served, acted = simulated_logs(rng, 4000, examination, relevance)
    reversed_page = [served[0][::-1]] * len(served)
    relative = Propensities(examination / examination[0], clip=0.05)

    def mean_delta(gains) -> tuple[float, float]:
        base = counterfactual_scores(served, gains, 100, CUTOFFS)["ndcg_at_10"]
        cand = counterfactual_scores(reversed_page, gains, 100, CUTOFFS)["ndcg_at_10"]
        delta = (cand - base)[np.isfinite(base)]
        return float(delta.mean()), float(delta.std(ddof=1) / math.sqrt(delta.size))

    corrected, corrected_se = mean_delta(
        session_gains(served, acted, WEIGHTS, COUNTED, CUTOFFS, propensities=relative)
    )
    logged, logged_se = mean_delta(
        session_gains(served, acted, WEIGHTS, COUNTED, CUTOFFS, normalize="session")
    )
    assert abs(corrected) < 3 * corrected_se
    assert logged < -5 * logged_se


def test_a_better_document_moved_up_from_deep_in_the_page_is_credited() -> None:
    rng = np.random.default_rng(5)
    examination = 0.95 * 0.8 ** (np.arange(12) // 4)
    relevance = np.full(12, 0.1)
    relevance[-1] = 0.6  # the best document is served last
    served, acted = simulated_logs(rng, 4000, examination, relevance)
    promoted = [[served[0][-1], *served[0][:-1]]] * len(served)
    gains = session_gains(
        served, acted, WEIGHTS, COUNTED, CUTOFFS, propensities=Propensities(examination, clip=0.05)
    )
    base = counterfactual_scores(served, gains, 100, CUTOFFS)["ndcg_at_10"]
    cand = counterfactual_scores(promoted, gains, 100, CUTOFFS)["ndcg_at_10"]
    discount = 1 / np.log2(np.arange(2, 12))
    true_base = np.sum(relevance[:10] * discount)
    true_promoted = np.sum(np.r_[relevance[-1], relevance[:9]] * discount)
    assert np.nanmean(cand) / np.nanmean(base) == pytest.approx(true_promoted / true_base, rel=0.05)
