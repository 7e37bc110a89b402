"""The trec-eval command's core: measure names, and whole files against pytrec_eval."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytrec_eval

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.trec_eval import TREC_EVAL_CUTOFFS, parse_measures, trec_eval
from eval_pipelines_tests.core.metrics.test_ground_truth import (
    PYTREC_CUT,
    PYTREC_UNCUT,
    RandomJudgments,
    random_judgments,
)

COUNTS = ("num_ret", "num_rel", "num_rel_ret")
SEPARATORS = (" ", "\t", "  ", " \t ")


def write_files(data: RandomJudgments, directory: Path, seed: int) -> tuple[Path, Path]:
    """qrels and run files in shuffled line order with mixed separators and line endings."""
    rng = np.random.default_rng(seed)

    def line(fields: list[str]) -> str:
        separators = rng.choice(SEPARATORS, size=len(fields) - 1)
        text = fields[0] + "".join(s + f for s, f in zip(separators, fields[1:], strict=True))
        return text + ("\r\n" if rng.random() < 0.2 else "\n")

    qrels_lines = [
        line([q, "0", d, str(g)]) for q, judged in data.qrels.items() for d, g in judged.items()
    ]
    run_lines = [
        line([q, "Q0", d, "0", repr(s), "tag"])
        for q, scored in data.run.items()
        for d, s in scored.items()
    ]
    qrels_path, run_path = directory / "qrels.txt", directory / "run.txt"
    qrels_path.write_text("".join(rng.permutation(qrels_lines)), encoding="utf-8")
    run_path.write_text("".join(rng.permutation(run_lines)), encoding="utf-8")
    return qrels_path, run_path


def test_parse_measures_names_families_and_defaults() -> None:
    assert parse_measures(["P_5", "map"]) == ["P_5", "map"]
    assert parse_measures(["ndcg_cut"]) == [f"ndcg_cut_{k}" for k in TREC_EVAL_CUTOFFS]
    assert parse_measures(["recall.100,3", "set_F", "F2"])[:2] == ["recall_3", "recall_100"]
    assert parse_measures(["map", "map", "P_5", "P.5"]) == ["P_5", "map"]
    default = parse_measures(None)
    assert default[:4] == ["P_1", "P_5", "P_10", "P_20"]
    assert {"F1_10", "F2_20", "map_cut_5", "ndcg_cut_10", "recall_1"} <= set(default)
    assert default[-6:] == ["map", "ndcg", "recip_rank", "set_P", "set_recall", "set_F"]
    assert len(default) == 6 * 4 + 6


def test_unknown_measures_are_all_named_with_the_valid_ones() -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_measures(["P_5", "bpref", "ndcg@10"])
    message = str(caught.value)
    assert "'bpref', 'ndcg@10'" in message
    assert "ndcg_cut" in message and "set_recall" in message


@pytest.mark.parametrize(("seed", "graded"), [(21, True), (22, False)])
def test_files_match_pytrec_eval_per_query_and_overall(
    tmp_path: Path, seed: int, graded: bool
) -> None:
    data = random_judgments(seed, graded)
    qrels_path, run_path = write_files(data, tmp_path, seed)
    cutoffs = (1, 3, 5, 10, 20)
    listed = ",".join(map(str, cutoffs))
    names = [f"{family}.{listed}" for family in PYTREC_CUT] + list(PYTREC_UNCUT)
    ours = trec_eval(qrels_path, run_path, names, per_query=True)
    in_file = {query: scored for query, scored in data.run.items() if scored}
    theirs = pytrec_eval.RelevanceEvaluator(
        data.qrels, {f"{family}.{listed}" for family in PYTREC_CUT} | set(PYTREC_UNCUT)
    ).evaluate(in_file)

    assert set(ours["per_query"]) == set(theirs) == set(in_file) & set(data.qrels)
    for query, expected in theirs.items():
        assert ours["per_query"][query].keys() == expected.keys()
        for measure, value in expected.items():
            assert ours["per_query"][query][measure] == pytest.approx(value, abs=1e-9), (
                query,
                measure,
            )
    for measure in ours["all"]:
        values = [theirs[q][measure] for q in theirs]
        expected = sum(values) if measure in COUNTS else float(np.mean(values))
        assert ours["all"][measure] == pytest.approx(expected, abs=1e-9), measure
    assert all(isinstance(ours["all"][c], int) for c in COUNTS)
    without_relevant = [q for q in theirs if max(data.qrels[q].values()) < 1]
    assert without_relevant and all(ours["per_query"][q]["P_5"] == 0.0 for q in without_relevant)


def test_default_measures_and_no_per_query_section(tmp_path: Path) -> None:
    data = random_judgments(23, graded=True, query_count=20)
    qrels_path, run_path = write_files(data, tmp_path, 23)
    result = trec_eval(qrels_path, run_path)
    assert list(result) == ["all"]
    assert list(result["all"]) == parse_measures(None)
    assert all(0.0 <= v <= 1.0 for v in result["all"].values())


def test_no_query_in_both_files_is_an_input_error(tmp_path: Path) -> None:
    qrels = tmp_path / "qrels"
    run = tmp_path / "run"
    qrels.write_text("q1 0 d1 1\n")
    run.write_text("q2 Q0 d1 1 1.0 t\n")
    with pytest.raises(InvalidInputError, match="none of its 1 queries has judgments"):
        trec_eval(qrels, run)


def test_problems_in_both_files_are_reported_together(tmp_path: Path) -> None:
    qrels = tmp_path / "qrels"
    run = tmp_path / "run"
    qrels.write_text("q1 0 d1 yes\n")
    run.write_text("q1 Q0 d1 1 1.0 t\nq1 Q0 d2 2\n")
    with pytest.raises(InvalidInputError) as caught:
        trec_eval(qrels, run, ["P_5"])
    message = str(caught.value)
    assert f"{qrels}:1: relevance 'yes' is not an integer" in message
    assert f"{run}:2: expected 6 columns" in message
