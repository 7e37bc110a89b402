"""Atomic writes and staging directories get the modes open() and mkdir() would give under the umask.

The end-to-end check (real CLI subprocesses under umask 022 and 077) is in
eval_pipelines_tests/cli/test_file_modes_cli.py; these run in process, under an unusual umask.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pytest

from eval_pipelines.core.storage import (
    atomic_path,
    new_staging_directory,
    write_parquet_atomic,
    write_text_atomic,
)
from eval_pipelines.core.trec import write_run

UMASK = 0o027


@pytest.fixture
def umask_027() -> Iterator[None]:
    previous = os.umask(UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_atomic_writer_gives_0666_minus_the_umask(tmp_path: Path, umask_027: None) -> None:
    text = write_text_atomic("x", tmp_path / "a" / "text.json")
    table = write_parquet_atomic(pa.table({"a": [1]}), tmp_path / "a" / "t.parquet")
    run = write_run(tmp_path / "b" / "run.trec", ["q1"], [["d1", "d2"]])
    with atomic_path(tmp_path / "b" / "raw.bin") as tmp:
        assert mode(tmp) == 0o640
        tmp.write_bytes(b"raw")
    for path in (text, table, run, tmp_path / "b" / "raw.bin"):
        assert mode(path) == 0o640, path
    for directory in (tmp_path / "a", tmp_path / "b"):
        assert mode(directory) == 0o750, directory
    assert os.umask(UMASK) == UMASK


def test_a_replaced_file_takes_the_umask_mode_not_the_old_file_mode(
    tmp_path: Path, umask_027: None
) -> None:
    target = tmp_path / "record.json"
    target.write_text("old")
    target.chmod(0o600)
    write_text_atomic("new", target)
    assert (target.read_text(), mode(target)) == ("new", 0o640)


def test_staging_directories_are_new_hidden_and_0777_minus_the_umask(
    tmp_path: Path, umask_027: None
) -> None:
    made = {new_staging_directory(tmp_path / "datasets", ".mini.", ".new") for _ in range(20)}
    assert len(made) == 20
    for directory in made:
        assert directory.parent == tmp_path / "datasets"
        assert directory.name.startswith(".mini.") and directory.name.endswith(".new")
        assert mode(directory) == 0o750 and not any(directory.iterdir())


def test_concurrent_writers_all_get_the_umask_mode_and_leave_it_unchanged(
    tmp_path: Path, umask_027: None
) -> None:
    """A writer that read the umask by setting it and putting it back would race with the others."""

    def write(i: int) -> Path:
        return write_text_atomic(str(i), tmp_path / f"{i % 4}" / f"{i}.txt")

    with ThreadPoolExecutor(max_workers=8) as pool:
        written = list(pool.map(write, range(200)))
    assert {mode(path) for path in written} == {0o640}
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        [*(f"{i}.txt" for i in range(200)), *"0123"]
    )
    assert os.umask(UMASK) == UMASK
