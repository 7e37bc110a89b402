"""JSON-lines dataset files: one object per line, broken JSON, repeated keys and unknown fields reported."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from eval_pipelines.core.datasets.collector import Collector
from eval_pipelines.core.datasets.roles import TextFile
from eval_pipelines.core.json_input import JsonProblem, parse_json
from eval_pipelines.core.logs.fields import json_type


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


def json_objects(text: TextFile, collector: Collector) -> Iterator[tuple[int, dict[str, Any]]]:
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


def unknown_keys(
    text: TextFile, number: int, value: dict[str, Any], known: Sequence[str], collector: Collector
) -> None:
    for key in value:
        if key not in known:
            collector.problem(
                text.label, number, key, f"unknown field (expected {', '.join(known)})"
            )
