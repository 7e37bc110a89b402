"""Candidates whose true quality is known, built from the demo's grades, to measure estimators by.

Each candidate is a ranking per query text derived from demo_prod's, so its true NDCG@10 against
the hidden grades is known and so is which of its documents the logs ever showed:
- truly equal: documents of equal true grade reordered within prod's top d (d = 4, 12, 24);
- truly better from evidence: higher-graded documents users were shown for the query (prod's own
  positions 11-24, or only by the earlier ranker: rarely shown) swapped into the top 10;
- not judgeable: higher-graded documents nobody was ever shown for the query swapped in (three, or
  one: enough coverage to be tested, never enough evidence to be called worse);
- truly worse: the best documents of the top 10 swapped out for lower-graded ones users were shown;
- the A/A copy (prod itself).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from eval_pipelines.core.demo.retrievers import PROD
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.query_keys import normalized_text
from eval_pipelines.core.retrieval.registry import open_retriever

INTENTS_FILE, GRADES_FILE = "intents.parquet", "grades.parquet"
TOP = 10
SERVED = 24
SWAPS = 3

EQUAL = "truly_equal"
BETTER = "truly_better"
NOT_JUDGEABLE = "not_judgeable"
WORSE = "truly_worse"
SAME = "same"


@dataclass(frozen=True)
class PanelCandidate:
    """A candidate's name, its truth class, and its ranking for each query text."""

    name: str
    truth: str
    rankings: dict[str, list[str]]


@dataclass(frozen=True)
class QueryTruth:
    """One query's true grades (0 when absent) and the documents ever shown for it."""

    grades: dict[str, int]
    ever_shown: frozenset[str]

    def grade(self, document_id: str) -> int:
        return self.grades.get(document_id, 0)


def engine_rankings(
    paths: DataPaths, retriever_id: str, texts: Sequence[str], depth: int = 100
) -> dict[str, list[str]]:
    """A configured retriever's ranking of each text, through the real engine."""
    with open_retriever(paths, retriever_id) as retriever:
        executions = retriever.search_many([{"text": t} for t in texts])
    return {
        text: [d.document_id for d in execution.documents[:depth]]
        for text, execution in zip(texts, executions, strict=True)
    }


def query_truths(
    paths: DataPaths, texts: Iterable[str], evidence: pa.Table
) -> dict[str, QueryTruth]:
    """True grades (from the demo's hidden truth) and the ever-shown set (from the logs)."""
    wanted = sorted(set(texts))
    intents = pq.read_table(str(paths.demo_dir / INTENTS_FILE), columns=["intent_id", "query_text"])
    intents = intents.filter(pc.is_in(intents.column("query_text"), pa.array(wanted)))
    grades = pq.read_table(str(paths.demo_dir / GRADES_FILE))
    grades = grades.filter(pc.is_in(grades.column("intent_id"), intents.column("intent_id")))
    joined = grades.join(intents, "intent_id").select(["query_text", "document_id", "grade"])
    by_text: dict[str, dict[str, int]] = {t: {} for t in wanted}
    for text, document, grade in zip(
        *(joined.column(c).to_pylist() for c in joined.column_names), strict=True
    ):
        by_text[text][document] = int(grade)
    keys = normalized_text(pa.array(wanted, pa.string())).to_pylist()
    shown: dict[str, set[str]] = {}
    for key, document in zip(
        evidence.column("query_key").to_pylist(),
        evidence.column("document_id").to_pylist(),
        strict=True,
    ):
        shown.setdefault(key, set()).add(document)
    return {
        text: QueryTruth(by_text[text], frozenset(shown.get(key, set())))
        for text, key in zip(wanted, keys, strict=True)
    }


