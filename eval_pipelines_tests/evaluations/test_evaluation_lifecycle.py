"""Evaluation requests through the shared sensors on a real instance, with skip-and-continue."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, SensorResult, build_sensor_context, materialize

from eval_pipelines.assets.evaluations import evaluation_assets
from eval_pipelines.core.datasets import import_dataset
from eval_pipelines.core.evaluations.request import parse_evaluation_request
from eval_pipelines.core.evaluations.submit import accept_request, evaluation_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.kinds import EVALUATIONS
from eval_pipelines.resources import DataDirResource
from eval_pipelines.sensors.requests import request_sensor
from eval_pipelines_tests.schemas import validation_errors
from eval_pipelines_tests.search_stub import search_stub

evaluation_request_sensor = request_sensor(EVALUATIONS)
QUERIES = [
    {
        "query_id": "q_ok",
        "query_input": {"text": "sofa"},
        "relevant_documents": ["d1"],
        "relevance_scores": {"d1": 2},
    },
    {"query_id": "q_fail", "query_input": {"text": "boom"}, "relevant_documents": ["d1"]},
    {"query_id": "q_empty", "query_input": {"text": "  "}, "relevant_documents": ["d1"]},
    {
        "query_id": "q_norel",
        "query_input": {"text": "chair"},
        "relevant_documents": [],
        "relevance_scores": {"d1": 0},
    },
]


@pytest.fixture
def search_url() -> Iterator[str]:
    """Fails the query "boom" with a 500; answers d1, d2 otherwise."""
    with search_stub(lambda text: None if text == "boom" else [("d1", 2.0), ("d2", 1.0)]) as url:
        yield url


@pytest.fixture
def paths(tmp_path: Path, search_url: str) -> DataPaths:
    paths = DataPaths(tmp_path / "data")
    paths.retrievers_dir.mkdir(parents=True)
    (paths.retrievers_dir / "api.yaml").write_text(
        yaml.safe_dump(
            {
                "id": "api",
                "kind": "http",
                "http": {"url": search_url, "max_retries": 0, "concurrency": 2},
            }
        )
    )
    source = tmp_path / "truth.jsonl"
    source.write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    import_dataset(paths, "tiny", [source])
    return paths


def test_a_request_runs_once_and_skips_what_it_cannot_evaluate(
    paths: DataPaths, tmp_path: Path
) -> None:
    record = accept_request(
        paths, parse_evaluation_request({"retriever_id": "api", "dataset_name": "tiny"}, paths)
    )
    evaluation_id = record["evaluation_id"]
    assert record["status"] == "pending"
    assert validation_errors("get_evaluation.openapi", "EvaluationRecord", record) == []
    resources = {"data_dir": DataDirResource(path=str(paths.root))}
    home = tmp_path / "dagster_home"
    home.mkdir()
    with DagsterInstance.local_temp(str(home)) as instance:
        result = evaluation_request_sensor(
            build_sensor_context(instance=instance, resources=resources)
        )
        assert isinstance(result, SensorResult)
        assert [(r.run_key, r.partition_key) for r in result.run_requests] == [
            (evaluation_id, evaluation_id)
        ]
        [add] = result.dynamic_partitions_requests
        instance.add_dynamic_partitions(add.partitions_def_name, list(add.partition_keys))
        assert instance.get_dynamic_partitions("evaluation") == [evaluation_id]
        outcome = materialize(
            evaluation_assets,
            partition_key=evaluation_id,
            instance=instance,
            resources=resources,
            tags=result.run_requests[0].tags,
        )
        assert outcome.success
        assert all(c.passed for c in outcome.get_asset_check_evaluations())

    final = evaluation_store(paths).get(evaluation_id)
    assert final["status"] == "completed"
    assert validation_errors("get_evaluation.openapi", "EvaluationRecord", final) == []
    assert (final["total_queries"], final["evaluated_queries"], final["skipped_queries"]) == (
        4,
        1,
        3,
    )
    assert final["skipped_reasons"] == {
        "empty_query_input": 1,
        "failed_execution": 1,
        "no_relevant_documents": 1,
    }
    assert final["metrics_by_k"]["1"]["precision"] == 1.0
    assert final["metrics_by_k"]["5"]["precision"] == pytest.approx(0.2)
    assert final["overall_metrics"]["precision"] == pytest.approx(0.5)
    assert final["overall_metrics"]["mrr"] == 1.0


def test_the_launchpad_job_stores_a_pending_evaluation(paths: DataPaths) -> None:
    from eval_pipelines.definitions import defs

    job = defs.resolve_job_def("submit_evaluation")
    config = {
        "retriever_id": "api",
        "dataset_name": "tiny",
        "evaluation_config": {"k_values": [2], "metrics": ["f2"]},
    }
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            run_config={"ops": {"submit_evaluation_request": {"config": config}}},
            instance=instance,
            resources={"data_dir": DataDirResource(path=str(paths.root))},
        )
    evaluation_id = result.output_for_node("submit_evaluation_request")
    record = evaluation_store(paths).get(evaluation_id)
    assert record["status"] == "pending"
    assert record["config"] == {"k_values": [2], "metrics": ["f2"]}


def test_a_failed_run_yields_a_failed_record_with_the_cause(
    paths: DataPaths, tmp_path: Path
) -> None:
    import shutil

    record = accept_request(
        paths, parse_evaluation_request({"retriever_id": "api", "dataset_name": "tiny"}, paths)
    )
    shutil.rmtree(paths.dataset_dir("tiny"))
    resources = {"data_dir": DataDirResource(path=str(paths.root))}
    home = tmp_path / "dagster_home"
    home.mkdir()
    with DagsterInstance.local_temp(str(home)) as instance:
        result = evaluation_request_sensor(
            build_sensor_context(instance=instance, resources=resources)
        )
        [add] = result.dynamic_partitions_requests
        instance.add_dynamic_partitions(add.partitions_def_name, list(add.partition_keys))
        outcome = materialize(
            evaluation_assets,
            partition_key=record["evaluation_id"],
            instance=instance,
            resources=resources,
            tags=result.run_requests[0].tags,
            raise_on_error=False,
        )
        assert not outcome.success
    failed = evaluation_store(paths).get(record["evaluation_id"])
    assert failed["status"] == "failed"
    assert failed["error_message"].startswith("evaluation_queries:")
    assert "tiny" in failed["error_message"]
    assert validation_errors("get_evaluation.openapi", "EvaluationRecord", failed) == []
