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

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.json_input import JsonProblem, decode_json, parse_json
from eval_pipelines.core.logs.contract import canonical_json, json_type
from eval_pipelines.core.paths import shown

GROUND_TRUTH = "ground_truth"
TREC = "trec"
BEIR = "beir"
FORMATS = ("auto", GROUND_TRUTH, TREC, BEIR)

MAX_LISTED_PROBLEMS = 50
MAX_GRADE = 5
GROUND_TRUTH_FIELDS = ("query_id", "query_input", "relevant_documents", "relevance_scores")
QUERY_INPUT_FIELDS = ("text", "filters")
BEIR_QUERY_FIELDS = ("_id", "text", "metadata")
BEIR_QRELS_HEADER = ("query-id", "corpus-id", "score")
TSV_TOPIC_ID_HEADERS = frozenset(
    {"qid", "query_id", "query-id", "id", "_id", "topic", "topic_id", "num", "number"}
)
TSV_TOPIC_TEXT_HEADERS = frozenset({"text", "query", "query_text", "title", "topic", "question"})

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INTEGER_TEXT = re.compile(r"^[+-]?\d+$")
_TOP_OPEN = re.compile(r"^<top>$", re.IGNORECASE)
_TOP_CLOSE = re.compile(r"^</top>$", re.IGNORECASE)
_SGML_FIELD = re.compile(r"^<(\w+)>(.*)$")
_SGML_CLOSING_TAG = re.compile(r"</\w+>")
_SGML_NUMBER = re.compile(r"^(?:number\s*:)?\s*(\S+)$", re.IGNORECASE)
_SGML_TOPIC_PREFIX = re.compile(r"^topic\s*:\s*", re.IGNORECASE)
_UTF8_BOM = b"\xef\xbb\xbf"


class Role:
    """What one file holds; the value is how messages name it."""

    GROUND_TRUTH = "ground_truth JSON lines"
    TREC_QRELS = "TREC qrels"
    TREC_TSV_TOPICS = "TREC topics (TSV)"
    TREC_SGML_TOPICS = "TREC topics (SGML)"
    BEIR_QUERIES = "BEIR queries (JSON lines)"
    BEIR_QRELS = "BEIR qrels (TSV)"


ROLE_FORMAT = {
    Role.GROUND_TRUTH: GROUND_TRUTH,
    Role.TREC_QRELS: TREC,
    Role.TREC_TSV_TOPICS: TREC,
    Role.TREC_SGML_TOPICS: TREC,
    Role.BEIR_QUERIES: BEIR,
    Role.BEIR_QRELS: BEIR,
}
_TOPIC_ROLES = (Role.TREC_TSV_TOPICS, Role.TREC_SGML_TOPICS)
_Report = Callable[[str, str], None]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, printed as `file:line: field: problem`."""

    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        location = self.file if self.line is None else f"{self.file}:{self.line}"
        return ": ".join(part for part in (location, self.field, self.message) if part)


def format_problems(problems: Sequence[Problem], limit: int = MAX_LISTED_PROBLEMS) -> str:
    count = len(problems)
    lines = [
        f"the dataset files have {count} problem{'s' if count != 1 else ''}; nothing was stored:"
    ]
    lines += [f"  {problem}" for problem in problems[:limit]]
    if count > limit:
        lines.append(f"  ... and {count - limit} more")
    return "\n".join(lines)


class DatasetInputError(InvalidInputError):
    """The dataset files break the format; `problems` holds every violation found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(format_problems(self.problems))


@dataclass(frozen=True)
class ParsedDataset:
    """Rows in source order. queries: (query_id, query_input JSON, query_text); judgments: (query_id,
    document_id, relevance)."""

    format: str
    queries: list[tuple[str, str, str]]
    judgments: list[tuple[str, str, int]]
    ignored_queries: int = 0


@dataclass
class _TextFile:
    label: str
    lines: list[tuple[int, str]]
    role: str | None = None


