"""Records, partition tables and the warehouse views with the data root on S3 (moto's server,
loopback): whole objects only, a long-lived process sees what other processes wrote, and the views
read S3 through DuckDB."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import pyarrow as pa
import pytest
import s3fs

from eval_pipelines.core.paths import DataPaths, data_root
from eval_pipelines.core.records import RecordStore
from eval_pipelines.core.run_lock import AlreadyRunning, run_lock, run_lock_held
from eval_pipelines.core.warehouse import UnreadableTableError, query, refresh_views
from eval_pipelines_tests.services import S3

GOOD = pa.table({"benchmark_id": ["b1", "b1"], "ndcg_at_10": [0.5, 1.0]})
# Parquet has no type for this: the writer fails after it opened its output.
UNWRITABLE = pa.table({"i": pa.array([pa.MonthDayNano([1, 2, 3])], pa.month_day_nano_interval())})


def other_process(s3_service: S3) -> s3fs.S3FileSystem:
    """A client with its own caches, as another machine's process has."""
    return s3fs.S3FileSystem(
        skip_instance_cache=True,
        key=s3_service.env["AWS_ACCESS_KEY_ID"],
        secret=s3_service.env["AWS_SECRET_ACCESS_KEY"],
        endpoint_url=s3_service.env["AWS_ENDPOINT_URL"],
    )


def test_a_failed_table_write_leaves_the_stored_table_whole(s3_root: str, s3_service: S3) -> None:
    store = RecordStore(DataPaths(data_root(s3_root, "test")), "benchmarks")
    store.write_table("b1", "sessions", GOOD, {"seed": 1})
    with pytest.raises(pa.ArrowNotImplementedError):
        store.write_table("b1", "sessions", UNWRITABLE)
    assert store.read_table("b1", "sessions").select(GOOD.column_names).equals(GOOD)
    assert store.read_facts("b1", "sessions") == {"seed": 1}
    with pytest.raises(pa.ArrowNotImplementedError):
        store.write_table("b2", "sessions", UNWRITABLE)
    bucket, prefix = s3_root.removeprefix("s3://").split("/", 1)
    assert s3_service.keys(bucket) == [f"{prefix}/benchmarks/b1/sessions.parquet"]


def test_a_long_lived_reader_sees_records_other_processes_write(
    s3_root: str, s3_service: S3
) -> None:
    store = RecordStore(DataPaths(data_root(s3_root, "test")), "benchmarks")
    store.accept("b1", {"benchmark_id": "b1", "status": "pending"}, {"benchmark_name": "one"})
    assert [r["status"] for r in store.listing().records] == ["pending"]

    other = other_process(s3_service)
    folder = store.root.path
    other.pipe_file(
        f"{folder}/b1/record.json",
        b'{"record": {"benchmark_id": "b1", "status": "completed", "note": "longer now"},'
        b' "run_id": "r1"}',
    )
    other.pipe_file(f"{folder}/b2/request.json", b'{"benchmark_name": "two"}')
    other.pipe_file(f"{folder}/b2/record.json", b'{"record": {"status": "pending"}}')
    listing = store.listing({"status": str})
    assert listing.problems == []
    assert [(r.get("benchmark_id"), r["status"]) for r in listing.records] == [
        ("b1", "completed"),
        (None, "pending"),
    ]
    assert store.request_ids() == ["b1", "b2"]
    assert store.entry("b1")["run_id"] == "r1"


