"""The trec_eval_files benchmark (issue 14 point 4) at a tiny scale: it runs, checks every value, and
its checks catch a layout or a query that scores differently."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from perf import trec_eval_files
from perf.ground_truth import QUERIES, write_trec_files
from perf.harness import CorrectnessError

REPEAT = 1


def test_both_layouts_are_measured_and_every_value_checked(tmp_path: Path) -> None:
    result = trec_eval_files.run("tiny", REPEAT, tmp_path)
    names = [
        f"{tool}, {layout}"
        for layout in trec_eval_files.LAYOUTS
        for tool in ("eval-pipelines", "eval-pipelines -q", "eval-pipelines CLI", "pytrec_eval")
    ]
    assert [c.name for c in result.contenders] == names
    assert all(len(c.seconds) == REPEAT for c in result.contenders)
    assert result.checks["layouts"]["identical_across_layouts"]
    for layout in trec_eval_files.LAYOUTS:
        check = result.checks[f"pytrec_eval, {layout}"]
        assert check["queries_compared"] == QUERIES["tiny"]
        assert check["max_abs_difference"] <= trec_eval_files.TOLERANCE
    assert len(result.targets) == 2
    assert set(result.ratios()["eval-pipelines, shuffled"]) == {
        "eval-pipelines -q, shuffled",
        "eval-pipelines CLI, shuffled",
        "pytrec_eval, shuffled",
    }
    shuffled = (tmp_path / "run-shuffled.txt").read_bytes().splitlines()
    assert sorted(shuffled) == sorted((tmp_path / "run.txt").read_bytes().splitlines())
    assert shuffled != (tmp_path / "run.txt").read_bytes().splitlines()


def test_the_checks_reject_a_wrong_value_and_a_layout_that_differs(tmp_path: Path) -> None:
    qrels_path, run_path = write_trec_files(tmp_path, 30, seed=3)
    ours = trec_eval_files.trec_eval(qrels_path, run_path, per_query=True)
    theirs = trec_eval_files.pytrec_eval_scores(qrels_path, run_path)
    assert trec_eval_files.check_against_pytrec_eval(ours, theirs)["max_abs_difference"] <= 1e-9
    wrong = copy.deepcopy(theirs)
    wrong[next(iter(wrong))]["ndcg_cut_10"] += 1e-6
    with pytest.raises(CorrectnessError, match="ndcg_cut_10 differs"):
        trec_eval_files.check_against_pytrec_eval(ours, wrong)
    means = {"all": ours["all"]}
    outputs = {
        f"{tool}, {layout}": ours if tool.endswith("-q") else means
        for layout in trec_eval_files.LAYOUTS
        for tool in ("eval-pipelines", "eval-pipelines -q", "eval-pipelines CLI")
    }
    assert trec_eval_files.check_layouts_agree(outputs)["identical_across_layouts"]
    outputs["eval-pipelines, shuffled"] = {"all": {**ours["all"], "map": -1.0}}
    with pytest.raises(CorrectnessError, match="scored differently"):
        trec_eval_files.check_layouts_agree(outputs)
