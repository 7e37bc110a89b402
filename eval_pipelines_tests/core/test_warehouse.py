"""One unreadable Parquet file is left out of its view and named; it never takes the others down."""

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.storage import write_parquet_atomic
from eval_pipelines.core.warehouse import (
    UnreadableTableError,
    query,
    refresh_views,
    scan_views,
)


def parquet(path: Path, ids: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"execution_id": ids, "retriever_id": ["r"] * len(ids)}), path)
    return path


def truncated(path: Path) -> Path:
    """A real Parquet file cut in half, as a crash or a full disk leaves it."""
    parquet(path, [f"t{n}" for n in range(100)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def count(paths: DataPaths, view: str) -> int:
    return query(paths, f"SELECT count(*) AS n FROM {view}")["n"][0].as_py()


@pytest.fixture
def paths(tmp_path: Path) -> DataPaths:
    """Two logged executions, three execution batches of which one is truncated."""
    paths = DataPaths(tmp_path / "data")
    parquet(paths.log_table_dir("executions") / "part-a.parquet", ["l1", "l2"])
    parquet(paths.root / "executions" / "r1" / "b1.parquet", ["e1", "e2", "e3"])
    parquet(paths.root / "executions" / "r2" / "b3.parquet", ["e4"])
    truncated(paths.root / "executions" / "r1" / "b2.parquet")
    return paths


def test_refresh_leaves_the_truncated_file_out_reports_it_and_builds_every_view(
    paths: DataPaths,
) -> None:
    reports: list[str] = []
    views = refresh_views(paths, reports.append)
    bad = paths.root / "executions" / "r1" / "b2.parquet"
    assert views == ["executions", "logged_executions"]
    assert len(reports) == 1
    assert str(bad) in reports[0]
    assert "not a readable Parquet file" in reports[0]
    assert "left out of view executions" in reports[0]
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM executions").fetchall() == [(4,)]
        assert con.execute("SELECT count(*) FROM logged_executions").fetchall() == [(2,)]


def test_a_query_names_the_bad_file_of_the_view_it_reads_and_other_views_answer(
    paths: DataPaths,
) -> None:
    assert count(paths, "logged_executions") == 2
    assert query(
        paths,
        "SELECT execution_id FROM logged_executions WHERE execution_id = ? ORDER BY 1",
        ["l2"],
    )["execution_id"].to_pylist() == ["l2"]
    for sql in (
        "SELECT count(*) FROM executions",
        "SELECT * FROM logged_executions WHERE execution_id IN (SELECT execution_id FROM Executions)",
        "WITH e AS (SELECT * FROM main.executions) SELECT count(*) FROM e",
    ):
        with pytest.raises(UnreadableTableError) as refused:
            query(paths, sql)
        message = str(refused.value)
        assert "view executions cannot be queried" in message
        assert str(paths.root / "executions" / "r1" / "b2.parquet") in message
        assert "not a readable Parquet file" in message


def test_a_view_whose_only_file_is_bad_is_refused_by_name_not_missing(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "data")
    parquet(paths.log_table_dir("executions") / "part-a.parquet", ["l1"])
    bad = truncated(paths.log_table_dir("interactions") / "part-b.parquet")
    assert refresh_views(paths, lambda _: None) == ["logged_executions"]
    with pytest.raises(
        UnreadableTableError, match="view interactions cannot be queried"
    ) as refused:
        query(paths, "SELECT count(*) FROM interactions")
    assert str(bad) in str(refused.value)
    assert count(paths, "logged_executions") == 1


def test_temporary_and_hidden_files_are_neither_read_nor_reported(paths: DataPaths) -> None:
    """A writer's temporary (a dot name, being written) is not a bad file; nor is it data."""
    folder = paths.root / "executions" / "r2"
    truncated(folder / ".b5.parquet.0123abcd.tmp")
    parquet(folder / ".b6.parquet", ["hidden"])
    truncated(paths.root / "executions" / ".staging" / "b7.parquet")
    (paths.root / "executions" / "r1" / "b2.parquet").unlink()
    reports: list[str] = []
    refresh_views(paths, reports.append)
    assert reports == []
    assert count(paths, "executions") == 4
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM executions").fetchall() == [(4,)]


def test_a_file_written_again_is_checked_again(paths: DataPaths) -> None:
    bad = paths.root / "executions" / "r1" / "b2.parquet"
    assert [f.path for f in scan_views(paths).unreadable] == [bad]
    write_parquet_atomic(pa.table({"execution_id": ["e5"], "retriever_id": ["r"]}), bad)
    assert scan_views(paths).unreadable == []
    assert count(paths, "executions") == 5
    bad.write_bytes(bad.read_bytes()[:-10])  # damaged in place: same inode, new size
    assert [f.path for f in scan_views(paths).unreadable] == [bad]


def test_a_directory_named_like_a_part_is_reported(paths: DataPaths) -> None:
    (paths.root / "executions" / "r1" / "b2.parquet").unlink()
    odd = paths.log_table_dir("executions") / "part-z.parquet"
    odd.mkdir()
    unreadable = scan_views(paths).unreadable
    assert [(f.view, f.path, f.problem) for f in unreadable] == [
        ("logged_executions", odd, "not a regular file")
    ]
    assert count(paths, "executions") == 4


def test_a_view_with_every_file_readable_still_sees_parts_written_after_the_refresh(
    paths: DataPaths,
) -> None:
    refresh_views(paths, lambda _: None)
    parquet(paths.log_table_dir("executions") / "part-later.parquet", ["l3"])
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM logged_executions").fetchall() == [(3,)]
