"""TREC dataset files: qrels, and topics as TSV or classic SGML, checked and collected."""

from __future__ import annotations

import re

from eval_pipelines.core.datasets.collector import Collector, id_problem, integer_grade
from eval_pipelines.core.datasets.roles import TOP_OPEN, TextFile
from eval_pipelines.core.paths import shown

TSV_TOPIC_ID_HEADERS = frozenset(
    {"qid", "query_id", "query-id", "id", "_id", "topic", "topic_id", "num", "number"}
)
TSV_TOPIC_TEXT_HEADERS = frozenset({"text", "query", "query_text", "title", "topic", "question"})

_TOP_CLOSE = re.compile(r"^</top>$", re.IGNORECASE)
_SGML_FIELD = re.compile(r"^<(\w+)>(.*)$")
_SGML_CLOSING_TAG = re.compile(r"</\w+>")
_SGML_NUMBER = re.compile(r"^(?:number\s*:)?\s*(\S+)$", re.IGNORECASE)
_SGML_TOPIC_PREFIX = re.compile(r"^topic\s*:\s*", re.IGNORECASE)


def parse_trec_qrels(text: TextFile, collector: Collector) -> None:
    for number, line in text.lines:
        cells = line.split()
        if len(cells) != 4:
            collector.problem(
                text.label,
                number,
                "columns",
                f"expected 4 whitespace-separated columns (qid iter docno rel), got {len(cells)}",
            )
            continue
        query_id, _iteration, document_id, cell = cells
        grade = integer_grade(cell)
        if grade is None:
            collector.problem(
                text.label, number, "rel", f"expected an integer grade, got {shown(cell)}"
            )
            continue
        collector.add_judgment(text.label, number, "docno", query_id, document_id, grade)


def _is_tsv_topic_header(cells: list[str]) -> bool:
    return (
        len(cells) == 2
        and cells[0].strip().lower() in TSV_TOPIC_ID_HEADERS
        and cells[1].strip().lower() in TSV_TOPIC_TEXT_HEADERS
    )


def parse_trec_tsv_topics(text: TextFile, collector: Collector) -> None:
    for index, (number, line) in enumerate(text.lines):
        cells = line.split("\t")
        if index == 0 and _is_tsv_topic_header(cells):
            continue
        if len(cells) != 2:
            collector.problem(
                text.label,
                number,
                "columns",
                f"expected 2 tab-separated columns (qid<TAB>text), got {len(cells)}",
            )
            continue
        query_id, query_text = cells[0].strip(), cells[1].strip()
        if (issue := id_problem(query_id)) is not None:
            collector.problem(text.label, number, "qid", issue)
        elif collector.claim_query_id(text.label, number, "qid", query_id):
            collector.add_query(query_id, query_text, {"text": query_text})


def parse_trec_sgml_topics(text: TextFile, collector: Collector) -> None:
    block_start: int | None = None
    fields: dict[str, tuple[int, list[str]]] = {}
    current: str | None = None
    for number, line in text.lines:
        stripped = line.strip()
        if block_start is None:
            if TOP_OPEN.match(stripped):
                block_start, fields, current = number, {}, None
            else:
                collector.problem(
                    text.label, number, "top", "text outside a <top> ... </top> block"
                )
            continue
        if _TOP_CLOSE.match(stripped):
            _finish_sgml_topic(text, block_start, fields, collector)
            block_start = None
            continue
        if TOP_OPEN.match(stripped):
            collector.problem(
                text.label, number, "top", f"<top> inside the <top> of line {block_start}"
            )
            continue
        tag = _SGML_FIELD.match(stripped)
        content = stripped
        if tag:
            current = tag.group(1).lower()
            content = tag.group(2)
            if current in fields:
                collector.problem(
                    text.label, number, current, f"<{current}> appears twice in this <top> block"
                )
            fields[current] = (number, [])
        content = _SGML_CLOSING_TAG.sub(" ", content).strip()
        if current is not None and content:
            fields[current][1].append(content)
    if block_start is not None:
        collector.problem(text.label, block_start, "top", "<top> is never closed by </top>")


def _finish_sgml_topic(
    text: TextFile,
    block_start: int,
    fields: dict[str, tuple[int, list[str]]],
    collector: Collector,
) -> None:
    if "num" not in fields:
        collector.problem(text.label, block_start, "num", "this <top> block has no <num>")
        return
    num_line, num_parts = fields["num"]
    number_match = _SGML_NUMBER.match(" ".join(num_parts))
    if number_match is None:
        collector.problem(
            text.label,
            num_line,
            "num",
            f"expected 'Number: <qid>', got {shown(' '.join(num_parts))}",
        )
        return
    query_id = number_match.group(1)
    if "title" not in fields:
        collector.problem(
            text.label, block_start, "title", f"topic {shown(query_id)} has no <title>"
        )
        return
    title = _SGML_TOPIC_PREFIX.sub("", " ".join(fields["title"][1]))
    if collector.claim_query_id(text.label, num_line, "num", query_id):
        collector.add_query(query_id, title, {"text": title})
