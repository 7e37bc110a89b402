"""judged@k in every evaluation record and query-level table, and condensed lists (judged_only) through
every door: the CLI in a subprocess, the launchpad job on a real instance, the request's schema."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance

from eval_pipelines.core.datasets import import_dataset
from eval_pipelines.core.evaluations.request import EvaluationRequest
from eval_pipelines.core.evaluations.submit import evaluation_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.resources import DataDirResource
from eval_pipelines_tests.cli.conftest import run_cli
from eval_pipelines_tests.schemas import validation_errors
from eval_pipelines_tests.search_stub import search_stub

# The engine serves u1, d1, u2, d2, d3 for "sofa" (u1, u2 unjudged; d2 judged 0) and x, y for
# "lamp" (y judged 1, x unjudged).
SERVED = {"sofa": ["u1", "d1", "u2", "d2", "d3"], "lamp": ["x", "y"]}
QUERIES = [
    {
        "query_id": "q_sofa",
        "query_input": {"text": "sofa"},
        "relevant_documents": ["d1", "d3"],
        "relevance_scores": {"d1": 2, "d2": 0, "d3": 1},
    },
    {"query_id": "q_lamp", "query_input": {"text": "lamp"}, "relevant_documents": ["y"]},
]


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    ranked = {
        text: [(d, float(len(docs) - i)) for i, d in enumerate(docs)]
        for text, docs in SERVED.items()
    }
    with search_stub(lambda text: ranked[text]) as url:
        paths = DataPaths(tmp_path / "data")
        paths.retrievers_dir.mkdir(parents=True)
        (paths.retrievers_dir / "api.yaml").write_text(
            yaml.safe_dump({"id": "api", "kind": "http", "http": {"url": url, "max_retries": 0}})
        )
        source = tmp_path / "truth.jsonl"
        source.write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
        import_dataset(paths, "tiny", [source])
        yield paths.root


def _run(data_dir: Path, *flags: str) -> dict:
    result = run_cli(
        data_dir, "evaluation", "run", "api", "--dataset", "tiny", "--k", "1,2,10", *flags, "--wait"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads(result.stdout)
    assert validation_errors("get_evaluation.openapi", "EvaluationRecord", record) == []
    return record


def test_judged_at_k_and_condensed_lists_through_the_cli(data_dir: Path) -> None:
    plain = _run(data_dir)
    # judged@k, by hand: sofa 0/1, 1/2, 3/10; lamp 0/1, 1/2, 1/10.
    expected_judged = {"1": 0.0, "2": 0.5, "10": (0.3 + 0.1) / 2}
    for k, value in expected_judged.items():
        assert plain["metrics_by_k"][k]["judged"] == pytest.approx(value)
    assert "judged" not in plain["overall_metrics"]
    assert plain["settings"] == {"judged_only": False}
    assert plain["metrics_by_k"]["1"]["precision"] == 0.0

    condensed = _run(data_dir, "--judged-only")
    assert condensed["settings"] == {"judged_only": True}
    # Condensed: sofa d1 (2), d2 (0), d3 (1); lamp y. The ideal is unchanged.
    assert condensed["metrics_by_k"]["1"]["precision"] == 1.0
    ideal_2 = 2 + 1 / math.log2(3)
    assert condensed["metrics_by_k"]["2"]["ndcg"] == pytest.approx((2 / ideal_2 + 1.0) / 2)
    assert condensed["overall_metrics"]["precision"] == pytest.approx((2 / 3 + 1.0) / 2)
    for k, value in expected_judged.items():
        assert condensed["metrics_by_k"][k]["judged"] == pytest.approx(value)

    got = run_cli(data_dir, "evaluation", "get", condensed["evaluation_id"])
    assert json.loads(got.stdout) == condensed
    listed = run_cli(data_dir, "evaluation", "list")
    assert "judged@10" in listed.stdout.splitlines()[0]
    assert listed.stdout.count(" 0.2000 ") == 2, listed.stdout

    paths = DataPaths(data_dir)
    table = evaluation_store(paths).read_table(condensed["evaluation_id"], "query_metrics")
    judged_rows = {
        (row["query_id"], row["k"]): row["value"]
        for row in table.to_pylist()
        if row["metric"] == "judged"
    }
    assert judged_rows == {
        ("q_sofa", 1): 0.0,
        ("q_sofa", 2): 0.5,
        ("q_sofa", 10): pytest.approx(0.3),
        ("q_lamp", 1): 0.0,
        ("q_lamp", 2): 0.5,
        ("q_lamp", 10): pytest.approx(0.1),
    }


def test_judged_only_in_the_schema_and_the_launchpad(data_dir: Path) -> None:
    schema = json.loads(run_cli(data_dir, "evaluation", "schema").stdout)
    assert schema["properties"]["judged_only"]["default"] is False
    assert schema["properties"]["judged_only"]["type"] == "boolean"
    assert schema == EvaluationRequest.model_json_schema()

    bad = run_cli(data_dir, "evaluation", "run", "api", "--dataset", "tiny", "--k", "x")
    assert bad.returncode == 2

    from eval_pipelines.definitions import defs

    job = defs.resolve_job_def("submit_evaluation")
    config = {"retriever_id": "api", "dataset_name": "tiny", "judged_only": True}
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            run_config={"ops": {"submit_evaluation_request": {"config": config}}},
            instance=instance,
            resources={"data_dir": DataDirResource(path=str(data_dir))},
        )
    evaluation_id = result.output_for_node("submit_evaluation_request")
    store = evaluation_store(DataPaths(data_dir))
    assert store.get(evaluation_id)["settings"] == {"judged_only": True}
    assert store.stored_request(evaluation_id)["judged_only"] is True
