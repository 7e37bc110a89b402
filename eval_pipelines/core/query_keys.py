"""A logged query's identity: its text normalized one way, so sessions, clusters and click models agree."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc


def normalized_text(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Unicode-normalized (NFKC), lower-cased, runs of white space as one space, trimmed."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    text = pc.utf8_normalize(texts, form="NFKC")
    text = pc.replace_substring_regex(pc.utf8_lower(text), r"\s+", " ")
    return pc.utf8_trim_whitespace(text)


def query_keys(sessions: pa.Table, query_key: str = "text") -> pa.Array:
    """Each session's query as inference clusters sessions: its normalized text; with
    "text_and_filters", its filters as well."""
    text = normalized_text(sessions.column("query_text"))
    if query_key == "text":
        return text
    filters = [
        json.dumps(json.loads(q).get("filters") or {}, sort_keys=True, separators=(",", ":"))
        for q in sessions.column("query_input").to_pylist()
    ]
    return pc.binary_join_element_wise(text, pa.array(filters, pa.string()), "\x1f")
