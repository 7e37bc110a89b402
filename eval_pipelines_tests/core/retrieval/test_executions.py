"""Executions: the ExecutionDetail shape, the Parquet store round trip, and opening retrievers by id."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.execution import Execution, ScoredDocument, StageStatistics
from eval_pipelines.core.retrieval.execution_store import (
    EXECUTIONS_SCHEMA,
    find_execution,
    get_execution,
    write_executions,
)
from eval_pipelines.core.retrieval.registry import (
    UnknownRetrieverError,
    open_retriever,
    open_retrievers,
)
from eval_pipelines_tests.schemas import validation_errors

from .conftest import pipeline_config, write_retriever

STAGES = [
    {"stage_id": "feature_search", "parameters": {"fields": ["title", "description"]}},
    {"stage_id": "attribute_filter", "parameters": {"fields": ["price"]}},
    {"stage_id": "limit", "parameters": {"n": 5}},
]


@pytest.fixture
def executions(paths: DataPaths) -> list[Execution]:
    write_retriever(paths, pipeline_config("shop", STAGES))
    with open_retriever(paths, "shop") as retriever:
        return [
            retriever.search({"text": "running shoes"}),
            retriever.search({"text": "leather", "filters": {"price": {"lt": 100}, "size": 9}}),
            retriever.search({"text": "the"}),
            retriever.search({"text": "boots", "filters": {"price": {"bad_op": 1}}}),
        ]


def test_execution_detail_validates_against_the_seed_schema(executions: list[Execution]) -> None:
    completed, warned, empty, failed = executions
    assert [e.status for e in executions] == ["completed", "completed", "completed", "failed"]
    for execution in executions:
        detail = execution.to_detail()
        assert validation_errors("get_execution.openapi", "ExecutionDetail", detail) == []
        assert detail["created_at"].endswith("Z") and detail["completed_at"].endswith("Z")
        assert detail["stage_statistics"]["total_time_ms"] == execution.total_time_ms
        assert detail["budget"] == {"credits_used": 0, "time_used_ms": execution.total_time_ms}
    detail = completed.to_detail()
    assert [d["rank"] for d in detail["documents"]] == [1, 2, 3, 4, 5]
    assert detail["pagination"] == {
        "total": 5,
        "limit": 5,
        "offset": 0,
        "has_next": False,
        "has_previous": False,
    }
    assert (detail["total_stages"], detail["stages_completed"], detail["current_stage"]) == (
        3,
        3,
        None,
    )
    assert set(detail["stage_statistics"]["stages"]) == {
        "feature_search",
        "attribute_filter",
        "limit",
    }
    assert warned.to_detail()["warnings"]
    assert empty.to_detail()["documents"] == []
    failed_detail = failed.to_detail()
    assert failed_detail["error"] and failed_detail["error_type"] == "stage_error"
    assert failed_detail["stages_completed"] == 1


def test_efficiency_is_zero_without_input() -> None:
    assert StageStatistics.measured(0, 0, 1.0).efficiency == 0.0
    assert StageStatistics.measured(8, 2, 1.0).efficiency == 0.25


def test_store_round_trip(paths: DataPaths, executions: list[Execution]) -> None:
    [file] = write_executions(paths, executions, batch_id="batch-1")
    assert file == paths.retriever_executions_dir("shop") / "batch-1.parquet"
    assert pq.read_schema(file).names == EXECUTIONS_SCHEMA.names
    for execution in executions:
        assert get_execution(paths, "shop", execution.execution_id) == execution.to_detail()
        stored = find_execution(paths, "shop", execution.execution_id)
        assert stored == execution
    assert get_execution(paths, "shop", "exec_0000000000000000") is None
    assert get_execution(paths, "nobody", executions[0].execution_id) is None
    assert get_execution(paths, "shop", "exec_' OR 1=1 --") is None


def test_stored_stage_statistics_keep_pipeline_order_and_say_no_cache(
    paths: DataPaths, executions: list[Execution]
) -> None:
    write_executions(paths, executions, batch_id="batch-order")
    detail = get_execution(paths, "shop", executions[0].execution_id)
    assert detail is not None
    stages = detail["stage_statistics"]["stages"]
    assert list(stages) == [stage["stage_id"] for stage in STAGES]
    assert {s["cache_hit"] for s in stages.values()} == {False}


def test_store_many_batches_and_retrievers(paths: DataPaths, executions: list[Execution]) -> None:
    other = [
        dataclasses.replace(e, retriever_id="other", execution_id=f"exec_other{i:011d}")
        for i, e in enumerate(executions)
    ]
    files = write_executions(paths, [*executions, *other], batch_id="mixed")
    assert [f.parent.name for f in files] == ["shop", "other"]
    later = [
        dataclasses.replace(executions[0], execution_id=f"exec_later{i:011d}") for i in range(30)
    ]
    for batch in range(3):
        write_executions(paths, later[batch * 10 : (batch + 1) * 10], batch_id=f"later-{batch}")
    assert len(list(paths.retriever_executions_dir("shop").glob("*.parquet"))) == 4
    assert (
        get_execution(paths, "shop", "exec_later00000000025")["documents"]
        == (executions[0].to_detail()["documents"])
    )
    assert get_execution(paths, "other", other[2].execution_id)["retriever_id"] == "other"
    assert get_execution(paths, "shop", other[2].execution_id) is None
    assert write_executions(paths, [], batch_id="empty") == []
    with pytest.raises(ValueError, match="appears twice"):
        write_executions(paths, [executions[0], executions[0]], batch_id="dupes")
    with pytest.raises(InvalidInputError, match="batch_id"):
        write_executions(paths, executions, batch_id="../escape")


def test_naive_and_aware_timestamps_round_trip_as_utc(paths: DataPaths) -> None:
    moment = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    execution = Execution(
        execution_id="exec_abc",
        retriever_id="hand",
        query_input={"text": "x"},
        status="completed",
        documents=[ScoredDocument("d1", 1.5)],
        stages={"http": StageStatistics.measured(1, 1, 2.0, metadata={"attempts": 1})},
        total_time_ms=2.0,
        created_at=moment,
        completed_at=moment,
        error=None,
        error_type=None,
        pipeline_hash="h",
    )
    write_executions(paths, [execution], batch_id="one")
    detail = get_execution(paths, "hand", "exec_abc")
    assert detail["created_at"] == "2024-05-01T12:30:15.123456Z"
    assert detail["documents"] == [{"document_id": "d1", "score": 1.5, "rank": 1}]


def test_open_retrievers_unknown_id_lists_known_ones(paths: DataPaths) -> None:
    write_retriever(paths, pipeline_config("alpha", STAGES))
    write_retriever(paths, pipeline_config("beta", STAGES))
    with pytest.raises(UnknownRetrieverError) as info, open_retrievers(paths, ["alpha", "gamma"]):
        pass
    assert isinstance(info.value, ValueError)
    assert "'gamma'" in str(info.value) and "known: alpha, beta" in str(info.value)
    with open_retrievers(paths) as everything:
        assert list(everything) == ["alpha", "beta"]
        assert everything["alpha"].config.pipeline_hash == everything["beta"].config.pipeline_hash
