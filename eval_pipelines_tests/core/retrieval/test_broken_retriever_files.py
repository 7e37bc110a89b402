"""One broken retriever file stops only the requests that need it (issue 10, point 12).

Before, any bad file under retrievers/ failed every benchmark and evaluation with "no retrievers
are configured". Now the registry keeps the good files and each file's problem: a request for an
id a good file defines goes ahead; a request for an id a broken file declares (or, when the file
could not even be read, may declare) fails with exit 2 naming that file and its problem.
"""

from __future__ import annotations

from pathlib import Path

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.registry import (
    UnknownRetrieverError,
    load_retriever_registry,
    open_retrievers,
)
from eval_pipelines_tests.core.retrieval.conftest import pipeline_config, write_retriever

SEARCH = [{"stage_id": "feature_search", "parameters": {"fields": ["title"]}}]
BAD_STAGE = [{"stage_id": "magic"}]
UNREADABLE = "id: [unclosed\nkind: pipeline\n"


def broken_files(paths: DataPaths) -> dict[str, Path]:
    """Good, bad-stage, unreadable, duplicated, and a local server whose backend is broken."""
    return {
        "good": write_retriever(paths, pipeline_config("good", SEARCH)),
        "bad_stage": write_retriever(paths, pipeline_config("bad_stage", BAD_STAGE)),
        "unreadable": write_retriever(paths, UNREADABLE, "unreadable"),
        "twin_a": write_retriever(paths, pipeline_config("twin", SEARCH), "twin_a"),
        "twin_b": write_retriever(paths, pipeline_config("twin", SEARCH), "twin_b"),
        "served": write_retriever(
            paths,
            {
                "id": "served",
                "kind": "http",
                "http": {"url": "http://127.0.0.1:9/search"},
                "local_server": {"backend": "bad_stage"},
            },
        ),
    }


def test_the_registry_keeps_good_files_and_each_problem(paths: DataPaths) -> None:
    files = broken_files(paths)
    registry = load_retriever_registry(paths)
    assert list(registry.configs) == ["good"]
    assert registry.problem_for("good") is None

    bad = registry.problem_for("bad_stage")
    assert bad is not None
    assert bad.startswith("retriever 'bad_stage' cannot be used: ")
    assert f"{files['bad_stage']}: stages[0].stage_id: unknown stage 'magic'" in bad

    ghost = registry.problem_for("ghost")
    assert ghost is not None
    assert ghost.startswith(
        "unknown retriever 'ghost'; 1 retriever file could not be read and may define it: "
    )
    assert f"{files['unreadable']}: yaml: invalid YAML at line" in ghost
    assert "bad_stage.yaml" not in ghost, "a file whose id was read defines that id only"

    twin = registry.problem_for("twin")
    assert twin is not None and "duplicate id 'twin'" in twin
    assert str(files["twin_a"]) in twin and str(files["twin_b"]) in twin

    served = registry.problem_for("served")
    assert served is not None and "local_server.backend" in served
    assert "its file cannot be used" in served and "unknown stage 'magic'" in served

    with open_retrievers(paths, ["good"]) as retrievers:
        assert retrievers["good"].search({"text": "red shoes"}).succeeded
    try:
        with open_retrievers(paths, ["good", "twin"]):
            raise AssertionError("twin is defined twice")
    except UnknownRetrieverError as exc:
        assert "retriever_id: retriever 'twin' cannot be used" in str(exc)
