"""Rows gathered from the dataset files, where each id was first seen, and the id and grade rules."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from eval_pipelines.core.datasets.problems import Problem
from eval_pipelines.core.logs.fields import canonical_json, json_type
from eval_pipelines.core.paths import shown

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INTEGER_TEXT = re.compile(r"^[+-]?\d+$")


@dataclass
class Collector:
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


def id_problem(value: Any) -> str | None:
    """Why value cannot be a query or document id (it must survive TREC files), or None."""
    if not isinstance(value, str):
        return f"expected a string id, got {json_type(value)}"
    if not value:
        return "the id is empty"
    if any(character.isspace() for character in value):
        return f"{shown(value)}: an id must not contain whitespace (it could not round-trip through TREC files)"
    return None


def integer_grade(cell: str) -> int | None:
    """The cell as a 32-bit integer grade, or None when it is not one."""
    if not _INTEGER_TEXT.match(cell):
        return None
    grade = int(cell)
    return grade if _INT32_MIN <= grade <= _INT32_MAX else None
