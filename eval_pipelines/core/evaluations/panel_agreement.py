"""How a dataset orders the demo's panel of candidates (core/demo/panel.py) against the true grades.

Each candidate is scored with NDCG@10 against the dataset on plain lists (unjudged = grade 0) and on
condensed lists (unjudged documents removed first, trec_eval -J), and against the demo's hidden
grades; Kendall tau compares the orderings. judged@10 says how much of each candidate's top 10 the
dataset judges, shown@10 how much of it the logs ever served for the query. The logs cannot judge a
candidate whose shown@10 is below the benchmarks' min_coverage (DEFAULT_MIN_COVERAGE, 0.9: more
than one document per page nobody was shown): it is reported but left out of tau, by the same rule
that makes a benchmark call it not_testable (the rule reads the logs only, never the truth).
judged@10 does not decide it: a minimum of evidence leaves documents that were shown, but rarely,
unjudged too. aa_copy is left out as well: its rankings are demo_prod's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy.stats import kendalltau

from eval_pipelines.core.benchmarks.estimators import DEFAULT_MIN_COVERAGE
from eval_pipelines.core.click_model import load_or_fit, query_document_evidence
from eval_pipelines.core.demo.panel import (
    GRADES_FILE,
    INTENTS_FILE,
    build_panel,
    engine_rankings,
    prod_rankings,
    query_truths,
    true_ndcg_at_10,
)
from eval_pipelines.core.metrics.alignment import DEFAULT_INTERACTION_WEIGHTS, counted_types
from eval_pipelines.core.metrics.ground_truth import evaluate_rankings
from eval_pipelines.core.paths import DataPaths

K = 10
# Candidates whose true NDCG@10 differ by no more than this are as good as tied: the benchmarks'
# own epsilon (a per-session difference smaller than 0.01 is neutral), and the derived dataset is a
# noisy measurement that flips such near-ties by chance.
TRUE_GAP = 0.01
SAME_AS_BASELINE = ("aa_copy",)
ENGINES = ("demo_better", "demo_worse")


@dataclass(frozen=True)
class CandidateAgreement:
    """One candidate's mean NDCG@10 on plain and condensed lists, its true NDCG@10, judged@10."""

    name: str
    truth: str
    plain: float
    condensed: float
    true: float
    judged_at_10: float
    shown_at_10: float
    in_tau: bool


