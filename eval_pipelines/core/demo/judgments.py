"""The demo-judgments ground-truth dataset, read straight from the true grades.

Written as GroundTruthQuery JSONL and as TREC qrels + topics, so evaluations can be checked against
trec_eval on the same truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DATASET = "demo-judgments"


@dataclass(frozen=True)
class JudgedQuery:
    query_id: str
    text: str
    documents: list[str]
    grades: list[int]

    def to_record(self) -> dict[str, object]:
        return {
            "query_id": self.query_id,
            "query_input": {"text": self.text},
            "relevant_documents": self.documents,
            "relevance_scores": dict(zip(self.documents, self.grades, strict=True)),
        }


def judgments_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, 4])


def select_judged_intents(seed: int, n_intents: int, n_judged: int) -> np.ndarray:
    """Positions of the judged intents: a uniform sample over head and tail, in rank order."""
    n_judged = min(n_judged, n_intents)
    return np.sort(judgments_rng(seed).choice(n_intents, size=n_judged, replace=False))


def judged_queries(intents: pa.Table, grades: pa.Table, selected: np.ndarray) -> list[JudgedQuery]:
    """One query per selected intent (query_id = intent_id), documents best first then by id."""
    chosen = intents.take(pa.array(selected))
    wanted = chosen.column("intent_id")
    rows = grades.filter(pc.is_in(grades.column("intent_id"), value_set=wanted))
    rows = rows.sort_by(
        [("intent_id", "ascending"), ("grade", "descending"), ("document_id", "ascending")]
    )
    owner = rows.column("intent_id").to_numpy(zero_copy_only=False)
    documents = rows.column("document_id").to_pylist()
    grade_values = rows.column("grade").to_pylist()
    texts = chosen.column("query_text").to_pylist()
    queries = []
    for query_id, text in zip(wanted.to_pylist(), texts, strict=True):
        start = int(np.searchsorted(owner, query_id, side="left"))
        end = int(np.searchsorted(owner, query_id, side="right"))
        queries.append(JudgedQuery(query_id, text, documents[start:end], grade_values[start:end]))
    return queries


def jsonl_text(queries: list[JudgedQuery]) -> str:
    return "".join(json.dumps(q.to_record(), ensure_ascii=False) + "\n" for q in queries)


def qrels_text(queries: list[JudgedQuery]) -> str:
    """TREC qrels: `qid 0 docid grade` per judged document."""
    return "".join(
        f"{q.query_id} 0 {doc} {grade}\n"
        for q in queries
        for doc, grade in zip(q.documents, q.grades, strict=True)
    )


def topics_text(queries: list[JudgedQuery]) -> str:
    """TREC topics as TSV: `qid<TAB>text`."""
    return "".join(f"{q.query_id}\t{q.text}\n" for q in queries)
