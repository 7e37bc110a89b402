"""Which log format a file looks like, for a file whose every row was rejected under the format asked.

A UBI events file ingested without `--format ubi` (or the contract's JSONL with it, or executions as
interactions) breaks the contract on every row; quarantining them all and exiting 0 would hide a
wrong flag as bad data. The look of a file is its records' top-level keys: each record is matched to
the format whose distinctive keys it has, and the file to the format most of its records match.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.logs.ubi import ubi_document

# Looks: (name, table, is UBI, keys that identify it, keys of which one must be present).
_LOOKS: tuple[tuple[str, str, bool, frozenset[str], frozenset[str]], ...] = (
    (
        "OpenSearch UBI ubi_events",
        "interactions",
        True,
        frozenset({"action_name"}),
        frozenset({"action_name"}),
    ),
    (
        "OpenSearch UBI ubi_queries",
        "executions",
        True,
        frozenset({"query_id"}),
        frozenset({"user_query", "query_response_hit_ids"}),
    ),
    (
        "the contract's interactions",
        "interactions",
        False,
        frozenset({"execution_id"}),
        frozenset({"interaction_type", "document_id", "feature_id"}),
    ),
    (
        "the contract's executions",
        "executions",
        False,
        frozenset({"execution_id"}),
        frozenset({"query_input", "documents"}),
    ),
)
_SAMPLE = 1000
_SHOWN_KEYS = 6


def _look(raw: Mapping[str, Any] | str) -> int | None:
    """The index in _LOOKS of the format a record's keys match, None when none does."""
    doc = ubi_document(raw)
    if doc is None:
        return None
    keys = doc.keys()
    for index, (_, _, _, required, any_of) in enumerate(_LOOKS):
        if required <= keys and not any_of.isdisjoint(keys):
            return index
    return None


def format_hint(raws: Sequence[Mapping[str, Any] | str], table: str, fmt: str) -> str | None:
    """What the records look like and which command reads them, or None when they look like the
    table and format asked (or like nothing known): then their rejections are the data's own."""
    sample = raws[:_SAMPLE]
    looks = Counter(index for raw in sample if (index := _look(raw)) is not None)
    if not looks:
        return None
    index, _ = looks.most_common(1)[0]
    name, look_table, is_ubi, required, any_of = _LOOKS[index]
    if look_table == table and is_ubi == (fmt == "ubi"):
        return None
    present: set[str] = set()
    for raw in sample:
        doc = ubi_document(raw)
        if doc is not None and _look(raw) == index:
            present.update(key for key in doc if isinstance(key, str))
    signature = sorted(required | (any_of & present))
    others = sorted(present - set(signature))[: max(_SHOWN_KEYS - len(signature), 0)]
    keys = ", ".join(signature + others)
    flag = " --format ubi" if is_ubi else ""
    if look_table != table:
        advice = f"these are {look_table}: ingest {look_table} FILE{flag}"
    elif is_ubi:
        advice = "pass --format ubi"
    else:
        advice = "leave out --format ubi"
    return f"this file looks like {name} (keys {keys}); {advice}"


def refuse_misread_file(
    file: str,
    records: int,
    reasons: Mapping[str, int],
    raws: Sequence[Mapping[str, Any] | str],
    table: str,
    fmt: str,
) -> None:
    """InvalidInputError when a file's every record was rejected (reasons counts them) and a sample
    of them (raws) looks like another format than the one asked; nothing is written then."""
    hint = format_hint(raws, table, fmt)
    if hint is None:
        return
    listed = ", ".join(f"{reason}: {count}" for reason, count in sorted(reasons.items()))
    raise InvalidInputError(
        f"{file}: every one of its {records} rows breaks the {table} contract ({listed});"
        f" {hint} (nothing was written)"
    )
