"""Read ground-truth dataset files into query and judgment rows, listing every problem at once.

Formats (`fmt`):
- ground_truth: JSON lines, one GroundTruthQuery per line: `query_id` (string, unique), `query_input`
  (an object with a string `text` and an optional object `filters`; a plain string is refused, as is
  any other key, so a typo such as `filter` cannot silently do nothing), `relevant_documents` (list of
  ids, no repeats, may be empty: the query is kept and skipped at evaluation time), optional
  `relevance_scores` ({doc: integer 0..5}). A listed document's grade is its score, else 1; a document
  only in `relevance_scores` gets its score (0 = judged non-relevant). A listed document scored 0 is a
  contradiction. Several files are read as one.
- trec: qrels (`qid iter docno rel`, whitespace-separated, `rel` an integer, `iter` ignored) and topics,
  either TSV (`qid<TAB>text`, an optional header such as `qid<TAB>text`) or classic SGML (`<top>`,
  `<num> Number: 301`, `<title> ...`, `</top>`; the query text is the title, `Topic:` prefix removed,
  lines joined by spaces; `<desc>`/`<narr>` are not used). Topics without judgments are kept (no
  relevant documents); judgments whose qid has no topic are an error.
- beir: queries.jsonl (`_id`, `text`, optional `metadata`, which is not stored) and qrels TSV with the
  header `query-id<TAB>corpus-id<TAB>score`. Judgments whose query is missing are an error. Queries no
  qrels file mentions are not stored (BEIR's qrels file picks the split) and are counted in
  `ignored_queries`.
- auto: each file's first non-blank line decides what it is: a JSON object with `query_id` -> ground
  truth; with `_id` -> BEIR queries; `<top>` -> TREC SGML topics; the BEIR header -> BEIR qrels;
  exactly one tab -> TREC TSV topics; four whitespace-separated fields -> TREC qrels. Anything else,
  or files of different formats, is an error asking for an explicit format.

Every id (query or document) is a non-empty string without whitespace, so it survives TREC qrels and
run files. TREC and BEIR grades are kept as given (integers, possibly negative). Files are UTF-8 (a
BOM is allowed), lines end in LF or CRLF, blank lines are skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eval_pipelines.core.datasets.beir_files import parse_beir_qrels, parse_beir_queries
from eval_pipelines.core.datasets.collector import Collector
from eval_pipelines.core.datasets.ground_truth_jsonl import parse_ground_truth
from eval_pipelines.core.datasets.problems import DatasetInputError, Problem
from eval_pipelines.core.datasets.roles import (
    BEIR,
    FORMATS,
    GROUND_TRUTH,
    TREC,
    Role,
    assign_roles,
    read_lines,
)
from eval_pipelines.core.datasets.trec_files import (
    parse_trec_qrels,
    parse_trec_sgml_topics,
    parse_trec_tsv_topics,
)
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import shown


@dataclass(frozen=True)
class ParsedDataset:
    """Rows in source order. queries: (query_id, query_input JSON, query_text); judgments: (query_id,
    document_id, relevance)."""

    format: str
    queries: list[tuple[str, str, str]]
    judgments: list[tuple[str, str, int]]
    ignored_queries: int = 0


_PARSERS = {
    Role.GROUND_TRUTH: parse_ground_truth,
    Role.TREC_TSV_TOPICS: parse_trec_tsv_topics,
    Role.TREC_SGML_TOPICS: parse_trec_sgml_topics,
    Role.TREC_QRELS: parse_trec_qrels,
    Role.BEIR_QUERIES: parse_beir_queries,
    Role.BEIR_QRELS: parse_beir_qrels,
}
# Queries before judgments, so repeats are reported against the query files first.
_ROLE_ORDER = {role: order for order, role in enumerate(_PARSERS)}


def read_dataset_files(files: Sequence[Path], fmt: str = "auto") -> ParsedDataset:
    """Every query and judgment in files, or DatasetInputError listing every problem found."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if not files:
        raise InvalidInputError("files: give at least one dataset file")
    problems: list[Problem] = []
    texts = [read_lines(Path(file), problems) for file in files]
    readable = [text for text in texts if text is not None and text.lines]
    resolved = assign_roles(readable, fmt, problems)
    if problems or resolved is None:
        raise DatasetInputError(problems)
    collector = Collector(problems)
    ordered = sorted(readable, key=lambda text: _ROLE_ORDER[text.role or ""])
    for text in ordered:
        _PARSERS[text.role or ""](text, collector)
    ignored = _check_references(resolved, collector) if resolved != GROUND_TRUTH else 0
    if problems:
        raise DatasetInputError(problems)
    return ParsedDataset(resolved, collector.queries, collector.judgments, ignored)


def _check_references(fmt: str, collector: Collector) -> int:
    """Judgments must name a known query; returns how many BEIR queries no qrels mention (dropped)."""
    missing_from = "the topics files" if fmt == TREC else "the queries files"
    unknown = {q: at for q, at in collector.judged_query_at.items() if q not in collector.query_at}
    counts = Counter(row[0] for row in collector.judgments if row[0] in unknown)
    for query_id, (file, line) in unknown.items():
        count = counts[query_id]
        collector.problem(
            file,
            line,
            "qid" if fmt == TREC else "query-id",
            f"query {shown(query_id)} has {count} judgment{'s' if count != 1 else ''}"
            f" but is not in {missing_from}",
        )
    if fmt != BEIR:
        return 0
    judged = collector.judged_query_at
    kept = [row for row in collector.queries if row[0] in judged]
    ignored = len(collector.queries) - len(kept)
    collector.queries[:] = kept
    return ignored
