"""A panel of candidate rankings whose true order is known from the demo's grades, scored against a
dataset derived from the logs and against the truth, to measure how well the two orderings agree."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy.stats import kendalltau

from eval_pipelines.core.demo.catalog import TRUTH_FILE
from eval_pipelines.core.demo.world import GRADES_FILE, INTENTS_FILE
from eval_pipelines.core.metrics.ground_truth import evaluate_rankings
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.query_keys import normalized_text
from eval_pipelines.core.retrieval.registry import open_retriever
from eval_pipelines.core.storage import parquet_files

K = 10
NOISE_SHARES = (0.2, 0.4, 0.6, 0.8)
# Below this share of its top 10 judged, a candidate is mostly scored on documents the logs never
# showed enough (they count as grade 0), which says nothing about them.
JUDGEABLE_AT_10 = 0.8
RETRIEVERS = ("demo_prod", "demo_better", "demo_worse")


@dataclass(frozen=True)
class PanelResult:
    """Per candidate: mean NDCG@10 against the derived dataset and against the truth, judged@10."""

    candidates: list[str]
    derived_ndcg: list[float]
    true_ndcg: list[float]
    judged_at_10: list[float]
    usable_queries: int
    derived_queries: int
    tau: float

    @property
    def judgeable_tau(self) -> float:
        """Tau over the candidates whose top 10 is mostly judged."""
        keep = [i for i, share in enumerate(self.judged_at_10) if share >= JUDGEABLE_AT_10]
        derived = [self.derived_ndcg[i] for i in keep]
        return float(kendalltau(derived, [self.true_ndcg[i] for i in keep]).statistic)

    def table(self) -> str:
        lines = [f"{'candidate':<16} {'derived':>8} {'true':>8} {'judged@10':>10}"]
        for row in zip(
            self.candidates, self.derived_ndcg, self.true_ndcg, self.judged_at_10, strict=True
        ):
            lines.append(f"{row[0]:<16} {row[1]:8.4f} {row[2]:8.4f} {row[3]:10.3f}")
        lines.append(
            f"Kendall tau {self.tau:.3f} over {self.usable_queries} usable queries"
            f" ({self.derived_queries} derived); {self.judgeable_tau:.3f} over the candidates"
            f" with judged@10 >= {JUDGEABLE_AT_10}"
        )
        return "\n".join(lines)


def _served_pools(paths: DataPaths) -> dict[str, set[str]]:
    """Every document ever served per normalized query text."""
    files = parquet_files(paths.log_table_dir("executions"))
    table = pa.concat_tables([pq.read_table(f, columns=["query_text", "documents"]) for f in files])
    keys = normalized_text(table.column("query_text")).to_pylist()
    pools: dict[str, set[str]] = {}
    for key, documents in zip(keys, table.column("documents").to_pylist(), strict=True):
        pools.setdefault(key, set()).update(documents)
    return pools


def _truth(paths: DataPaths) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Normalized query text -> intent id (texts shared by two intents are left out), and grades."""
    intents = pq.read_table(paths.demo_dir / INTENTS_FILE)
    keys = normalized_text(intents.column("query_text")).to_pylist()
    counts: dict[str, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    intent_of = {
        key: intent
        for key, intent in zip(keys, intents.column("intent_id").to_pylist(), strict=True)
        if counts[key] == 1
    }
    grades = pq.read_table(paths.demo_dir / GRADES_FILE)
    graded: dict[str, dict[str, int]] = {}
    for intent, document, grade in zip(
        grades.column("intent_id").to_pylist(),
        grades.column("document_id").to_pylist(),
        grades.column("grade").to_pylist(),
        strict=True,
    ):
        graded.setdefault(intent, {})[document] = int(grade)
    return intent_of, graded


def _noisy(
    ranking: list[str], pool_by_grade: list[str], grade: dict[str, int], share: float, rng, filler
) -> list[str]:
    """The ranking with a share of its top K swapped for lower-graded documents."""
    noisy = list(ranking[:K])
    positions = rng.choice(len(noisy), size=round(share * len(noisy)), replace=False)
    used = set(noisy)
    for position in sorted(positions):
        current = grade.get(noisy[position], 0)
        lower = [d for d in pool_by_grade if grade.get(d, 0) < current and d not in used]
        replacement = lower[int(rng.integers(len(lower)))] if lower else next(filler)
        used.add(replacement)
        noisy[position] = replacement
    return noisy


def run_panel(
    paths: DataPaths, queries: pa.Table, judgments: pa.Table, seed: int = 7
) -> PanelResult:
    """Score the panel on the derived queries that map to one intent and have relevant documents in
    both the derived judgments and the truth; tau between the two orderings of candidates."""
    intent_of, graded = _truth(paths)
    pools = _served_pools(paths)
    relevant = pc.greater_equal(judgments.column("relevance"), 1)
    with_relevant = set(judgments.filter(relevant).column("query_id").to_pylist())
    usable = [
        (query_id, text)
        for query_id, text in zip(
            queries.column("query_id").to_pylist(),
            normalized_text(queries.column("query_text")).to_pylist(),
            strict=True,
        )
        if query_id in with_relevant
        and text in intent_of
        and any(g >= 1 for g in graded.get(intent_of[text], {}).values())
    ]
    catalog = pq.read_table(paths.demo_dir / TRUTH_FILE, columns=["document_id"])
    catalog_ids = catalog.column("document_id").to_pylist()
    rng = np.random.default_rng(seed)
    rankings: dict[str, list[list[str]]] = {"truth": [], "reversed": []}
    rankings.update({f"noise_{share:.0%}": [] for share in NOISE_SHARES})
    truth_rows: list[tuple[str, str, int]] = []
    for query_id, key in usable:
        grade = graded[intent_of[key]]
        truth_rows += [(query_id, d, g) for d, g in grade.items()]
        by_grade = sorted(pools.get(key, ()), key=lambda d: (-grade.get(d, 0), d))
        rankings["truth"].append(by_grade[:K])
        rankings["reversed"].append(by_grade[::-1][:K])
        filler = (d for d in rng.permutation(catalog_ids) if d not in grade)
        for share in NOISE_SHARES:
            rankings[f"noise_{share:.0%}"].append(
                _noisy(by_grade, by_grade, grade, share, rng, filler)
            )
    texts = dict(
        zip(
            queries.column("query_id").to_pylist(),
            queries.column("query_text").to_pylist(),
            strict=True,
        )
    )
    for retriever_id in RETRIEVERS:
        with open_retriever(paths, retriever_id) as retriever:
            executions = retriever.search_many([{"text": texts[q]} for q, _ in usable], limit=K)
        rankings[retriever_id] = [[d.document_id for d in e.documents] for e in executions]

    truth = pa.table(
        {
            "query_id": [r[0] for r in truth_rows],
            "document_id": [r[1] for r in truth_rows],
            "relevance": pa.array([r[2] for r in truth_rows], pa.int32()),
        }
    )
    query_ids = [q for q, _ in usable]
    judged_pairs = set(
        zip(
            judgments.column("query_id").to_pylist(),
            judgments.column("document_id").to_pylist(),
            strict=True,
        )
    )
    names, derived_means, true_means, judged = [], [], [], []
    for name, lists in rankings.items():
        names.append(name)
        derived_means.append(_mean_ndcg(query_ids, lists, judgments))
        true_means.append(_mean_ndcg(query_ids, lists, truth))
        shown = [(q, d) for q, ranking in zip(query_ids, lists, strict=True) for d in ranking[:K]]
        judged.append(sum(pair in judged_pairs for pair in shown) / max(1, len(query_ids) * K))
    tau = float(kendalltau(derived_means, true_means).statistic)
    return PanelResult(names, derived_means, true_means, judged, len(usable), queries.num_rows, tau)


def _mean_ndcg(query_ids: list[str], rankings: list[list[str]], qrels: pa.Table) -> float:
    scores = evaluate_rankings(query_ids, rankings, qrels, k_values=[K], measures=["ndcg_cut"])
    values = scores.column(f"ndcg_cut_{K}").to_numpy(zero_copy_only=False)
    return float(np.nanmean(values))
