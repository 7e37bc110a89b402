"""Ground-truth metrics: hand-computed cases, and every measure against pytrec_eval on random data."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pytest
import pytrec_eval

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.metrics.ground_truth import (
    CUT_FAMILIES,
    UNCUT_MEASURES,
    evaluate_rankings,
    measure_names,
)

CUTOFFS = (1, 2, 3, 5, 10, 20, 30)
PYTREC_CUT = ("P", "recall", "map_cut", "ndcg_cut")
PYTREC_UNCUT = (
    "map",
    "ndcg",
    "recip_rank",
    "set_P",
    "set_recall",
    "set_F",
    "num_ret",
    "num_rel",
    "num_rel_ret",
)
TOLERANCE = 1e-9


@dataclass(frozen=True)
class RandomJudgments:
    """Qrels and a scored run as pytrec_eval takes them (dicts), from one seed."""

    qrels: dict[str, dict[str, int]]
    run: dict[str, dict[str, float]]

    def qrels_table(self) -> pa.Table:
        rows = [(q, d, g) for q, judged in self.qrels.items() for d, g in judged.items()]
        query, document, grade = zip(*rows, strict=True)
        return pa.table(
            {
                "query_id": pa.array(query, pa.string()),
                "document_id": pa.array(document, pa.string()),
                "relevance": pa.array(grade, pa.int64()),
            }
        )


def trec_order(scored: dict[str, float]) -> list[str]:
    """trec_eval's order, written independently: score descending, then document id descending."""
    return sorted(scored, key=lambda d: (scored[d], d), reverse=True)


def random_judgments(seed: int, graded: bool, query_count: int = 60) -> RandomJudgments:
    """Graded or binary qrels with negative grades and all-zero queries; a run with score ties,
    short and empty rankings, unjudged documents, and queries missing from either side."""
    rng = np.random.default_rng(seed)
    grades = [0, 1, 2, 3] if graded else [0, 1]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(query_count):
        query = f"q{q}"
        pool = [f"d{n}" for n in rng.permutation(45)]
        if q >= 8:
            judged = pool[: int(rng.integers(1, 16))]
            chosen = rng.choice(grades, size=len(judged))
            if q % 9 == 0:
                chosen = np.zeros(len(judged), dtype=int)
            judgments = {d: int(g) for d, g in zip(judged, chosen, strict=True)}
            if q % 7 == 0:
                judgments[pool[20]] = -1
            qrels[query] = judgments
        if q < query_count - 8:
            size = 0 if q % 11 == 3 else int(rng.integers(1, 26))
            retrieved = list(rng.choice(pool, size=size, replace=False))
            if q % 5 == 0:
                scores = rng.random(len(retrieved))
            else:
                scores = rng.integers(0, 4, size=len(retrieved)).astype(float)
            run[query] = {str(d): float(s) for d, s in zip(retrieved, scores, strict=True)}
    return RandomJudgments(qrels, run)


def pytrec_measures(cutoffs: tuple[int, ...] = CUTOFFS) -> set[str]:
    listed = ",".join(str(k) for k in cutoffs)
    return {f"{family}.{listed}" for family in PYTREC_CUT} | set(PYTREC_UNCUT)


def evaluate_random(data: RandomJudgments, **kwargs) -> dict[str, dict[str, float]]:
    query_ids = list(data.run)
    rankings = [trec_order(data.run[q]) for q in query_ids]
    table = evaluate_rankings(query_ids, rankings, data.qrels_table(), **kwargs)
    return {row.pop("query_id"): row for row in table.to_pylist()}


