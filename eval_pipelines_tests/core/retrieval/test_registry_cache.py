"""Loading the retriever registry twice in a process reads no unchanged file again (issue 12: a
benchmark run read every retriever YAML and its collection schema 7 times), yet every change made
in between is seen: a file rewritten in place with its size and mtime kept, a replaced collection."""

from __future__ import annotations

import os
import time

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.collections import write_collection
from eval_pipelines.core.retrieval.file_cache import RACY_NS, cache_info
from eval_pipelines.core.retrieval.registry import load_retriever_registry
from eval_pipelines_tests.core.retrieval.conftest import pipeline_config, write_retriever

SEARCH = [{"stage_id": "feature_search", "parameters": {"fields": ["title"]}}]


def remote(path: str) -> dict[str, object]:
    return {"id": "remote", "kind": "http", "http": {"url": f"http://127.0.0.1:1{path}"}}


def settle() -> None:
    """Let the files age past the window in which a second edit could keep every stat field."""
    time.sleep(RACY_NS / 1e9 + 0.2)


def test_a_second_load_reads_no_unchanged_file_again(paths: DataPaths) -> None:
    write_retriever(paths, pipeline_config("bm25", SEARCH))
    write_retriever(paths, remote("/search"))
    settle()
    first = load_retriever_registry(paths)
    before = cache_info()
    second = load_retriever_registry(paths)
    after = cache_info()
    assert second.configs == first.configs
    assert second.problems == first.problems == ()
    assert after.misses == before.misses
    assert after.hits - before.hits == 3  # two retriever files and one collection schema


def test_each_load_gets_its_own_copy_of_what_was_read(paths: DataPaths) -> None:
    write_retriever(paths, remote("/search"))
    settle()
    first = load_retriever_registry(paths).configs["remote"]
    assert first.http is not None
    first.http.request_body["changed_by_a_caller"] = True
    second = load_retriever_registry(paths).configs["remote"]
    assert second.http is not None
    assert "changed_by_a_caller" not in second.http.request_body


def test_a_file_rewritten_in_place_with_size_and_mtime_kept_is_read_again(
    paths: DataPaths,
) -> None:
    path = write_retriever(paths, remote("/aaaa"))
    settle()
    written = path.stat()
    configs = load_retriever_registry(paths).configs
    assert configs["remote"].http is not None
    assert configs["remote"].http.url.endswith("/aaaa")
    path.write_text(path.read_text(encoding="utf-8").replace("/aaaa", "/bbbb"), encoding="utf-8")
    os.utime(path, ns=(written.st_atime_ns, written.st_mtime_ns))
    assert path.stat().st_size == written.st_size
    configs = load_retriever_registry(paths).configs
    assert configs["remote"].http is not None
    assert configs["remote"].http.url.endswith("/bbbb")


def test_a_replaced_collection_is_checked_again(paths: DataPaths) -> None:
    write_retriever(paths, pipeline_config("bm25", SEARCH))
    settle()
    assert "bm25" in load_retriever_registry(paths).configs
    write_collection(paths, "products", [{"document_id": "p1", "description": "no title"}])
    registry = load_retriever_registry(paths)
    assert "bm25" not in registry.configs
    assert "unknown column 'title'" in str(registry.problems[0])
