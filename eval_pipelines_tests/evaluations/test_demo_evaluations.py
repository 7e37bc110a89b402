"""Proof on the demo world: ground-truth scores rank the demo retrievers as the truth (and the benchmark) does,
and an exported run re-scored by `trec-eval` gives the record's own numbers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance

from eval_pipelines.cli.run_in_process import run_evaluation_here
from eval_pipelines.core.datasets import import_dataset
from eval_pipelines.core.demo import dataset_files
from eval_pipelines.core.evaluations.request import parse_evaluation_request
from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.schemas import validation_errors

CLI = Path(sys.executable).parent / "eval-pipelines"
RETRIEVERS = ("demo_prod", "demo_better", "demo_worse")


@pytest.fixture(scope="module")
def records(
    full_demo_world: tuple[DataPaths, dict], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict]:
    paths, _ = full_demo_world
    if "demo-judgments" not in {p.name for p in paths.datasets_dir.glob("*")}:
        import_dataset(paths, "demo-judgments", [dataset_files(paths)["jsonl"]])
    found = {}
    with DagsterInstance.local_temp(str(tmp_path_factory.mktemp("dagster-home"))) as instance:
        for retriever_id in RETRIEVERS:
            request = parse_evaluation_request(
                {
                    "retriever_id": retriever_id,
                    "dataset_name": "demo-judgments",
                    "evaluation_config": {
                        "metrics": ["precision", "recall", "f1", "f2", "map", "ndcg", "mrr"]
                    },
                },
                paths,
            )
            found[retriever_id] = run_evaluation_here(
                paths, request, f"eval_demo_{retriever_id}", lambda _: None, instance=instance
            )
    return found


def test_records_are_complete_and_valid(records: dict[str, dict]) -> None:
    for record in records.values():
        assert record["status"] == "completed", record["error_message"]
        assert validation_errors("get_evaluation.openapi", "EvaluationRecord", record) == []
        assert record["total_queries"] == record["evaluated_queries"] + record["skipped_queries"]
        assert record["evaluated_queries"] >= 500
        assert sorted(record["metrics_by_k"], key=int) == ["1", "5", "10", "20"]
        assert set(record["overall_metrics"]) == {
            "precision",
            "recall",
            "f1",
            "f2",
            "map",
            "ndcg",
            "mrr",
        }


def test_truly_better_scores_higher_and_truly_worse_lower(records: dict[str, dict]) -> None:
    ndcg10 = {rid: r["metrics_by_k"]["10"]["ndcg"] for rid, r in records.items()}
    assert ndcg10["demo_better"] > ndcg10["demo_prod"] > ndcg10["demo_worse"]


def test_an_exported_run_rescored_by_trec_eval_matches_the_record(
    records: dict[str, dict], full_demo_world: tuple[DataPaths, dict], tmp_path: Path
) -> None:
    paths, _ = full_demo_world
    env = {**os.environ, "EVAL_PIPELINES_DATA": str(paths.root)}
    record = records["demo_better"]
    run_file = tmp_path / "better.run"
    exported = subprocess.run(
        [str(CLI), "evaluation", "export", record["evaluation_id"], "--output", str(run_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert exported.returncode == 0, exported.stderr
    scored = subprocess.run(
        [
            str(CLI),
            "trec-eval",
            str(dataset_files(paths)["qrels"]),
            str(run_file),
            "-m",
            "P_10",
            "-m",
            "ndcg_cut_10",
            "-m",
            "map",
            "-m",
            "recip_rank",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert scored.returncode == 0, scored.stderr
    values = json.loads(scored.stdout)["all"]
    assert values["P_10"] == pytest.approx(record["metrics_by_k"]["10"]["precision"], abs=1e-12)
    assert values["ndcg_cut_10"] == pytest.approx(record["metrics_by_k"]["10"]["ndcg"], abs=1e-12)
    assert values["map"] == pytest.approx(record["overall_metrics"]["map"], abs=1e-12)
    assert values["recip_rank"] == pytest.approx(record["overall_metrics"]["mrr"], abs=1e-12)