@pytest.mark.parametrize(("seed", "graded"), [(1, True), (2, True), (3, False), (4, False)])
def test_every_pytrec_measure_matches_per_query(seed: int, graded: bool) -> None:
    data = random_judgments(seed, graded, query_count=250)
    ours = evaluate_random(data, k_values=CUTOFFS)
    theirs = pytrec_eval.RelevanceEvaluator(data.qrels, pytrec_measures()).evaluate(data.run)

    assert set(theirs) == set(data.run) & set(data.qrels)
    assert set(ours) == set(data.run)
    without_relevant = {q for q, judged in data.qrels.items() if max(judged.values()) < 1}
    assert without_relevant & set(theirs), "the data must cover queries without relevant documents"
    assert any(not data.run[q] for q in theirs), "the data must cover queries retrieving nothing"
    compared = 0
    for query, expected in theirs.items():
        assert set(expected) <= set(ours[query])
        for measure, value in expected.items():
            if query in without_relevant and measure not in ("num_ret", "num_rel", "num_rel_ret"):
                assert value == 0.0
                assert math.isnan(ours[query][measure]), (query, measure)
            else:
                assert ours[query][measure] == pytest.approx(value, abs=TOLERANCE), (query, measure)
            compared += 1
    assert compared == len(theirs) * (len(PYTREC_CUT) * len(CUTOFFS) + len(PYTREC_UNCUT))
    for query in set(data.run) - set(data.qrels):
        assert ours[query]["num_rel"] == 0.0
        assert math.isnan(ours[query]["P_5"])


@pytest.mark.parametrize(("seed", "graded"), [(5, True), (6, False)])
def test_f_beta_at_k_follows_pytrec_precision_and_recall(seed: int, graded: bool) -> None:
    data = random_judgments(seed, graded)
    ours = evaluate_random(data, k_values=CUTOFFS)
    theirs = pytrec_eval.RelevanceEvaluator(data.qrels, pytrec_measures()).evaluate(data.run)
    for query, expected in theirs.items():
        if math.isnan(ours[query]["F1_1"]):
            continue
        for k in CUTOFFS:
            p, r = expected[f"P_{k}"], expected[f"recall_{k}"]
            for name, beta in (("F1", 1.0), ("F2", 2.0)):
                b2 = beta * beta
                formula = (1 + b2) * p * r / (b2 * p + r) if p + r > 0 else 0.0
                assert ours[query][f"{name}_{k}"] == pytest.approx(formula, abs=TOLERANCE)
        p, r = expected["set_P"], expected["set_recall"]
        assert ours[query]["set_F2"] == pytest.approx(
            5 * p * r / (4 * p + r) if p + r > 0 else 0.0, abs=TOLERANCE
        )


@pytest.mark.parametrize(("seed", "graded"), [(7, True), (8, False)])
def test_mrr_at_k_is_pytrec_recip_rank_of_the_run_cut_at_k(seed: int, graded: bool) -> None:
    data = random_judgments(seed, graded)
    ours = evaluate_random(data, k_values=CUTOFFS)
    evaluator = pytrec_eval.RelevanceEvaluator(data.qrels, {"recip_rank"})
    for k in CUTOFFS:
        cut_run = {
            q: {d: scored[d] for d in trec_order(scored)[:k]} for q, scored in data.run.items()
        }
        for query, expected in evaluator.evaluate(cut_run).items():
            value = ours[query][f"recip_rank_cut_{k}"]
            if math.isnan(value):
                assert max(data.qrels[query].values()) < 1
            else:
                assert value == pytest.approx(expected["recip_rank"], abs=TOLERANCE)


