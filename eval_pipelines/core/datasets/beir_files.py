"""BEIR dataset files: queries.jsonl and the qrels TSV, checked and collected."""

from __future__ import annotations

from eval_pipelines.core.datasets.collector import Collector, id_problem, integer_grade
from eval_pipelines.core.datasets.json_lines import json_objects, unknown_keys
from eval_pipelines.core.datasets.roles import TextFile
from eval_pipelines.core.logs.fields import json_type
from eval_pipelines.core.paths import shown

BEIR_QUERY_FIELDS = ("_id", "text", "metadata")


def parse_beir_queries(text: TextFile, collector: Collector) -> None:
    for number, value in json_objects(text, collector):
        before = len(collector.problems)
        unknown_keys(text, number, value, BEIR_QUERY_FIELDS, collector)
        query_id, query_text = value.get("_id"), value.get("text")
        if "_id" not in value:
            collector.problem(text.label, number, "_id", "required field is missing")
        elif (issue := id_problem(query_id)) is not None:
            collector.problem(text.label, number, "_id", issue)
        else:
            collector.claim_query_id(text.label, number, "_id", query_id)
        if "text" not in value:
            collector.problem(text.label, number, "text", "required field is missing")
        elif not isinstance(query_text, str):
            collector.problem(
                text.label, number, "text", f"expected a string, got {json_type(query_text)}"
            )
        metadata = value.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            collector.problem(
                text.label, number, "metadata", f"expected an object, got {json_type(metadata)}"
            )
        if len(collector.problems) == before:
            collector.add_query(query_id, query_text, {"text": query_text})


def parse_beir_qrels(text: TextFile, collector: Collector) -> None:
    if len(text.lines) == 1:
        collector.problem(text.label, None, None, "the file holds the header but no judgments")
    for number, line in text.lines[1:]:
        cells = [cell.strip() for cell in line.split("\t")]
        if len(cells) != 3:
            collector.problem(
                text.label,
                number,
                "columns",
                f"expected 3 tab-separated columns (query-id, corpus-id, score), got {len(cells)}",
            )
            continue
        query_id, document_id, cell = cells
        before = len(collector.problems)
        for name, value in (("query-id", query_id), ("corpus-id", document_id)):
            if (issue := id_problem(value)) is not None:
                collector.problem(text.label, number, name, issue)
        grade = integer_grade(cell)
        if grade is None:
            collector.problem(
                text.label, number, "score", f"expected an integer grade, got {shown(cell)}"
            )
        if len(collector.problems) == before and grade is not None:
            collector.add_judgment(text.label, number, "corpus-id", query_id, document_id, grade)
