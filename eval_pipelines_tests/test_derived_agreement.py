"""Evaluation agreement (issue 13, point 5's proof) on the small demo world: a dataset derived from the
logs with the defaults scores the issue's panel (core/demo/panel.py) in the order of the true grades.

What is asserted is what the small world (90 usable queries) shows reliably; the numbers on the full
world are in the README. Strict Kendall tau-b stays below the issue's 0.9 target: four candidates
share demo_prod's true NDCG@10 (tau-b cannot pass 0.913 then), and pairs whose truths differ by
less than 0.01 flip by chance.
"""

from __future__ import annotations

import pytest

from eval_pipelines.core.datasets import load_dataset
from eval_pipelines.core.datasets.from_logs import (
    DEFAULT_MIN_EXPOSURE,
    DEFAULT_MIN_IMPRESSIONS,
    derive_dataset,
)
from eval_pipelines.core.evaluations.panel_agreement import (
    PanelAgreement,
    score_panel,
    true_grades_of,
)
from eval_pipelines.core.paths import DataPaths


@pytest.fixture(scope="module")
def agreements(module_world_copy: DataPaths) -> tuple[PanelAgreement, PanelAgreement]:
    """The panel against the derived dataset, and against the same pairs with their true grades."""
    summary = derive_dataset(module_world_copy, "from-logs")
    facts = summary.derivation or {}
    assert (facts["min_impressions"], facts["min_exposure"]) == (
        DEFAULT_MIN_IMPRESSIONS,
        DEFAULT_MIN_EXPOSURE,
    )
    assert facts["pairs_below_minimum"] == (
        facts["pairs_below_min_impressions"] + facts["pairs_below_min_exposure"]
    )
    dataset = load_dataset(module_world_copy, "from-logs")
    result = score_panel(module_world_copy, dataset.queries, dataset.judgments)
    truth = true_grades_of(module_world_copy, dataset.queries, dataset.judgments)
    same_pairs = score_panel(module_world_copy, dataset.queries, truth)
    print("\n" + result.table() + "\nthe same pairs, true grades:\n" + same_pairs.table())
    return result, same_pairs


@pytest.fixture(scope="module")
def agreement(agreements: tuple[PanelAgreement, PanelAgreement]) -> PanelAgreement:
    return agreements[0]


def test_the_logs_cannot_judge_candidates_of_never_shown_documents(
    agreement: PanelAgreement,
) -> None:
    assert agreement.usable_queries >= 50
    excluded = {c.name for c in agreement.candidates if not c.in_tau}
    # The rule reads shown@10 (what the logs ever served) only; the truth classes agree with it.
    assert excluded == {"better_never_shown", "demo_worse"}, agreement.table()
    for candidate in agreement.candidates:
        assert 0.0 <= candidate.judged_at_10 <= candidate.shown_at_10 + 1e-12


def test_equal_reorderings_score_alike_on_condensed_lists(agreement: PanelAgreement) -> None:
    # The floor on exposure grades documents served deep from as much evidence as those served at
    # the top; with a floor on impressions alone, the reordering of the top 24 lost 0.035.
    assert abs(agreement.equal_spread(condensed=True)) <= 0.02, agreement.table()
    # On plain lists the same documents, unjudged where they had too little exposure, count as 0.
    assert agreement.equal_spread(condensed=False) < -0.1, agreement.table()


def test_condensed_lists_order_the_panel_as_the_truth(agreement: PanelAgreement) -> None:
    pairwise, pairs = agreement.pairwise(condensed=True)
    assert pairs >= 25
    assert pairwise >= 0.85, agreement.table()
    assert agreement.tau(condensed=True) > agreement.tau(condensed=False), agreement.table()
    assert agreement.tau(condensed=True, distinct=True) >= 0.7, agreement.table()
    by_name = {c.name: c for c in agreement.candidates}
    prod = by_name["demo_prod"]
    for name in ("better_from_below", "better_rarely_shown", "demo_better"):
        assert by_name[name].condensed > prod.condensed, agreement.table()
    assert by_name["worse_demoted"].condensed < prod.condensed - 0.1, agreement.table()


def test_the_derived_grades_order_the_panel_as_well_as_the_true_grades_of_the_same_pairs(
    agreements: tuple[PanelAgreement, PanelAgreement],
) -> None:
    # What keeps tau below the target is which pairs are judged (and condensing), not the grades
    # the logs give them: the true grades of the same pairs do no better.
    derived, same_pairs = agreements
    assert derived.tau(condensed=True) >= same_pairs.tau(condensed=True) - 0.05
    assert derived.pairwise(condensed=True)[0] >= same_pairs.pairwise(condensed=True)[0] - 0.05