def test_hand_computed_graded_query() -> None:
    qrels = pa.table(
        {
            "query_id": ["a"] * 5 + ["other"],
            "document_id": ["d1", "d2", "d3", "d4", "d5", "d1"],
            "relevance": [2, 0, 1, 3, -1, 3],
        }
    )
    table = evaluate_rankings(["a"], [["d1", "d2", "d3", "d5", "x"]], qrels, k_values=(1, 2, 5))
    row = table.to_pylist()[0]
    ideal_2 = 3 + 2 / math.log2(3)
    ideal_all = ideal_2 + 1 / math.log2(4)
    dcg_5 = 2 + 1 / math.log2(4)
    expected = {
        "P_1": 1.0,
        "P_2": 0.5,
        "P_5": 0.4,
        "recall_1": 1 / 3,
        "recall_5": 2 / 3,
        "F1_5": 2 * 0.4 * (2 / 3) / (0.4 + 2 / 3),
        "F2_1": 5 * 1 * (1 / 3) / (4 * 1 + 1 / 3),
        "map_cut_1": 1 / 3,
        "map_cut_2": 1 / 3,
        "map_cut_5": (1 + 2 / 3) / 3,
        "ndcg_cut_1": 2 / 3,
        "ndcg_cut_2": 2 / ideal_2,
        "ndcg_cut_5": dcg_5 / ideal_all,
        "recip_rank_cut_1": 1.0,
        "map": (1 + 2 / 3) / 3,
        "ndcg": dcg_5 / ideal_all,
        "recip_rank": 1.0,
        "set_P": 2 / 5,
        "set_recall": 2 / 3,
        "set_F": 2 * 0.4 * (2 / 3) / (0.4 + 2 / 3),
        "num_ret": 5.0,
        "num_rel": 3.0,
        "num_rel_ret": 2.0,
    }
    for measure, value in expected.items():
        assert row[measure] == pytest.approx(value, abs=1e-12), measure


def test_first_relevant_late_and_cutoffs_beyond_the_ranking() -> None:
    qrels = pa.table({"query_id": ["q"], "document_id": ["hit"], "relevance": [1]})
    row = evaluate_rankings(["q"], [["a", "b", "hit"]], qrels, k_values=(2, 3, 10)).to_pylist()[0]
    assert row["recip_rank_cut_2"] == 0.0
    assert row["recip_rank_cut_3"] == pytest.approx(1 / 3)
    assert row["P_10"] == pytest.approx(0.1)
    assert row["map_cut_2"] == 0.0
    assert row["map"] == pytest.approx(1 / 3)
    assert row["ndcg_cut_2"] == 0.0
    assert row["ndcg"] == pytest.approx(1 / math.log2(4))


def test_query_retrieving_nothing_scores_zero_and_one_without_relevant_is_nan() -> None:
    qrels = pa.table(
        {"query_id": ["q", "z"], "document_id": ["d", "d"], "relevance": [2, 0]},
        schema=pa.schema(
            [("query_id", pa.string()), ("document_id", pa.string()), ("relevance", pa.int8())]
        ),
    )
    table = evaluate_rankings(["q", "z", "unjudged"], [[], ["d"], None], qrels)
    empty, no_relevant, unjudged = table.to_pylist()
    assert {k: v for k, v in empty.items() if k != "query_id"} == {
        name: (1.0 if name == "num_rel" else 0.0) for name in measure_names()
    }
    for row, retrieved in ((no_relevant, 1.0), (unjudged, 0.0)):
        assert row["num_ret"] == retrieved and row["num_rel"] == 0.0 and row["num_rel_ret"] == 0.0
        assert all(math.isnan(row[name]) for name in measure_names() if not name.startswith("num"))


def test_a_repeated_document_counts_once_at_its_first_position() -> None:
    qrels = pa.table({"query_id": ["q", "q"], "document_id": ["r", "s"], "relevance": [1, 1]})
    row = evaluate_rankings(["q"], [["x", "r", "r", "x", "s"]], qrels, k_values=(3,)).to_pylist()[0]
    assert row["num_ret"] == 5.0
    assert row["num_rel_ret"] == 2.0
    assert row["P_3"] == pytest.approx(1 / 3)
    assert row["recall_3"] == pytest.approx(0.5)
    assert row["map"] == pytest.approx((1 / 2 + 2 / 5) / 2)
    assert row["recip_rank"] == pytest.approx(0.5)


