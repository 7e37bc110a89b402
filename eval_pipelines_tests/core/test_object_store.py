"""The object-storage side of storage: whole-object writes, leases as locks, DuckDB over S3, and
roots refused with a reason. Against a real local S3 server (moto, loopback)."""

from __future__ import annotations

import json
import threading
import time

import pyarrow as pa
import pytest

from eval_pipelines.core import object_store
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths, data_root, is_remote
from eval_pipelines.core.run_lock import AlreadyRunning, run_lock, run_lock_held
from eval_pipelines.core.storage import (
    directory_lock,
    read_parquet_dir,
    write_parquet_atomic,
    write_text_atomic,
)


def test_roots_are_paths_or_s3_and_anything_else_is_named(tmp_path) -> None:
    assert data_root(str(tmp_path), "x") == tmp_path
    assert not is_remote(data_root(str(tmp_path), "x"))
    root = data_root("s3://team-bucket/eval/", "x")
    assert is_remote(root) and str(root) == "s3://team-bucket/eval"
    with pytest.raises(InvalidInputError, match=r"^EVAL_PIPELINES_DATA: 'gs://b/x' is a gs:// URL"):
        data_root("gs://b/x", "EVAL_PIPELINES_DATA")
    with pytest.raises(InvalidInputError, match="does not name a valid S3 bucket"):
        data_root("s3://Bad_Bucket/x", "--data-dir")


def test_what_cannot_live_on_s3_goes_to_a_local_cache(s3_root, tmp_path) -> None:
    paths = DataPaths(data_root(s3_root, "x"))
    assert paths.local_cache.is_relative_to(tmp_path / "cache")
    assert paths.warehouse.parent == paths.local_cache
    assert DataPaths(tmp_path).warehouse == tmp_path / "warehouse.duckdb"


def test_whole_objects_are_written_and_read_back_through_duckdb(s3_root, s3_service) -> None:
    root = data_root(s3_root, "x")
    table = pa.table({"a": [1, 2, 3]})
    write_parquet_atomic(table, root / "t" / "part-1.parquet")
    write_parquet_atomic(pa.table({"a": [4]}), root / "t" / "part-2.parquet")
    write_text_atomic("hello", root / "note.txt")
    assert (root / "note.txt").read_text() == "hello"
    assert read_parquet_dir(root / "t").column("a").to_pylist() == [1, 2, 3, 4]
    with object_store.connect_duckdb(root) as con:
        assert con.sql(f"SELECT sum(a) FROM read_parquet('{root}/t/*.parquet')").fetchall() == [
            (10,)
        ]
    bucket = s3_root.split("/")[2]
    # no temporary object was ever left beside the real ones
    assert sorted(s3_service.keys(bucket)) == [
        "team/note.txt",
        "team/t/part-1.parquet",
        "team/t/part-2.parquet",
    ]


def test_a_failed_write_leaves_nothing(s3_root, s3_service) -> None:
    root = data_root(s3_root, "x")
    with pytest.raises(RuntimeError):
        from eval_pipelines.core.storage import atomic_path

        with atomic_path(root / "half.parquet") as tmp:
            tmp.write_bytes(b"PAR1 half")
            raise RuntimeError("the writer died")
    assert s3_service.keys(s3_root.split("/")[2]) == []


def test_a_directory_lock_on_s3_excludes_and_is_released(s3_root) -> None:
    folder = data_root(s3_root, "x") / "logs"
    inside: list[str] = []
    overlap = threading.Event()

    def worker(name: str) -> None:
        with directory_lock(folder, timeout_s=20):
            if inside:
                overlap.set()
            inside.append(name)
            time.sleep(0.2)
            inside.remove(name)

    threads = [threading.Thread(target=worker, args=(str(i),)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not overlap.is_set()
    assert not (folder / ".lock").exists()
    with (
        directory_lock(folder, timeout_s=1),
        pytest.raises(TimeoutError, match="held its lock"),
        directory_lock(folder, timeout_s=0.3),
    ):
        pass


def test_a_lease_left_by_a_dead_holder_expires(s3_root) -> None:
    target = data_root(s3_root, "x") / "req" / ".run.lock"
    assert object_store.acquire_within(target, wait_s=0, ttl_s=0.5)  # never released: a dead holder
    assert object_store.lease_holder(target) is not None
    with object_store.lease(target, wait_s=0.1) as held:
        assert not held
    time.sleep(0.6)
    with object_store.lease(target, wait_s=0.1) as held:
        assert held


def test_the_run_lock_on_s3_names_its_holder_and_is_renewed(s3_root) -> None:
    folder = data_root(s3_root, "x") / "benchmarks" / "b1"
    with run_lock(folder, "benchmark b1"):
        assert run_lock_held(folder)
        with (
            pytest.raises(
                AlreadyRunning, match=r"benchmark b1 is running in another process \(pid"
            ),
            run_lock(folder, "benchmark b1", wait_s=0.2),
        ):
            pass
    assert not run_lock_held(folder)


def test_a_missing_bucket_is_named_before_any_work(s3_root) -> None:
    with pytest.raises(InvalidInputError, match=r"^--data-dir: bucket 'nobody-made-this' does not"):
        object_store.check_reachable(data_root("s3://nobody-made-this/x", "x"), "--data-dir")


def test_an_ended_lease_is_taken_over_once_and_its_old_holder_cannot_undo_that(s3_root) -> None:
    """Takeover is a PUT conditional on the ETag the ended lease was read under; the old holder's
    renewals and release are conditional on its own last ETag, so neither touches the new lease."""
    target = data_root(s3_root, "x") / "logs" / ".lock"
    with object_store.lease(target, wait_s=1, ttl_s=0.6) as held:
        assert held
        stalled = {"host": "elsewhere", "pid": 1, "expires_at": 0}  # its renewals stopped
        target.fs.pipe_file(target.path, json.dumps(stalled).encode())
        seen = object_store.lease_holder(target)
        assert seen is None  # ended: free to take
        assert object_store.acquire_within(target, wait_s=1, ttl_s=30)  # the new holder
        # a second waiter that read the ended lease before the takeover: its takeover must fail
        assert object_store._put(target, 30, IfMatch='"etag-of-the-ended-lease"') is None
        time.sleep(0.5)  # the old holder's renewal (every 0.2 s) runs and finds the lease changed
    holder = object_store.lease_holder(target)
    assert holder is not None and holder.expires_at > time.time() + 20, holder


def test_a_root_reaches_the_store_its_environment_names_not_one_used_before(
    s3_root, s3_service, monkeypatch
) -> None:
    """s3fs reuses a filesystem per set of arguments: a root made after AWS_ENDPOINT_URL changed (a
    second store in one process) must not reach the first store."""
    from eval_pipelines_tests.services import s3_server

    first = data_root(s3_root, "x")
    write_text_atomic("first", first / "note.txt")
    with s3_server() as other:
        for name, value in other.env.items():
            monkeypatch.setenv(name, value)
        other_root = other.create_bucket(s3_root.split("/")[2]) + "/team"
        second = data_root(other_root, "x")
        assert not (second / "note.txt").exists()
        write_text_atomic("second", second / "note.txt")
        assert other.keys(s3_root.split("/")[2]) == ["team/note.txt"]
    assert (first / "note.txt").read_text() == "first"
