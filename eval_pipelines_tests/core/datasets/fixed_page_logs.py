"""Small real logs with one fixed page per query: evidence to grade, but no positional variation."""

from __future__ import annotations

import json
from pathlib import Path

from eval_pipelines.core.logs.ingest import ingest_files
from eval_pipelines.core.paths import DataPaths

PAGE = ["d1", "d2", "d3", "d4", "d5"]
# d1: 14 sessions click it, one more buys it (gain 5); d2: 3 clicks; d3: 1 click; d4, d5: nothing.
CLICKS = {"d1": 15, "d2": 3, "d3": 1}


def write_fixed_page_logs(paths: DataPaths, tmp_path: Path) -> None:
    """30 searches for one query in two spellings and 5 for another, every one served the same page:
    no positional variation, so the click model cannot correct for position."""
    spellings = ["Red Sofa"] * 20 + ["red  SOFA"] * 10 + ["Blue Lamp"] * 5
    executions, interactions = [], []
    for n, text in enumerate(spellings):
        execution, session = f"e{n:03d}", f"s{n:03d}"
        created = f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}Z"
        executions.append(
            {
                "execution_id": execution,
                "retriever_id": "prod",
                "session_id": session,
                "query_input": {"text": text},
                "documents": PAGE if text != "Blue Lamp" else ["d9", *PAGE[1:]],
                "taxonomy_node_ids": [],
                "created_at": created,
            }
        )
        for position, document in enumerate(PAGE):
            if text == "Blue Lamp" or n >= CLICKS.get(document, 0):
                continue
            types = ["click", "purchase"] if (document, n) == ("d1", 0) else ["click"]
            interactions += [
                {
                    "interaction_id": f"i{len(interactions) + k:04d}",
                    "execution_id": execution,
                    "document_id": document,
                    "interaction_type": kind,
                    "position": position,
                    "session_id": session,
                    "timestamp": created,
                }
                for k, kind in enumerate(types)
            ]
    for table, rows in (("executions", executions), ("interactions", interactions)):
        file = tmp_path / f"{table}.jsonl"
        file.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        report = ingest_files(paths, table, [file])
        assert not report.quarantined, report