def test_arrow_inputs_sliced_chunked_large_and_dictionary_encoded() -> None:
    data = random_judgments(9, graded=True)
    expected = evaluate_random(data)
    query_ids = list(data.run)
    rankings = pa.array(
        [["padding"]] + [trec_order(data.run[q]) for q in query_ids],
        type=pa.large_list(pa.large_string()),
    ).slice(1)
    qrels = data.qrels_table()
    qrels = pa.table(
        {
            "query_id": pa.chunked_array(
                [qrels.column("query_id").combine_chunks().dictionary_encode()]
            ),
            "document_id": qrels.column("document_id").cast(pa.large_string()),
            "relevance": qrels.column("relevance").cast(pa.int16()),
        }
    )
    table = evaluate_rankings(
        pa.chunked_array([pa.array(query_ids[:10]), pa.array(query_ids[10:])]), rankings, qrels
    )
    ours = {row.pop("query_id"): row for row in table.to_pylist()}
    assert ours.keys() == expected.keys()
    for query, row in ours.items():
        np.testing.assert_array_equal(list(row.values()), list(expected[query].values()))


def test_measures_selects_names_families_in_a_fixed_order() -> None:
    qrels = pa.table({"query_id": ["q"], "document_id": ["d"], "relevance": [1]})
    table = evaluate_rankings(
        ["q"], [["d"]], qrels, k_values=(10, 3), measures={"map", "ndcg_cut", "P_7", "P.2,7"}
    )
    assert table.column_names == ["query_id", "P_2", "P_7", "ndcg_cut_3", "ndcg_cut_10", "map"]
    assert measure_names(k_values=(1,)) == [f"{f}_1" for f in CUT_FAMILIES] + list(UNCUT_MEASURES)
    assert table.schema.field("map").type == pa.float64()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"measures": ["P_5", "bogus", "ndcg@5"]}, InvalidInputError, "'bogus', 'ndcg@5'"),
        ({"measures": ["P_0"]}, InvalidInputError, "cutoffs must be positive"),
        ({"measures": []}, InvalidInputError, "no measure was named"),
        ({"k_values": (5, 5)}, InvalidInputError, "repeats a cutoff"),
        ({"k_values": (0,)}, InvalidInputError, "not a positive integer"),
        ({"query_ids": ["q", "q"]}, ValueError, r"repeated ids \['q'\]"),
        ({"rankings": [["d"]]}, ValueError, "1 rankings for 2 query ids"),
        ({"rankings": [["d", None], []]}, ValueError, r"rankings\[0\] \(query 'q'\).*position 1"),
        ({"rankings": ["d", []]}, ValueError, "is a string"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, error: type[Exception], message: str) -> None:
    qrels = pa.table({"query_id": ["q"], "document_id": ["d"], "relevance": [1]})
    arguments = {"query_ids": ["q", "r"], "rankings": [["d"], []], "qrels": qrels} | kwargs
    with pytest.raises(error, match=message):
        evaluate_rankings(**arguments)


@pytest.mark.parametrize(
    ("qrels", "message"),
    [
        (pa.table({"query_id": ["q"], "document_id": ["d"]}), r"missing columns \['relevance'\]"),
        (
            pa.table({"query_id": ["q"], "document_id": ["d"], "relevance": [1.0]}),
            "qrels.relevance: type double is not an integer column",
        ),
        (
            pa.table({"query_id": ["q", None], "document_id": ["d", "e"], "relevance": [1, 1]}),
            "qrels.query_id: row 1 is null",
        ),
        (
            pa.table(
                {
                    "query_id": ["x", "q", "x", "q"],
                    "document_id": ["d", "d", "d", "d"],
                    "relevance": [1, 1, 0, 2],
                }
            ),
            "qrels row 3: query 'q' judges document 'd' again \\(also at row 1\\)",
        ),
    ],
)
def test_bad_qrels_are_named(qrels: pa.Table, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate_rankings(["q"], [["d"]], qrels)


def test_qrels_of_other_queries_may_repeat_and_are_ignored() -> None:
    qrels = pa.table(
        {"query_id": ["x", "x", "q"], "document_id": ["d", "d", "d"], "relevance": [1, 2, 1]}
    )
    row = evaluate_rankings(["q"], [["d"]], qrels, measures=["num_rel", "P_1"]).to_pylist()[0]
    assert row == {"query_id": "q", "P_1": 1.0, "num_rel": 1.0}