@dataclass(frozen=True)
class PanelAgreement:
    """The panel scored against a dataset and the truth, with tau plain and condensed."""

    candidates: list[CandidateAgreement]
    usable_queries: int
    dataset_queries: int

    def tau(self, condensed: bool, distinct: bool = False) -> float:
        """Kendall tau (tau-b) between dataset and true NDCG@10 over the candidates in tau.

        Ties in the truth (demo_prod and the equal reorderings) cap tau-b below 1 (0.91 with four
        tied among nine); distinct keeps the first candidate of each true value only.
        """
        kept = [c for c in self.candidates if c.in_tau]
        if distinct:
            kept = list({round(c.true, 12): c for c in reversed(kept)}.values())[::-1]
        derived = [c.condensed if condensed else c.plain for c in kept]
        return float(kendalltau(derived, [c.true for c in kept]).statistic)

    def pairwise(self, condensed: bool, gap: float = TRUE_GAP) -> tuple[float, int]:
        """(concordant - discordant) / pairs over the pairs in tau whose truths differ by more than
        gap (Kendall's tau-a on those pairs), and the number of pairs."""
        kept = [c for c in self.candidates if c.in_tau]
        signs = []
        for i, first in enumerate(kept):
            for second in kept[i + 1 :]:
                if abs(first.true - second.true) > gap:
                    derived = (
                        first.condensed - second.condensed
                        if condensed
                        else first.plain - second.plain
                    )
                    signs.append(np.sign(derived) * np.sign(first.true - second.true))
        return (float(np.mean(signs)) if signs else float("nan")), len(signs)

    def equal_spread(self, condensed: bool) -> float:
        """The largest gap, either way, between demo_prod and a candidate of the same true
        NDCG@10 (the equal reorderings): a dataset that grades the same documents alike wherever
        they were served leaves it near 0."""
        base = self.candidates[0]
        gaps = [
            (c.condensed - base.condensed) if condensed else (c.plain - base.plain)
            for c in self.candidates[1:]
            if abs(c.true - base.true) <= 1e-12
        ]
        return float(max(gaps, key=abs)) if gaps else 0.0

    def tau_ceiling(self) -> float:
        """The largest tau-b any scores without ties could reach, given the ties in the truth."""
        return _tau_b_ceiling([c.true for c in self.candidates if c.in_tau])

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": [asdict(c) for c in self.candidates],
            "usable_queries": self.usable_queries,
            "dataset_queries": self.dataset_queries,
            "min_shown_at_10": DEFAULT_MIN_COVERAGE,
            "tau_ceiling": self.tau_ceiling(),
            "tau_plain": self.tau(condensed=False),
            "tau_condensed": self.tau(condensed=True),
            "tau_plain_distinct_truths": self.tau(condensed=False, distinct=True),
            "true_gap": TRUE_GAP,
            "pairwise_plain": self.pairwise(condensed=False)[0],
            "pairwise_condensed": self.pairwise(condensed=True)[0],
            "pairwise_pairs": self.pairwise(condensed=True)[1],
            "equal_spread_plain": self.equal_spread(condensed=False),
            "equal_spread_condensed": self.equal_spread(condensed=True),
            "tau_condensed_distinct_truths": self.tau(condensed=True, distinct=True),
        }

    def table(self) -> str:
        lines = [
            f"{'candidate':<24} {'truth':<14} {'plain':>7} {'condensed':>9} {'true':>7}"
            f" {'judged@10':>9} {'shown@10':>8}  in tau"
        ]
        for c in self.candidates:
            lines.append(
                f"{c.name:<24} {c.truth:<14} {c.plain:7.4f} {c.condensed:9.4f} {c.true:7.4f}"
                f" {c.judged_at_10:9.3f} {c.shown_at_10:8.3f}  {'yes' if c.in_tau else 'no'}"
            )
        lines.append(
            f"Kendall tau plain {self.tau(False):.3f}, condensed {self.tau(True):.3f} over"
            f" {sum(c.in_tau for c in self.candidates)} candidates (shown@10 >="
            f" {DEFAULT_MIN_COVERAGE}; ties in the truth cap it at {self.tau_ceiling():.3f}) and {self.usable_queries} usable queries"
            f" ({self.dataset_queries} in the dataset); over distinct truths plain"
            f" {self.tau(False, True):.3f}, condensed {self.tau(True, True):.3f}; over the"
            f" {self.pairwise(True)[1]} pairs whose truths differ by more than {TRUE_GAP}: plain"
            f" {self.pairwise(False)[0]:.3f}, condensed {self.pairwise(True)[0]:.3f}. Equal"
            f" reorderings off demo_prod by up to {self.equal_spread(False):+.4f} plain,"
            f" {self.equal_spread(True):+.4f} condensed"
        )
        return "\n".join(lines)


def _tau_b_ceiling(true: list[float]) -> float:
    n = len(true)
    pairs = n * (n - 1) / 2
    _, counts = np.unique(np.round(true, 12), return_counts=True)
    tied = float((counts * (counts - 1) / 2).sum())
    return (pairs - tied) / np.sqrt(pairs * (pairs - tied)) if pairs > tied else float("nan")


def usable_queries(paths: DataPaths, queries: pa.Table, judgments: pa.Table) -> pa.Table:
    """The dataset's queries whose text is exactly one demo intent's and that have a judgment of
    grade >= 1 (an evaluation skips the others); columns query_id, query_text."""
    intents = pq.read_table(str(paths.demo_dir / INTENTS_FILE), columns=["query_text"])
    counts = intents.group_by("query_text").aggregate([("query_text", "count")])
    single = counts.filter(pc.equal(counts.column("query_text_count"), 1)).column("query_text")
    relevant = judgments.filter(pc.greater_equal(judgments.column("relevance"), 1))
    keep = pc.and_(
        pc.is_in(queries.column("query_text"), value_set=single),
        pc.is_in(queries.column("query_id"), value_set=pc.unique(relevant.column("query_id"))),
    )
    return queries.filter(keep).select(["query_id", "query_text"])


