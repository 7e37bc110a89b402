"""GroundTruthQuery JSON lines: each line's query, its input and its graded documents checked and collected."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from eval_pipelines.core.datasets.collector import Collector, id_problem
from eval_pipelines.core.datasets.json_lines import json_objects, unknown_keys
from eval_pipelines.core.datasets.roles import TextFile
from eval_pipelines.core.logs.fields import json_type
from eval_pipelines.core.paths import shown

MAX_GRADE = 5
GROUND_TRUTH_FIELDS = ("query_id", "query_input", "relevant_documents", "relevance_scores")
QUERY_INPUT_FIELDS = ("text", "filters")

_Report = Callable[[str, str], None]


def parse_ground_truth(text: TextFile, collector: Collector) -> None:
    for number, value in json_objects(text, collector):
        _parse_ground_truth_query(text, number, value, collector)


def _parse_ground_truth_query(
    text: TextFile, number: int, value: dict[str, Any], collector: Collector
) -> None:
    label = text.label
    before = len(collector.problems)

    def problem(name: str, message: str) -> None:
        collector.problem(label, number, name, message)

    unknown_keys(text, number, value, GROUND_TRUTH_FIELDS, collector)
    query_id = value.get("query_id")
    if "query_id" not in value:
        problem("query_id", "required field is missing")
    elif (issue := id_problem(query_id)) is not None:
        problem("query_id", issue)
    else:
        collector.claim_query_id(label, number, "query_id", query_id)

    query_input = _ground_truth_query_input(value, problem)
    grades = _ground_truth_grades(value, problem)
    if len(collector.problems) > before or query_input is None or grades is None:
        return
    collector.add_query(query_id, query_input["text"], query_input)
    for document_id, grade in grades.items():
        collector.add_judgment(label, number, "relevant_documents", query_id, document_id, grade)


def _ground_truth_query_input(value: dict[str, Any], problem: _Report) -> dict[str, Any] | None:
    if "query_input" not in value:
        problem("query_input", "required field is missing")
        return None
    query_input = value["query_input"]
    if not isinstance(query_input, dict):
        problem(
            "query_input",
            f"expected an object with a string 'text' (and optional 'filters'),"
            f" got {json_type(query_input)}",
        )
        return None
    ok = True
    for key in query_input:
        if key not in QUERY_INPUT_FIELDS:
            problem(
                f"query_input.{key}", f"unknown field (expected {', '.join(QUERY_INPUT_FIELDS)})"
            )
            ok = False
    if "text" not in query_input:
        problem("query_input.text", "required field is missing")
        ok = False
    elif not isinstance(query_input["text"], str):
        problem("query_input.text", f"expected a string, got {json_type(query_input['text'])}")
        ok = False
    filters = query_input.get("filters")
    if filters is not None and not isinstance(filters, dict):
        problem("query_input.filters", f"expected an object, got {json_type(filters)}")
        ok = False
    if not ok:
        return None
    return {key: item for key, item in query_input.items() if item is not None}


def _ground_truth_grades(value: dict[str, Any], problem: _Report) -> dict[str, int] | None:
    """Document -> grade: listed documents first (score else 1), then documents only scored."""
    listed, listed_ok = _listed_documents(value, problem)
    scores, scores_ok = _scores(value, listed, problem)
    if not (listed_ok and scores_ok):
        return None
    grades = {document_id: scores.get(document_id, 1) for document_id in listed}
    grades.update((doc, grade) for doc, grade in scores.items() if doc not in grades)
    return grades


def _listed_documents(value: dict[str, Any], problem: _Report) -> tuple[list[str], bool]:
    """The valid ids of relevant_documents in order, and whether every entry was valid."""
    if "relevant_documents" not in value:
        problem("relevant_documents", "required field is missing (use [] for none)")
        return [], False
    documents = value["relevant_documents"]
    if not isinstance(documents, list):
        problem(
            "relevant_documents",
            f"expected a list of document ids, got {json_type(documents)}",
        )
        return [], False
    ok = True
    listed: list[str] = []
    seen: set[str] = set()
    for index, document_id in enumerate(documents):
        if (issue := id_problem(document_id)) is not None:
            problem(f"relevant_documents[{index}]", issue)
            ok = False
        elif document_id in seen:
            problem(f"relevant_documents[{index}]", f"{shown(document_id)} is listed twice")
            ok = False
        else:
            seen.add(document_id)
            listed.append(document_id)
    return listed, ok


def _scores(
    value: dict[str, Any], listed: list[str], problem: _Report
) -> tuple[dict[str, int], bool]:
    """The valid entries of relevance_scores, and whether every entry was valid."""
    scores = value.get("relevance_scores")
    if scores is None:
        return {}, True
    if not isinstance(scores, dict):
        problem(
            "relevance_scores",
            f"expected an object {{document id: grade 0..{MAX_GRADE}}}, got {json_type(scores)}",
        )
        return {}, False
    ok = True
    valid_scores: dict[str, int] = {}
    for document_id, grade in scores.items():
        issue = _score_problem(document_id, grade, listed)
        if issue is None:
            valid_scores[document_id] = grade
        else:
            problem(f"relevance_scores[{json.dumps(document_id, ensure_ascii=False)}]", issue)
            ok = False
    return valid_scores, ok


def _score_problem(document_id: Any, grade: Any, listed: list[str]) -> str | None:
    if (issue := id_problem(document_id)) is not None:
        return issue
    if isinstance(grade, bool) or not isinstance(grade, int):
        return f"expected an integer grade 0..{MAX_GRADE}, got {json_type(grade)}"
    if not 0 <= grade <= MAX_GRADE:
        return f"grade {grade} is out of range 0..{MAX_GRADE}"
    if grade == 0 and document_id in listed:
        return "grade 0 (not relevant) contradicts the document's place in relevant_documents"
    return None