def _rng(text: str, name: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{name}\x1f{text}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def equal_reordering(
    prod: list[str], truth: QueryTruth, depth: int, rng: np.random.Generator
) -> list[str]:
    """Documents of equal true grade permuted among their own positions within the top `depth`."""
    ranking = list(prod)
    head = ranking[:depth]
    grades = np.array([truth.grade(d) for d in head])
    for grade in np.unique(grades):
        slots = np.flatnonzero(grades == grade)
        for slot, source in zip(slots, rng.permutation(slots), strict=True):
            ranking[slot] = head[source]
    return ranking


def swapped_in(
    prod: list[str], truth: QueryTruth, pool: Sequence[str], swaps: int = SWAPS
) -> list[str]:
    """Up to `swaps` documents of the pool, best first, each swapped with the lowest-graded
    document of the top 10 it beats (truly better: every swap raises a position's grade)."""
    ranking = list(prod)
    in_top = set(ranking[:TOP])
    candidates = sorted((d for d in pool if d not in in_top), key=lambda d: (-truth.grade(d), d))
    for document in candidates[:swaps]:
        top_grades = [truth.grade(d) for d in ranking[:TOP]]
        slot = int(np.argmin(top_grades[::-1]))
        slot = len(top_grades) - 1 - slot
        if truth.grade(document) <= top_grades[slot]:
            break
        old = ranking[slot]
        ranking[slot] = document
        if document in ranking[TOP:]:
            ranking[ranking.index(document, TOP)] = old
        else:
            ranking.insert(TOP, old)
    return ranking


def swapped_out(prod: list[str], truth: QueryTruth) -> list[str]:
    """The SWAPS best documents of the top 10 swapped with lower-graded documents prod serves at
    11-24 (truly worse, and every document involved was shown)."""
    ranking = list(prod)
    below = sorted(ranking[TOP:SERVED], key=lambda d: (truth.grade(d), d))
    for document in below[:SWAPS]:
        top_grades = [truth.grade(d) for d in ranking[:TOP]]
        slot = int(np.argmax(top_grades))
        if truth.grade(document) >= top_grades[slot]:
            break
        old_position = ranking.index(document)
        ranking[slot], ranking[old_position] = document, ranking[slot]
    return ranking


def build_panel(
    prod: Mapping[str, list[str]],
    truths: Mapping[str, QueryTruth],
    engines: Mapping[str, Mapping[str, list[str]]] | None = None,
) -> list[PanelCandidate]:
    """The panel over these query texts (prod's rankings, depth >= 36 for rarely shown documents)."""

    def each(
        name: str, make: Callable[[str, list[str], QueryTruth], list[str]]
    ) -> dict[str, list[str]]:
        return {text: make(text, ranking, truths[text]) for text, ranking in prod.items()}

    def unseen(ranking: list[str], truth: QueryTruth) -> list[str]:
        return [
            d
            for d in sorted(truth.grades, key=lambda d: (-truth.grades[d], d))
            if d not in truth.ever_shown
        ]

    panel = [PanelCandidate("aa_copy", SAME, dict(prod))]
    for depth in (4, 12, 24):
        name = f"equal_top{depth}"
        panel.append(
            PanelCandidate(
                name,
                EQUAL,
                each(name, lambda t, r, q, d=depth, n=name: equal_reordering(r, q, d, _rng(t, n))),
            )
        )
    panel += [
        PanelCandidate(
            "better_from_below", BETTER, each("b", lambda t, r, q: swapped_in(r, q, r[TOP:SERVED]))
        ),
        PanelCandidate(
            "better_rarely_shown",
            BETTER,
            each(
                "r",
                lambda t, r, q: swapped_in(
                    r, q, [d for d in sorted(q.ever_shown) if d not in set(r[:SERVED])]
                ),
            ),
        ),
        PanelCandidate(
            "better_never_shown",
            NOT_JUDGEABLE,
            each("n", lambda t, r, q: swapped_in(r, q, unseen(r, q))),
        ),
        PanelCandidate(
            "better_one_never_shown",
            NOT_JUDGEABLE,
            each("o", lambda t, r, q: swapped_in(r, q, unseen(r, q), swaps=1)),
        ),
        PanelCandidate("worse_demoted", WORSE, each("w", lambda t, r, q: swapped_out(r, q))),
    ]
    for name, rankings in (engines or {}).items():
        panel.append(PanelCandidate(name, "engine", {t: list(rankings[t]) for t in prod}))
    return panel


def true_ndcg_at_10(ranking: Sequence[str], truth: QueryTruth) -> float:
    """NDCG@10 against the hidden grades (gain = grade, as trec_eval's ndcg_cut)."""
    gains = np.array([truth.grade(d) for d in ranking[:TOP]], dtype=float)
    discounts = 1.0 / np.log2(np.arange(2, TOP + 2))
    ideal = np.sort(np.array(list(truth.grades.values()), dtype=float))[::-1][:TOP]
    best = (ideal * discounts[: ideal.size]).sum()
    return float((gains * discounts[: gains.size]).sum() / best) if best > 0 else 0.0


def prod_rankings(paths: DataPaths, texts: Sequence[str]) -> dict[str, list[str]]:
    return engine_rankings(paths, PROD, texts)
