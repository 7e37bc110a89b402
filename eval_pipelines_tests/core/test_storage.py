"""Atomic writes replace regular files only, never devices or what a link points at."""

import os
from pathlib import Path

import pyarrow as pa
import pytest

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.storage import atomic_path, write_parquet_atomic, write_text_atomic


def test_a_regular_file_is_replaced_whole_and_no_temporary_file_remains(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    write_text_atomic("old", target)
    write_text_atomic("new", target)
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "t.parquet"
    write_parquet_atomic(pa.table({"a": [1]}), target)
    before = target.read_bytes()
    with pytest.raises(RuntimeError, match="crash"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a file")
        raise RuntimeError("crash mid-write")
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_devices_and_links_to_them_are_refused(tmp_path: Path) -> None:
    link = tmp_path / "stdout"
    os.symlink("/dev/null", link)
    for target in (Path("/dev/null"), link):
        with pytest.raises(InvalidInputError, match="not a regular file"):
            write_text_atomic("x", target)
    assert Path("/dev/null").exists() and not Path("/dev/null").is_file()
    assert link.is_symlink()
