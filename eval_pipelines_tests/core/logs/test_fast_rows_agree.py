"""The ingest's SQL fast path accepts only what the contract's Python rules accept, with the same values.

Odd rows of every kind go through both paths: each row the fast path takes must give the exact draft
the Python rules give, and no row the Python rules refuse may be taken.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from eval_pipelines.core.logs.exact_rows import apply_rules
from eval_pipelines.core.logs.fast_rows import stage_fast_rows
from eval_pipelines.core.logs.line_blocks import iter_line_blocks
from eval_pipelines.core.logs.sources import line_records
from eval_pipelines_tests.core.logs.helpers import EXECUTION
from eval_pipelines_tests.core.logs.helpers import INTERACTION as PLAIN_INTERACTION

# The plain rows of the other ingest tests, with every optional interaction field given.
INTERACTION: dict[str, Any] = {
    **PLAIN_INTERACTION,
    "interaction_id": "i1",
    "session_id": "s1",
    "timestamp": "2026-10-01T12:00:05.5+02:00",
}
ODD_VALUES: list[Any] = [
    None,
    "",
    " ",
    "x",
    "Click",
    " click ",
    "CLICK",
    "é",
    "a..b",
    "-bad",
    0,
    1,
    -1,
    1.0,
    1.5,
    2**31,
    2**70,
    True,
    [],
    ["a"],
    ["a", "A"],
    ["a", "b"],
    ["a", 1],
    ["a", ""],
    {},
    {"text": "t"},
    {"text": 1},
    {"text": "t", "filters": None},
    {"text": "t", "filters": []},
    {"b": 1, "a": [1.10, "z"]},
    "2026-10-01",
    "2026-10-01T12:00:00",
    "2026-10-01 12:00:00.123",
    "2026-10-01T12:00:00.1234567Z",
    "2026-13-01T12:00:00Z",
    "2026-10-01T12:00:00+05:30",
    "0999-10-01T12:00:00Z",
    "9999-12-31T23:59:59-01:00",
    "1e400",
]


def _lines(base: dict[str, Any]) -> list[str]:
    lines = [json.dumps(base)]
    for key, value in itertools.product([*base, "metadata", "feature_id"], ODD_VALUES):
        lines.append(json.dumps({**base, key: value}))
        lines.append(json.dumps({k: v for k, v in base.items() if k != key}))
    lines.append(json.dumps(base)[:-1] + ', "execution_id": "other"}')  # a repeated key
    lines.append(json.dumps(base).replace('"s1"', '"s\\u00e91"'))
    lines.append("[1, 2]")
    lines.append("   ")
    return lines


@pytest.mark.parametrize(
    ("table", "base"), [("executions", EXECUTION), ("interactions", INTERACTION)]
)
def test_every_row_the_fast_path_takes_is_the_python_rules_draft(
    tmp_path: Path, table: str, base: dict[str, Any]
) -> None:
    source = tmp_path / "rows.jsonl"
    source.write_text("\n".join(_lines(base)[:-2]) + "\n", encoding="utf-8")
    (block,) = iter_line_blocks(source)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("block_lines", block.lines)
    stage_fast_rows(con, table, "fallback")
    fast = {row[0]: row for row in con.execute("SELECT * FROM fast_block WHERE fast").fetchall()}
    names = [d[0] for d in con.execute("SELECT * FROM fast_block LIMIT 0").description]

    exact = apply_rules(table, 0, line_records(source, block.lines).records, "fallback")
    drafts = {
        row[2]: dict(zip(exact.draft_table(table).schema.names, row, strict=True))
        for row in exact.drafts
    }
    refused = {row[3] for row in exact.rejected}

    assert 1 in fast, "the plain row (line 1) must take the fast path"
    assert len(fast) < block.num_rows / 2, "most odd rows must go to the exact rules"
    assert not refused & set(fast), (
        f"the fast path took refused lines {sorted(refused & set(fast))}"
    )
    for line_no, row in fast.items():
        values = dict(zip(names, row, strict=True))
        expected = drafts[line_no]
        for column, value in values.items():
            if column in expected:
                assert value == expected[column], (line_no, column, value, expected[column])