def test_records_accepted_within_one_second_are_listed_in_the_order_accepted(
    s3_root: str, s3_service: S3
) -> None:
    """S3 keeps modification times to the second: within one, the records' created_at decides."""
    store = RecordStore(DataPaths(data_root(s3_root, "test")), "benchmarks")
    writer = other_process(s3_service)
    time.sleep(1 - time.time() % 1)  # all six PUTs within one second of the store's clock
    for index, record_id in enumerate(["c3", "b2", "a1"]):
        record = {"benchmark_id": record_id, "status": "pending"}
        record["created_at"] = f"2026-12-05T10:00:00.{index:03d}Z"
        writer.pipe_file(f"{store.folder(record_id).path}/request.json", b"{}")
        writer.pipe_file(
            f"{store.folder(record_id).path}/record.json", json.dumps({"record": record}).encode()
        )
    stamps = {info["LastModified"] for info in writer.find(store.root.path, detail=True).values()}
    assert len(stamps) == 1, "the writes crossed a second: the machine is too loaded to tell"
    assert [r["benchmark_id"] for r in store.listing().records] == ["c3", "b2", "a1"]


def test_a_record_read_while_its_run_rewrites_it_is_always_one_whole_version(
    s3_root: str, s3_service: S3
) -> None:
    """The request sensor and `get` read records while runs rewrite them (each stage, each renewal
    of a lease): every read gets a whole record, never an error or a mix of two versions."""
    store = RecordStore(DataPaths(data_root(s3_root, "test")), "benchmarks")
    store.accept("b1", {"benchmark_id": "b1", "status": "pending"}, {"benchmark_name": "one"})
    writer, stop = other_process(s3_service), threading.Event()
    key = f"{store.folder('b1').path}/record.json"

    def rewrite() -> None:
        version = 0
        while not stop.is_set():
            version += 1
            record = {"benchmark_id": "b1", "status": "replaying", "pad": "x" * (version % 64)}
            writer.pipe_file(key, json.dumps({"record": record, "run_id": "r1"}).encode())

    thread = threading.Thread(target=rewrite)
    thread.start()
    try:
        seen = [store.get("b1")["status"] for _ in range(60)]
    finally:
        stop.set()
        thread.join(timeout=30)
    assert set(seen) <= {"pending", "replaying"} and "replaying" in seen


def test_the_warehouse_views_read_s3_and_see_a_rewritten_object(
    s3_root: str, s3_service: S3
) -> None:
    paths = DataPaths(data_root(s3_root, "test"))
    store = RecordStore(paths, "benchmarks")
    store.write_table("b1", "sessions", GOOD)
    assert refresh_views(paths) == ["benchmark_sessions"]
    assert paths.warehouse.is_file() and paths.warehouse.parent == paths.local_cache
    sql = "SELECT count(*) AS n FROM benchmark_sessions"
    assert query(paths, sql).column("n").to_pylist() == [2]

    # Same key, same size, same second: only the ETag says the object changed.
    broken = b"PAR1" + b"\0" * (paths.root.fs.size(store.tables.path("b1", "sessions").path) - 4)
    other_process(s3_service).pipe_file(store.tables.path("b1", "sessions").path, broken)
    with pytest.raises(UnreadableTableError, match=r"benchmarks/b1/sessions.parquet: not a read"):
        query(paths, sql)


HOLD = """
import sys, time
from eval_pipelines.core.paths import data_root
from eval_pipelines.core.run_lock import run_lock
with run_lock(data_root(sys.argv[1], "test") / "benchmarks" / "b1", "benchmark b1"):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_killed_runs_lock_on_s3_is_free_at_once_not_a_lease_later(s3_root: str) -> None:
    """`rerun` right after a killed `create --wait`: on a file system the kernel frees the lock;
    on S3 the lease names a process of this host that is gone, so it is free too."""
    folder = data_root(s3_root, "test") / "benchmarks" / "b1"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, s3_root], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "held\n"
        assert run_lock_held(folder)
        with (
            pytest.raises(AlreadyRunning, match=f"pid {holder.pid} on "),
            run_lock(folder, "benchmark b1", wait_s=0.2),
        ):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    assert not run_lock_held(folder)
    started = time.monotonic()
    with run_lock(folder, "benchmark b1", wait_s=5):
        assert run_lock_held(folder)
    assert time.monotonic() - started < 5