@dataclass
class _Collector:
    """Rows plus where each id was first seen, so repeats name both places."""

    problems: list[Problem]
    queries: list[tuple[str, str, str]] = field(default_factory=list)
    judgments: list[tuple[str, str, int]] = field(default_factory=list)
    query_at: dict[str, tuple[str, int]] = field(default_factory=dict)
    judgment_at: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    judged_query_at: dict[str, tuple[str, int]] = field(default_factory=dict)

    def problem(self, file: str, line: int | None, name: str | None, message: str) -> None:
        self.problems.append(Problem(file, line, name, message))

    def claim_query_id(self, file: str, line: int, name: str, query_id: str) -> bool:
        """Register query_id; False (with a problem) when an earlier line already used it."""
        seen = self.query_at.get(query_id)
        if seen is not None:
            self.problem(
                file, line, name, f"{shown(query_id)} repeats the query id of {_at(*seen)}"
            )
            return False
        self.query_at[query_id] = (file, line)
        return True

    def add_query(self, query_id: str, text: str, query_input: dict[str, Any]) -> None:
        self.queries.append((query_id, canonical_json(query_input), text))

    def add_judgment(
        self, file: str, line: int, name: str, query_id: str, document_id: str, relevance: int
    ) -> None:
        key = (query_id, document_id)
        seen = self.judgment_at.get(key)
        if seen is not None:
            self.problem(
                file,
                line,
                name,
                f"document {shown(document_id)} of query {shown(query_id)} is already judged at {_at(*seen)}",
            )
            return
        self.judgment_at[key] = (file, line)
        self.judged_query_at.setdefault(query_id, (file, line))
        self.judgments.append((query_id, document_id, relevance))


def _at(file: str, line: int) -> str:
    return f"{file}:{line}"


def read_dataset_files(files: Sequence[Path], fmt: str = "auto") -> ParsedDataset:
    """Every query and judgment in files, or DatasetInputError listing every problem found."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if not files:
        raise InvalidInputError("files: give at least one dataset file")
    problems: list[Problem] = []
    texts = [_read_lines(Path(file), problems) for file in files]
    readable = [text for text in texts if text is not None and text.lines]
    resolved = _assign_roles(readable, fmt, problems)
    if problems or resolved is None:
        raise DatasetInputError(problems)
    collector = _Collector(problems)
    ordered = sorted(readable, key=lambda text: _ROLE_ORDER[text.role or ""])
    for text in ordered:
        _PARSERS[text.role or ""](text, collector)
    ignored = _check_references(resolved, collector) if resolved != GROUND_TRUTH else 0
    if problems:
        raise DatasetInputError(problems)
    return ParsedDataset(resolved, collector.queries, collector.judgments, ignored)


def _read_lines(file: Path, problems: list[Problem]) -> _TextFile | None:
    """The file's non-blank lines with their numbers; undecodable lines become problems."""
    label = str(file)
    try:
        data = file.read_bytes()
    except OSError as exc:
        problems.append(Problem(label, None, None, f"cannot read the file ({exc.strerror or exc})"))
        return None
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    lines: list[tuple[int, str]] = []
    undecodable = False
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            text = raw.removesuffix(b"\r").decode("utf-8")
        except UnicodeDecodeError as exc:
            undecodable = True
            problems.append(
                Problem(
                    label,
                    number,
                    "encoding",
                    f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                )
            )
            continue
        if text.strip():
            lines.append((number, text))
    if not lines and not undecodable:
        problems.append(Problem(label, None, None, "the file is empty"))
    return _TextFile(label, lines)


def _first_json_keys(line: str) -> set[str] | None:
    try:
        value = decode_json(line)
    except JsonProblem:
        return None
    return set(value) if isinstance(value, dict) else None


def _is_beir_header(line: str) -> bool:
    return tuple(cell.strip().lower() for cell in line.split("\t")) == BEIR_QRELS_HEADER


def _sniff(line: str) -> str | None:
    """The role a file's first non-blank line points to, or None when it points nowhere."""
    stripped = line.strip()
    if stripped.startswith("{"):
        keys = _first_json_keys(stripped)
        if keys is None or ("query_id" in keys) == ("_id" in keys):
            return None
        return Role.GROUND_TRUTH if "query_id" in keys else Role.BEIR_QUERIES
    if _TOP_OPEN.match(stripped):
        return Role.TREC_SGML_TOPICS
    if _is_beir_header(line):
        return Role.BEIR_QRELS
    if line.count("\t") == 1:
        return Role.TREC_TSV_TOPICS
    if len(line.split()) == 4:
        return Role.TREC_QRELS
    return None


def _role_in_format(line: str, fmt: str) -> str | None:
    if fmt == GROUND_TRUTH:
        return Role.GROUND_TRUTH
    if fmt == BEIR:
        if _is_beir_header(line):
            return Role.BEIR_QRELS
        return Role.BEIR_QUERIES if line.lstrip().startswith("{") else None
    role = _sniff(line)
    return role if role is not None and ROLE_FORMAT[role] == TREC else None


_EXPECTED_FIRST_LINE = {
    "auto": (
        "a GroundTruthQuery JSON object (with query_id), a BEIR query (with _id), <top>,"
        " the BEIR header query-id<TAB>corpus-id<TAB>score, qid<TAB>text, or qid iter docno rel"
    ),
    TREC: "<top>, qid<TAB>text (topics) or qid iter docno rel (qrels)",
    BEIR: "a JSON object (queries.jsonl) or the header query-id<TAB>corpus-id<TAB>score (qrels)",
}


