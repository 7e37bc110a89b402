"""`eval-pipelines ingest` as a user runs it: counts per quarantine reason, exit 2 on unparseable files."""

import json
from pathlib import Path

from eval_pipelines_tests.cli.conftest import run_cli

GOOD_EXECUTION = {
    "execution_id": "exec_1",
    "retriever_id": "prod",
    "session_id": "s1",
    "user_id": "u1",
    "query_input": {"text": "red sofa"},
    "documents": ["d1", "d2", "d3"],
    "taxonomy_node_ids": ["furniture"],
    "created_at": "2026-10-01T12:00:00Z",
}


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_ingest_reports_quarantine_reasons_and_does_not_duplicate(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    executions = write_jsonl(
        tmp_path / "executions.jsonl",
        [GOOD_EXECUTION, {**GOOD_EXECUTION, "execution_id": "exec_2", "created_at": "yesterday"}],
    )
    interactions = write_jsonl(
        tmp_path / "interactions.jsonl",
        [
            {
                "execution_id": "exec_1",
                "document_id": "d2",
                "interaction_type": ["click", "purchase"],
                "position": 1,
                "session_id": "s1",
                "timestamp": "2026-10-01T12:00:05Z",
            },
            {
                "execution_id": "exec_404",
                "document_id": "d1",
                "interaction_type": "click",
                "position": 0,
                "session_id": "s1",
                "timestamp": "2026-10-01T12:00:06Z",
            },
            {
                "execution_id": "exec_1",
                "document_id": "d1",
                "interaction_type": "click",
                "position": -3,
                "session_id": "s1",
                "timestamp": "2026-10-01T12:00:07Z",
            },
        ],
    )
    first = run_cli(data_dir, "ingest", "executions", str(executions), "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["ingested"] == 1
    assert report["quarantined"] == {"bad_timestamp": 1}

    result = run_cli(data_dir, "ingest", "interactions", str(interactions))
    assert result.returncode == 0, result.stderr
    assert "unknown_execution_id: 1" in result.stdout
    assert "negative_position: 1" in result.stdout

    again = run_cli(data_dir, "ingest", "executions", str(executions), "--json")
    assert json.loads(again.stdout)["ingested"] == 0
    assert json.loads(again.stdout)["already_present"] >= 1
    assert len(list((data_dir / "logs" / "executions").glob("*.parquet"))) == 1


def test_unparseable_file_exits_2_naming_file_and_line_and_writes_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    good = write_jsonl(tmp_path / "good.jsonl", [GOOD_EXECUTION])
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(GOOD_EXECUTION) + "\n{not json\n", encoding="utf-8")
    result = run_cli(data_dir, "ingest", "executions", str(good), str(broken))
    assert result.returncode == 2
    assert "broken.jsonl:2" in result.stderr
    assert not (data_dir / "logs").exists() or not any((data_dir / "logs").rglob("*.parquet"))


def test_missing_file_and_unknown_table_are_invalid_input(tmp_path: Path) -> None:
    missing = run_cli(tmp_path / "data", "ingest", "executions", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2
    assert "nope.jsonl" in missing.stderr
    unknown = run_cli(tmp_path / "data", "ingest", "sessions", str(tmp_path / "nope.jsonl"))
    assert unknown.returncode == 2


def test_ingest_collection_then_search_it_with_a_pipeline_retriever(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    docs = write_jsonl(
        tmp_path / "books.jsonl",
        [
            {"document_id": "b1", "title": "The red sofa mystery", "price": 12.5},
            {"document_id": "b2", "title": "Gardening for beginners", "price": 20.0},
            {"document_id": "b3", "title": "Sofa repair handbook", "price": 8.0},
        ],
    )
    imported = run_cli(data_dir, "ingest", "collection", str(docs), "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["documents"] == 3
    (data_dir / "retrievers").mkdir()
    (data_dir / "retrievers" / "books_bm25.yaml").write_text(
        "id: books_bm25\nkind: pipeline\ncollection: books\nstages:\n"
        "  - stage_id: feature_search\n    parameters: {fields: [title], top_k: 10}\n"
    )
    listed = run_cli(data_dir, "retrievers", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == ["books_bm25"]

    duplicate = write_jsonl(tmp_path / "dup.jsonl", [{"document_id": "x"}, {"document_id": "x"}])
    rejected = run_cli(data_dir, "ingest", "collection", str(duplicate), "--name", "books")
    assert rejected.returncode == 2
    assert "document_id" in rejected.stderr
