"""Datasets on an S3 root (a real moto server on loopback): object storage cannot rename a folder, so
each version is written under its own prefix and dataset.json, one PUT, names it. A reader sees one
version whole, a listing never shows a half-written dataset, and failures leave no object."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from eval_pipelines.core.datasets import (
    dataset_id,
    import_dataset,
    list_datasets,
    load_dataset,
)
from eval_pipelines.core.datasets.readers import read_dataset_files
from eval_pipelines.core.datasets.store import SUMMARY_FILE, dataset_tables, store_dataset
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths, data_root
from eval_pipelines.core.storage import write_parquet_atomic, write_text_atomic
from eval_pipelines_tests.services import S3


def truth_file(path: Path, queries: int, grade: int) -> Path:
    rows = [
        {
            "query_id": f"q{i}",
            "query_input": {"text": f"query {i}"},
            "relevant_documents": [f"d{i}-{j}" for j in range(50)],
            "relevance_scores": {f"d{i}-{j}": grade for j in range(50)},
        }
        for i in range(queries)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def remote(s3_root: str) -> DataPaths:
    return DataPaths(data_root(s3_root, "test"))


def keys_under(s3: S3, paths: DataPaths, folder: str) -> list[str]:
    bucket, prefix = paths.root.path.split("/", 1)
    return sorted(
        key.removeprefix(f"{prefix}/{folder}/") for key in s3.keys(bucket, f"{prefix}/{folder}/")
    )


def test_a_dataset_replaced_while_readers_load_it_is_one_version_or_the_other(
    remote: DataPaths, s3_service: S3, tmp_path: Path
) -> None:
    small = truth_file(tmp_path / "small.jsonl", 20, 1)
    large = truth_file(tmp_path / "large.jsonl", 60, 2)
    expected = {import_dataset(remote, "truth", [small]).dataset_id}
    stop = threading.Event()
    seen: list[str] = []
    failures: list[BaseException] = []

    def replace() -> None:
        try:
            for round_ in range(8):
                source = large if round_ % 2 == 0 else small
                expected.add(import_dataset(remote, "truth", [source], replace=True).dataset_id)
        except BaseException as exc:  # reported by the test, not lost in a thread
            failures.append(exc)
        finally:
            stop.set()

    def read() -> None:
        try:
            while not stop.is_set():
                dataset = load_dataset(remote, "truth")
                # the summary, queries and judgments are of one version
                assert dataset_id(dataset.queries, dataset.judgments) == dataset.summary.dataset_id
                assert dataset.queries.num_rows == dataset.summary.query_count
                seen.append(dataset.summary.dataset_id)
                assert [s.name for s in list_datasets(remote)] == ["truth"]
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=replace)] + [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert len(expected) == 2 and set(seen) <= expected and len(seen) > 2
    assert load_dataset(remote, "truth").summary.dataset_id == dataset_id(
        *dataset_tables(read_dataset_files([small], "auto"))
    )
    # dataset.json and whole versions: the current one, and those replaced minutes ago (a reader
    # may still load one; a writer paused past its lease may yet name one)
    stored = keys_under(s3_service, remote, "datasets/truth")
    versions = {key.split("/")[0] for key in stored if key != SUMMARY_FILE}
    assert SUMMARY_FILE in stored and len(versions) == 9
    assert sorted(stored) == sorted(
        [SUMMARY_FILE]
        + [f"{v}/{f}" for v in versions for f in ("judgments.parquet", "queries.parquet")]
    )


def test_a_writer_that_died_leaves_nothing_listed_and_its_files_go_once_abandoned(
    remote: DataPaths, s3_service: S3, tmp_path: Path
) -> None:
    queries, _ = dataset_tables(
        read_dataset_files([truth_file(tmp_path / "t.jsonl", 3, 1)], "auto")
    )
    died = remote.dataset_dir("half") / "v-20200101T000000-deadbeef"
    write_parquet_atomic(queries, died / "queries.parquet")  # then the writer died
    # a writer paused past its lease, that may yet write dataset.json naming its version
    paused = f"v-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-cafebabe"
    write_parquet_atomic(queries, remote.dataset_dir("half") / paused / "queries.parquet")

    assert list_datasets(remote) == []
    with pytest.raises(InvalidInputError, match="dataset: 'half' not found"):
        load_dataset(remote, "half")
    summary = import_dataset(remote, "half", [tmp_path / "t.jsonl"])

    assert list_datasets(remote) == [summary]
    stored = keys_under(s3_service, remote, "datasets/half")
    assert not [key for key in stored if key.startswith(died.name)]
    assert f"{paused}/queries.parquet" in stored
    assert len(stored) == 4 and not any(key.endswith(".lock") for key in stored)


def test_a_failed_store_leaves_no_object_and_the_old_dataset(
    remote: DataPaths, s3_service: S3, tmp_path: Path
) -> None:
    first = import_dataset(remote, "truth", [truth_file(tmp_path / "a.jsonl", 5, 1)])
    before = keys_under(s3_service, remote, "datasets")
    queries, judgments = dataset_tables(
        read_dataset_files([truth_file(tmp_path / "b.jsonl", 7, 2)], "auto")
    )
    unwritable = pa.table({"x": pa.array([{"a": 1}], pa.struct([]))})
    with pytest.raises(Exception):  # noqa: B017 - pyarrow's own error for an empty struct
        store_dataset(
            remote,
            "truth",
            queries,
            judgments,
            fmt="ground_truth",
            source_files=[],
            replace=True,
            side_tables={"evidence.parquet": unwritable},
        )
    assert keys_under(s3_service, remote, "datasets") == before
    assert load_dataset(remote, "truth").summary == first


def test_two_imports_of_one_new_name_at_once_store_one(remote: DataPaths, tmp_path: Path) -> None:
    sources = [truth_file(tmp_path / f"{i}.jsonl", 4 + i, 1) for i in range(2)]
    outcomes: list[object] = []

    def run(source: Path) -> None:
        try:
            outcomes.append(import_dataset(remote, "once", [source]))
        except InvalidInputError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=run, args=(source,)) for source in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    refused = [o for o in outcomes if isinstance(o, str)]
    stored = [o for o in outcomes if not isinstance(o, str)]
    assert refused == ["dataset once exists; use --replace"] and len(stored) == 1
    assert list_datasets(remote) == stored


def test_a_dataset_json_naming_no_version_is_named(remote: DataPaths, tmp_path: Path) -> None:
    import_dataset(remote, "truth", [truth_file(tmp_path / "a.jsonl", 2, 1)])
    pointer = remote.dataset_dir("truth") / SUMMARY_FILE
    body = json.loads(pointer.read_text())
    write_text_atomic(json.dumps({**body, "version": "../../logs"}), pointer)
    with pytest.raises(
        InvalidInputError, match=r"datasets/truth/dataset.json: version: '../../logs'"
    ):
        load_dataset(remote, "truth")


def test_a_copy_of_an_s3_root_on_a_file_system_reads_the_same(
    remote: DataPaths, tmp_path: Path
) -> None:
    summary = import_dataset(remote, "truth", [truth_file(tmp_path / "a.jsonl", 3, 2)])
    local = DataPaths(tmp_path / "copy")
    remote.root.fs.get(remote.datasets_dir.path, str(local.datasets_dir), recursive=True)
    assert list_datasets(local) == [summary]
    loaded = load_dataset(local, "truth")
    assert loaded.summary == summary and loaded.queries.num_rows == 3


def test_a_dataset_copied_from_a_local_root_is_read_refused_and_replaced(
    remote: DataPaths, tmp_path: Path
) -> None:
    local = DataPaths(tmp_path / "local")
    copied = import_dataset(local, "truth", [truth_file(tmp_path / "a.jsonl", 3, 1)])
    for file in local.dataset_dir("truth").iterdir():  # as `aws s3 sync` of a local root leaves it
        remote.root.fs.put_file(str(file), (remote.dataset_dir("truth") / file.name).path)

    assert load_dataset(remote, "truth").summary == copied
    with pytest.raises(InvalidInputError, match="dataset truth exists; use --replace"):
        import_dataset(remote, "truth", [truth_file(tmp_path / "b.jsonl", 5, 2)])
    replaced = import_dataset(remote, "truth", [tmp_path / "b.jsonl"], replace=True)
    assert load_dataset(remote, "truth").summary == replaced != copied