def _assign_roles(texts: list[_TextFile], fmt: str, problems: list[Problem]) -> str | None:
    """Set each file's role and return the dataset's format, or None after adding problems."""
    for text in texts:
        number, first = text.lines[0]
        text.role = _sniff(first) if fmt == "auto" else _role_in_format(first, fmt)
        if text.role is None:
            hint = "; pass --format ground_truth, trec or beir" if fmt == "auto" else ""
            problems.append(
                Problem(
                    text.label,
                    number,
                    "format",
                    f"cannot tell what this file is; the first line should be"
                    f" {_EXPECTED_FIRST_LINE[fmt]}{hint}",
                )
            )
    if problems or not texts:
        return None
    formats = {ROLE_FORMAT[text.role or ""] for text in texts}
    if len(formats) > 1:
        described = ", ".join(f"{text.label} ({text.role})" for text in texts)
        problems.append(
            Problem(
                "",
                None,
                "format",
                f"the files look like different formats: {described}; pass --format"
                " ground_truth, trec or beir",
            )
        )
        return None
    (resolved,) = formats
    roles = {text.role for text in texts}
    names = ", ".join(text.label for text in texts)
    if resolved == TREC:
        if Role.TREC_QRELS not in roles:
            problems.append(Problem("", None, "format", f"trec needs a qrels file; got {names}"))
        if not roles.intersection(_TOPIC_ROLES):
            problems.append(
                Problem("", None, "format", f"trec needs a topics file (TSV or SGML); got {names}")
            )
    if resolved == BEIR:
        if Role.BEIR_QRELS not in roles:
            problems.append(
                Problem(
                    "",
                    None,
                    "format",
                    "beir needs a qrels TSV file with the header"
                    f" query-id<TAB>corpus-id<TAB>score; got {names}",
                )
            )
        if Role.BEIR_QUERIES not in roles:
            problems.append(
                Problem("", None, "format", f"beir needs a queries.jsonl file; got {names}")
            )
    return None if problems else resolved


def _id_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"expected a string id, got {json_type(value)}"
    if not value:
        return "the id is empty"
    if any(character.isspace() for character in value):
        return f"{shown(value)}: an id must not contain whitespace (it could not round-trip through TREC files)"
    return None


def _json_line(line: str) -> tuple[Any, list[str]]:
    """The line's JSON value and the keys any of its objects repeat (json.loads keeps the last)."""
    repeated: list[str] = []

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        value = dict(pairs)
        if len(value) != len(pairs):
            counts = Counter(key for key, _ in pairs)
            repeated.extend(sorted(key for key, count in counts.items() if count > 1))
        return value

    return parse_json(line, object_pairs_hook=unique_keys), repeated


def _json_objects(text: _TextFile, collector: _Collector) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each line's JSON object; broken JSON, repeated keys and non-objects become problems."""
    for number, line in text.lines:
        try:
            value, repeated = _json_line(line)
        except JsonProblem as exc:
            collector.problem(text.label, number, exc.field or "json", exc.problem)
            continue
        if not isinstance(value, dict):
            collector.problem(
                text.label, number, "json", f"expected a JSON object, got {json_type(value)}"
            )
            continue
        for key in repeated:
            collector.problem(text.label, number, key, "the key appears more than once")
        yield number, value


def _unknown_keys(
    text: _TextFile, number: int, value: dict[str, Any], known: Sequence[str], collector: _Collector
) -> None:
    for key in value:
        if key not in known:
            collector.problem(
                text.label, number, key, f"unknown field (expected {', '.join(known)})"
            )


def _parse_ground_truth(text: _TextFile, collector: _Collector) -> None:
    for number, value in _json_objects(text, collector):
        _parse_ground_truth_query(text, number, value, collector)


