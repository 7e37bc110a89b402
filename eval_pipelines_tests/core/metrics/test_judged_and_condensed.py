"""judged@k (ir_measures' Judged@k) and condensed lists (trec_eval -J): hand-computed cases, a
plain-Python reference for judged@k, and every measure on condensed lists against pytrec_eval run
with judged_docs_only_flag=True."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
import pytrec_eval

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.metrics.ground_truth import evaluate_rankings, measure_names
from eval_pipelines_tests.core.metrics.test_ground_truth import (
    CUTOFFS,
    PYTREC_CUT,
    PYTREC_UNCUT,
    TOLERANCE,
    evaluate_random,
    pytrec_measures,
    random_judgments,
    trec_order,
)

QRELS = pa.table(
    {
        "query_id": ["a", "a", "a", "a", "b", "other"],
        "document_id": ["d1", "d2", "d3", "d4", "x", "u1"],
        "relevance": pa.array([2, 0, 1, -1, 1, 3], pa.int32()),
    }
)


def test_judged_at_k_by_hand() -> None:
    # a: u1 is judged for another query only; d2 (grade 0) is judged, d4 (grade -1) is not (as
    # trec_eval reads it: not in the pool); the second d1 is a repeat (first copy only); the list
    # is shorter than 10.
    table = evaluate_rankings(
        ["a", "b"],
        [["u1", "d1", "d2", "u2", "d1", "d4", "d3"], ["x"]],
        QRELS,
        k_values=(1, 2, 3, 5, 10),
        measures=["judged"],
    )
    rows = {row.pop("query_id"): row for row in table.to_pylist()}
    assert rows["a"] == {
        "judged_1": 0.0,
        "judged_2": 0.5,
        "judged_3": pytest.approx(2 / 3),
        "judged_5": pytest.approx(2 / 5),
        "judged_10": pytest.approx(3 / 10),
    }
    assert rows["b"] == {
        "judged_1": 1.0,
        "judged_2": 0.5,
        "judged_3": pytest.approx(1 / 3),
        "judged_5": pytest.approx(1 / 5),
        "judged_10": pytest.approx(1 / 10),
    }


def test_judged_is_named_on_request_only() -> None:
    assert "judged_10" not in measure_names(k_values=(10,))
    assert measure_names(k_values=(10,), measures=["judged.1,3"]) == ["judged_1", "judged_3"]
    with pytest.raises(InvalidInputError, match="judged"):
        measure_names(k_values=(10,), measures=["judgd_10"])


def test_condensed_lists_by_hand() -> None:
    ranking = [["u1", "d1", "u2", "d2", "d1", "d3"]]
    plain = evaluate_rankings(["a"], ranking, QRELS, k_values=(1, 2), measures=["P", "ndcg_cut"])
    condensed = evaluate_rankings(
        ["a"],
        ranking,
        QRELS,
        k_values=(1, 2),
        measures=["P", "ndcg_cut", "num_ret", "judged"],
        judged_only=True,
    ).to_pylist()[0]
    assert plain.to_pylist()[0]["P_1"] == 0.0
    # Condensed: d1 (2), d2 (0), d3 (1); the ideal is unchanged: 2, 1 (d4 is -1, d2 0).
    ideal_2 = 2 + 1 / math.log2(3)
    assert condensed["P_1"] == 1.0
    assert condensed["ndcg_cut_1"] == 1.0
    assert condensed["ndcg_cut_2"] == pytest.approx(2 / ideal_2)
    assert condensed["num_ret"] == 3.0
    # judged@k reads the ranking as retrieved, so it says how much the condensing dropped.
    assert (condensed["judged_1"], condensed["judged_2"]) == (0.0, 0.5)


def judged_reference(
    qrels: dict[str, dict[str, int]], ranking: list[str], query: str, k: int
) -> float:
    """ir_measures' Judged@k written plainly: judged documents among the first k, over k (a
    negative grade is not a judgment, as trec_eval reads it)."""
    judged = {d for d, grade in qrels.get(query, {}).items() if grade >= 0}
    return sum(document in judged for document in ranking[:k]) / k


@pytest.mark.parametrize(("seed", "graded"), [(31, True), (32, False)])
def test_judged_at_k_matches_a_plain_reference(seed: int, graded: bool) -> None:
    data = random_judgments(seed, graded, query_count=200)
    ours = evaluate_random(data, k_values=CUTOFFS, measures=["judged"])
    compared = 0
    for query, scored in data.run.items():
        relevant = any(g >= 1 for g in data.qrels.get(query, {}).values())
        for k in CUTOFFS:
            value = ours[query][f"judged_{k}"]
            if not relevant:
                assert math.isnan(value)
                continue
            assert value == pytest.approx(
                judged_reference(data.qrels, trec_order(scored), query, k), abs=TOLERANCE
            )
            compared += 1
    assert compared > 1000


@pytest.mark.parametrize(("seed", "graded"), [(33, True), (34, True), (35, False)])
def test_condensed_lists_match_pytrec_eval_judged_docs_only(seed: int, graded: bool) -> None:
    data = random_judgments(seed, graded, query_count=250)
    ours = evaluate_random(data, k_values=CUTOFFS, judged_only=True)
    theirs = pytrec_eval.RelevanceEvaluator(
        data.qrels, pytrec_measures(), judged_docs_only_flag=True
    ).evaluate(data.run)
    plain = pytrec_eval.RelevanceEvaluator(data.qrels, pytrec_measures()).evaluate(data.run)
    assert any(theirs[q] != plain[q] for q in theirs), "the data must have unjudged documents"
    without_relevant = {q for q, judged in data.qrels.items() if max(judged.values()) < 1}
    compared = 0
    for query, expected in theirs.items():
        for measure, value in expected.items():
            if query in without_relevant and measure not in ("num_ret", "num_rel", "num_rel_ret"):
                assert math.isnan(ours[query][measure]), (query, measure)
            else:
                assert ours[query][measure] == pytest.approx(value, abs=TOLERANCE), (query, measure)
            compared += 1
    assert compared == len(theirs) * (len(PYTREC_CUT) * len(CUTOFFS) + len(PYTREC_UNCUT))


@pytest.mark.parametrize(("seed", "graded"), [(36, True), (37, False)])
def test_f_beta_and_mrr_at_k_on_condensed_lists_follow_pytrec_eval(seed: int, graded: bool) -> None:
    data = random_judgments(seed, graded)
    ours = evaluate_random(data, k_values=CUTOFFS, judged_only=True)
    condensed_run = {
        q: {d: s for d, s in scored.items() if d in data.qrels.get(q, {})}
        for q, scored in data.run.items()
    }
    theirs = pytrec_eval.RelevanceEvaluator(
        data.qrels, pytrec_measures(), judged_docs_only_flag=True
    ).evaluate(data.run)
    reciprocal = pytrec_eval.RelevanceEvaluator(data.qrels, {"recip_rank"})
    for query, expected in theirs.items():
        if math.isnan(ours[query]["F1_1"]):
            continue
        for k in CUTOFFS:
            p, r = expected[f"P_{k}"], expected[f"recall_{k}"]
            formula = 2 * p * r / (p + r) if p + r > 0 else 0.0
            assert ours[query][f"F1_{k}"] == pytest.approx(formula, abs=TOLERANCE)
            cut = {d: condensed_run[query][d] for d in trec_order(condensed_run[query])[:k]}
            rr = reciprocal.evaluate({query: cut}).get(query, {"recip_rank": 0.0})["recip_rank"]
            assert ours[query][f"recip_rank_cut_{k}"] == pytest.approx(rr, abs=TOLERANCE)