def score_panel(paths: DataPaths, queries: pa.Table, judgments: pa.Table) -> PanelAgreement:
    """The issue's panel (plus demo_better and demo_worse) over the usable queries of a dataset."""
    usable = usable_queries(paths, queries, judgments)
    query_ids = usable.column("query_id").to_pylist()
    texts = usable.column("query_text").to_pylist()
    weights = dict(DEFAULT_INTERACTION_WEIGHTS)
    evidence = query_document_evidence(
        paths,
        load_or_fit(paths),
        weights,
        counted_types(None, weights),
        pa.array(texts, pa.string()),
    )
    prod = prod_rankings(paths, texts)
    truths = query_truths(paths, texts, evidence)
    engines = {name: engine_rankings(paths, name, texts) for name in ENGINES}
    panel = [c for c in build_panel(prod, truths, engines) if c.name not in SAME_AS_BASELINE]
    candidates = [("demo_prod", "baseline", prod)] + [(c.name, c.truth, c.rankings) for c in panel]
    scored = []
    for name, truth, rankings in candidates:
        lists = [rankings[text] for text in texts]
        plain = _means(query_ids, lists, judgments, judged_only=False)
        condensed = _means(query_ids, lists, judgments, judged_only=True)
        true = float(np.mean([true_ndcg_at_10(rankings[t], truths[t]) for t in texts]))
        judged_at_10 = plain[f"judged_{K}"]
        shown = float(
            np.mean([sum(d in truths[t].ever_shown for d in rankings[t][:K]) / K for t in texts])
        )
        scored.append(
            CandidateAgreement(
                name=name,
                truth=truth,
                plain=plain[f"ndcg_cut_{K}"],
                condensed=condensed[f"ndcg_cut_{K}"],
                true=true,
                judged_at_10=judged_at_10,
                shown_at_10=shown,
                in_tau=shown >= DEFAULT_MIN_COVERAGE,
            )
        )
    return PanelAgreement(scored, len(query_ids), queries.num_rows)


def true_grades_of(paths: DataPaths, queries: pa.Table, judgments: pa.Table) -> pa.Table:
    """The same judged pairs with their true grades (0 where the demo grades none): scoring the
    panel against them separates what the judged set allows from what the derived grades add."""
    intents = pq.read_table(str(paths.demo_dir / INTENTS_FILE), columns=["intent_id", "query_text"])
    grades = pq.read_table(
        str(paths.demo_dir / GRADES_FILE), columns=["intent_id", "document_id", "grade"]
    )
    intent_of = queries.select(["query_id", "query_text"]).join(intents, "query_text")
    graded = grades.join(intent_of.select(["query_id", "intent_id"]), "intent_id")
    joined = judgments.select(["query_id", "document_id"]).join(
        graded.select(["query_id", "document_id", "grade"]),
        ["query_id", "document_id"],
        join_type="left outer",
    )
    return pa.table(
        {
            "query_id": joined.column("query_id"),
            "document_id": joined.column("document_id"),
            "relevance": pc.fill_null(joined.column("grade"), 0).cast(pa.int32()),
        }
    )


def _means(
    query_ids: list[str], lists: list[list[str]], judgments: pa.Table, judged_only: bool
) -> dict[str, float]:
    table = evaluate_rankings(
        query_ids,
        lists,
        judgments,
        k_values=[K],
        measures=["ndcg_cut", "judged"],
        judged_only=judged_only,
    )
    return {
        name: float(np.nanmean(table.column(name).to_numpy(zero_copy_only=False)))
        for name in table.column_names[1:]
    }
