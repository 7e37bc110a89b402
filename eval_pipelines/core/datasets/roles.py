"""Which format each dataset file is: its lines read, its first line sniffed, the set checked complete."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from eval_pipelines.core.datasets.problems import Problem
from eval_pipelines.core.json_input import JsonProblem, decode_json

GROUND_TRUTH = "ground_truth"
TREC = "trec"
BEIR = "beir"
FORMATS = ("auto", GROUND_TRUTH, TREC, BEIR)

BEIR_QRELS_HEADER = ("query-id", "corpus-id", "score")
TOP_OPEN = re.compile(r"^<top>$", re.IGNORECASE)
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

_EXPECTED_FIRST_LINE = {
    "auto": (
        "a GroundTruthQuery JSON object (with query_id), a BEIR query (with _id), <top>,"
        " the BEIR header query-id<TAB>corpus-id<TAB>score, qid<TAB>text, or qid iter docno rel"
    ),
    TREC: "<top>, qid<TAB>text (topics) or qid iter docno rel (qrels)",
    BEIR: "a JSON object (queries.jsonl) or the header query-id<TAB>corpus-id<TAB>score (qrels)",
}

# Per format, the roles of which at least one file must be given, and the sentence saying so.
_REQUIRED_ROLES: dict[str, tuple[tuple[frozenset[str], str], ...]] = {
    TREC: (
        (frozenset({Role.TREC_QRELS}), "trec needs a qrels file"),
        (
            frozenset({Role.TREC_TSV_TOPICS, Role.TREC_SGML_TOPICS}),
            "trec needs a topics file (TSV or SGML)",
        ),
    ),
    BEIR: (
        (
            frozenset({Role.BEIR_QRELS}),
            "beir needs a qrels TSV file with the header query-id<TAB>corpus-id<TAB>score",
        ),
        (frozenset({Role.BEIR_QUERIES}), "beir needs a queries.jsonl file"),
    ),
}


@dataclass
class TextFile:
    label: str
    lines: list[tuple[int, str]]
    role: str | None = None


def read_lines(file: Path, problems: list[Problem]) -> TextFile | None:
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
    return TextFile(label, lines)


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
    if TOP_OPEN.match(stripped):
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


def assign_roles(texts: list[TextFile], fmt: str, problems: list[Problem]) -> str | None:
    """Set each file's role and return the dataset's format, or None after adding problems."""
    for text in texts:
        _assign_role(text, fmt, problems)
    if problems or not texts:
        return None
    resolved = _common_format(texts, problems)
    if resolved is None:
        return None
    problems.extend(_missing_roles(resolved, texts))
    return None if problems else resolved


def _assign_role(text: TextFile, fmt: str, problems: list[Problem]) -> None:
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


def _common_format(texts: list[TextFile], problems: list[Problem]) -> str | None:
    """The one format every file's role belongs to, or None (with a problem) when they differ."""
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
    return resolved


def _missing_roles(resolved: str, texts: list[TextFile]) -> list[Problem]:
    """A problem for each kind of file the format needs and none of texts is."""
    roles = {text.role for text in texts}
    names = ", ".join(text.label for text in texts)
    return [
        Problem("", None, "format", f"{need}; got {names}")
        for wanted, need in _REQUIRED_ROLES.get(resolved, ())
        if not roles & wanted
    ]
