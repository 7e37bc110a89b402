"""String columns from callers' Arrow data (judgments, session interactions) are taken one way.

A column may come plain, large, dictionary-encoded, chunked or all null; anything else is refused
with the same sentence naming the column, wherever it is read. One helper (core/arrow_text.py) does
it, so the readers cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eval_pipelines.core.arrow_text import string_array
from eval_pipelines.core.metrics.alignment import DEFAULT_INTERACTION_WEIGHTS, score_sessions
from eval_pipelines.core.metrics.ground_truth import evaluate_rankings

EVAL_PIPELINES = Path(__file__).resolve().parents[3] / "eval_pipelines"
QUERY_IDS = ["q1", "q2"]
RANKINGS = [["d1", "d2", "d3"], ["d4", "d1"]]
QRELS = {
    "query_id": ["q1", "q1", "q2", "q3"],
    "document_id": ["d2", "d3", "d4", "d9"],
    "relevance": [2, 1, 1, 3],
}
ENCODINGS = {
    "string": lambda values: pa.array(values, pa.string()),
    "large_string": lambda values: pa.array(values, pa.large_string()),
    "dictionary": lambda values: pa.array(values, pa.string()).dictionary_encode(),
}


def _parquet_round_trip(tmp_path: Path, table: pa.Table, row_group_size: int = 2) -> pa.Table:
    """The table as a reader gets it back from a real Parquet file (several row groups)."""
    path = tmp_path / "table.parquet"
    pq.write_table(table, path, row_group_size=row_group_size)
    return pq.read_table(path)


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_judgments_from_parquet_evaluate_alike_in_every_string_encoding(
    tmp_path: Path, encoding: str
) -> None:
    encode = ENCODINGS[encoding]
    qrels = _parquet_round_trip(
        tmp_path,
        pa.table(
            {
                "query_id": encode(QRELS["query_id"]),
                "document_id": encode(QRELS["document_id"]),
                "relevance": pa.array(QRELS["relevance"], pa.int64()),
            }
        ),
    )
    assert qrels.column("query_id").num_chunks == 2
    plain = evaluate_rankings(QUERY_IDS, RANKINGS, pa.table(QRELS), measures=["ndcg", "P_2"])
    result = evaluate_rankings(encode(QUERY_IDS), RANKINGS, qrels, measures=["ndcg", "P_2"])
    assert result.equals(plain)
    assert result.column("P_2").to_pylist() == [0.5, 0.5]


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_interactions_from_parquet_score_alike_in_every_string_encoding(
    tmp_path: Path, encoding: str
) -> None:
    encode = ENCODINGS[encoding]
    columns = {
        "session_index": pa.array([0, 0, 1], pa.int64()),
        "document_id": ["d2", "d3", "d1"],
        "interaction_type": ["click", "purchase", "click"],
        "position": pa.array([0, 1, 0], pa.int64()),
    }
    plain = score_sessions(RANKINGS, pa.table(columns), DEFAULT_INTERACTION_WEIGHTS, ["click"])
    encoded = {
        **columns,
        "document_id": encode(columns["document_id"]),
        "interaction_type": encode(columns["interaction_type"]),
    }
    interactions = _parquet_round_trip(tmp_path, pa.table(encoded))
    scored = score_sessions(RANKINGS, interactions, DEFAULT_INTERACTION_WEIGHTS, ["click"])
    assert scored.equals(plain)
    assert np.isfinite(scored.column("ndcg_at_10").to_numpy()).all()


def test_a_column_that_is_not_text_is_refused_alike_by_every_reader(tmp_path: Path) -> None:
    qrels = _parquet_round_trip(
        tmp_path, pa.table({**QRELS, "query_id": pa.array([1, 1, 2, 3], pa.int64())})
    )
    with pytest.raises(ValueError, match=r"^qrels\.query_id: type int64 is not a string column$"):
        evaluate_rankings(QUERY_IDS, RANKINGS, qrels)
    interactions = pa.table(
        {
            "session_index": pa.array([0], pa.int64()),
            "document_id": pa.array([7], pa.int64()),
            "interaction_type": ["click"],
            "position": pa.array([0], pa.int64()),
        }
    )
    with pytest.raises(
        ValueError, match=r"^interactions\.document_id: type int64 is not a string column$"
    ):
        score_sessions(RANKINGS, interactions, DEFAULT_INTERACTION_WEIGHTS, ["click"])


def test_a_null_where_text_is_required_names_its_row() -> None:
    interactions = pa.table(
        {
            "session_index": pa.array([0, 1], pa.int64()),
            "document_id": pa.array(["d1", None], pa.string()).dictionary_encode(),
            "interaction_type": ["click", "click"],
            "position": pa.array([0, 0], pa.int64()),
        }
    )
    with pytest.raises(ValueError, match=r"^interactions\.document_id: row 1 is null$"):
        score_sessions(RANKINGS, interactions, DEFAULT_INTERACTION_WEIGHTS, ["click"])
    with pytest.raises(ValueError, match=r"^query_ids\[1\]: is null$"):
        evaluate_rankings(pa.array(["q1", None]), RANKINGS, pa.table(QRELS))


def test_string_array_takes_every_string_encoding_and_an_all_null_column() -> None:
    chunked = pa.chunked_array(
        [pa.array(["a"], pa.large_string()), pa.array(["b"], pa.large_string())]
    )
    assert string_array(chunked, "f").type == pa.string()
    assert string_array(chunked, "f").to_pylist() == ["a", "b"]
    assert string_array(pa.nulls(2), "f").to_pylist() == [None, None]
    with pytest.raises(ValueError, match=r"^f: row 0 is null$"):
        string_array(pa.nulls(2), "f", nullable=False)


def test_one_module_decides_what_a_string_column_is() -> None:
    """The sentence is the fingerprint of a string-column coercer; only arrow_text.py may hold one."""
    holders = sorted(
        str(path.relative_to(EVAL_PIPELINES))
        for path in EVAL_PIPELINES.rglob("*.py")
        if "is not a string column" in path.read_text(encoding="utf-8")
    )
    assert holders == ["core/arrow_text.py"]