def _parse_ground_truth_query(
    text: _TextFile, number: int, value: dict[str, Any], collector: _Collector
) -> None:
    label = text.label
    before = len(collector.problems)

    def problem(name: str, message: str) -> None:
        collector.problem(label, number, name, message)

    _unknown_keys(text, number, value, GROUND_TRUTH_FIELDS, collector)
    query_id = value.get("query_id")
    if "query_id" not in value:
        problem("query_id", "required field is missing")
    elif (issue := _id_problem(query_id)) is not None:
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
    ok = True
    listed: list[str] = []
    if "relevant_documents" not in value:
        problem("relevant_documents", "required field is missing (use [] for none)")
        ok = False
    elif not isinstance(value["relevant_documents"], list):
        problem(
            "relevant_documents",
            f"expected a list of document ids, got {json_type(value['relevant_documents'])}",
        )
        ok = False
    else:
        seen: set[str] = set()
        for index, document_id in enumerate(value["relevant_documents"]):
            if (issue := _id_problem(document_id)) is not None:
                problem(f"relevant_documents[{index}]", issue)
                ok = False
            elif document_id in seen:
                problem(f"relevant_documents[{index}]", f"{shown(document_id)} is listed twice")
                ok = False
            else:
                seen.add(document_id)
                listed.append(document_id)

    scores = value.get("relevance_scores")
    valid_scores: dict[str, int] = {}
    if scores is not None and not isinstance(scores, dict):
        problem(
            "relevance_scores",
            f"expected an object {{document id: grade 0..{MAX_GRADE}}}, got {json_type(scores)}",
        )
        ok = False
    for document_id, grade in (scores if isinstance(scores, dict) else {}).items():
        name = f"relevance_scores[{json.dumps(document_id, ensure_ascii=False)}]"
        if (issue := _id_problem(document_id)) is not None:
            problem(name, issue)
            ok = False
        elif isinstance(grade, bool) or not isinstance(grade, int):
            problem(name, f"expected an integer grade 0..{MAX_GRADE}, got {json_type(grade)}")
            ok = False
        elif not 0 <= grade <= MAX_GRADE:
            problem(name, f"grade {grade} is out of range 0..{MAX_GRADE}")
            ok = False
        elif grade == 0 and document_id in listed:
            problem(
                name,
                "grade 0 (not relevant) contradicts the document's place in relevant_documents",
            )
            ok = False
        else:
            valid_scores[document_id] = grade
    if not ok:
        return None
    grades = {document_id: valid_scores.get(document_id, 1) for document_id in listed}
    grades.update((doc, grade) for doc, grade in valid_scores.items() if doc not in grades)
    return grades


def _integer_grade(cell: str) -> int | None:
    if not _INTEGER_TEXT.match(cell):
        return None
    grade = int(cell)
    return grade if _INT32_MIN <= grade <= _INT32_MAX else None


def _parse_trec_qrels(text: _TextFile, collector: _Collector) -> None:
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
        grade = _integer_grade(cell)
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


def _parse_trec_tsv_topics(text: _TextFile, collector: _Collector) -> None:
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
        if (issue := _id_problem(query_id)) is not None:
            collector.problem(text.label, number, "qid", issue)
        elif collector.claim_query_id(text.label, number, "qid", query_id):
            collector.add_query(query_id, query_text, {"text": query_text})


def _parse_trec_sgml_topics(text: _TextFile, collector: _Collector) -> None:
    block_start: int | None = None
    fields: dict[str, tuple[int, list[str]]] = {}
    current: str | None = None
    for number, line in text.lines:
        stripped = line.strip()
        if block_start is None:
            if _TOP_OPEN.match(stripped):
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
        if _TOP_OPEN.match(stripped):
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
    text: _TextFile,
    block_start: int,
    fields: dict[str, tuple[int, list[str]]],
    collector: _Collector,
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


def _parse_beir_queries(text: _TextFile, collector: _Collector) -> None:
    for number, value in _json_objects(text, collector):
        before = len(collector.problems)
        _unknown_keys(text, number, value, BEIR_QUERY_FIELDS, collector)
        query_id, query_text = value.get("_id"), value.get("text")
        if "_id" not in value:
            collector.problem(text.label, number, "_id", "required field is missing")
        elif (issue := _id_problem(query_id)) is not None:
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


def _parse_beir_qrels(text: _TextFile, collector: _Collector) -> None:
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
            if (issue := _id_problem(value)) is not None:
                collector.problem(text.label, number, name, issue)
        grade = _integer_grade(cell)
        if grade is None:
            collector.problem(
                text.label, number, "score", f"expected an integer grade, got {shown(cell)}"
            )
        if len(collector.problems) == before and grade is not None:
            collector.add_judgment(text.label, number, "corpus-id", query_id, document_id, grade)


_PARSERS = {
    Role.GROUND_TRUTH: _parse_ground_truth,
    Role.TREC_TSV_TOPICS: _parse_trec_tsv_topics,
    Role.TREC_SGML_TOPICS: _parse_trec_sgml_topics,
    Role.TREC_QRELS: _parse_trec_qrels,
    Role.BEIR_QUERIES: _parse_beir_queries,
    Role.BEIR_QRELS: _parse_beir_qrels,
}
# Queries before judgments, so repeats are reported against the query files first.
_ROLE_ORDER = {role: order for order, role in enumerate(_PARSERS)}


def _check_references(fmt: str, collector: _Collector) -> int:
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
