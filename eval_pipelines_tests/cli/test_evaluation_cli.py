"""`dataset`, `evaluation` and `trec-eval` commands as a user runs them."""

import json
import shutil
from pathlib import Path

from eval_pipelines_tests.cli.conftest import CliResult, run_cli
from eval_pipelines_tests.schemas import validation_errors


def test_dataset_import_list_and_a_bad_file(
    small_demo: tuple[Path, CliResult], tmp_path: Path
) -> None:
    data_dir, _ = small_demo
    listed = json.loads(run_cli(data_dir, "dataset", "list", "--json").stdout)
    assert [d["name"] for d in listed] == ["demo-judgments"]
    assert listed[0]["query_count"] == 100

    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps(
            {
                "query_id": "a",
                "query_input": {"text": "x"},
                "relevant_documents": ["d"],
                "relevance_scores": {"d": 9},
            }
        )
        + "\n"
        + json.dumps(
            {
                "query_id": "a",
                "query_input": {"text": "y"},
                "relevant_documents": ["d"],
                "colour": 1,
            }
        )
        + "\n"
    )
    result = run_cli(data_dir, "dataset", "import", "broken", str(bad))
    assert result.returncode == 2
    assert "bad.jsonl:1" in result.stderr and "bad.jsonl:2" in result.stderr
    assert not (data_dir / "datasets" / "broken").exists()
    again = run_cli(data_dir, "dataset", "import", "demo-judgments", str(bad))
    assert again.returncode == 2


def test_evaluation_run_wait_get_list_and_export(
    small_demo: tuple[Path, CliResult], tmp_path: Path
) -> None:
    data_dir, _ = small_demo
    run = run_cli(
        data_dir,
        "evaluation",
        "run",
        "demo_prod",
        "--dataset",
        "demo-judgments",
        "--k",
        "3,10",
        "--wait",
    )
    assert run.returncode == 0, run.stderr[-2000:]
    record = json.loads(run.stdout)
    assert record["status"] == "completed"
    assert sorted(record["metrics_by_k"], key=int) == ["3", "10"]
    assert validation_errors("get_evaluation.openapi", "EvaluationRecord", record) == []
    assert (
        json.loads(run_cli(data_dir, "evaluation", "get", record["evaluation_id"]).stdout) == record
    )
    listed = json.loads(
        run_cli(data_dir, "evaluation", "list", "--json", "--retriever-id", "demo_prod").stdout
    )
    assert record["evaluation_id"] in [r["evaluation_id"] for r in listed]

    run_file = tmp_path / "prod.run"
    exported = run_cli(
        data_dir, "evaluation", "export", record["evaluation_id"], "--output", str(run_file)
    )
    assert exported.returncode == 0, exported.stderr
    lines = run_file.read_text().splitlines()
    assert len({line.split()[0] for line in lines}) == record["evaluated_queries"]
    qrels = data_dir / "demo" / "datasets" / "demo-judgments.qrels"
    scored = json.loads(
        run_cli(data_dir, "trec-eval", str(qrels), str(run_file), "-q", "-m", "ndcg_cut_10").stdout
    )
    assert abs(scored["all"]["ndcg_cut_10"] - record["metrics_by_k"]["10"]["ndcg"]) < 1e-12
    assert len(scored["per_query"]) == record["evaluated_queries"]


def test_invalid_evaluation_requests_exit_2_and_create_nothing(
    small_demo: tuple[Path, CliResult],
) -> None:
    data_dir, _ = small_demo
    before = (
        sorted((data_dir / "evaluations").iterdir()) if (data_dir / "evaluations").is_dir() else []
    )
    bad = run_cli(
        data_dir,
        "evaluation",
        "run",
        "ghost",
        "--dataset",
        "nope",
        "--k",
        "0",
        "--metrics",
        "ndcg,bleu",
    )
    assert bad.returncode == 2
    for fragment in (
        "retriever_id: unknown retriever 'ghost'",
        "dataset_name: unknown dataset 'nope'",
        "k_values.0",
        "'bleu'",
    ):
        assert fragment in bad.stderr
    after = (
        sorted((data_dir / "evaluations").iterdir()) if (data_dir / "evaluations").is_dir() else []
    )
    assert after == before


def test_trec_eval_reports_malformed_lines_by_number(
    small_demo: tuple[Path, CliResult], tmp_path: Path
) -> None:
    data_dir, _ = small_demo
    qrels = tmp_path / "q.qrels"
    qrels.write_text("q1 0 d1 1\nq1 0 d2\n")
    run = tmp_path / "r.run"
    run.write_text("q1 Q0 d1 1 1.0 t\nq1 Q0 d2 2 high t\n")
    result = run_cli(data_dir, "trec-eval", str(qrels), str(run))
    assert result.returncode == 2
    assert "q.qrels:2" in result.stderr or "r.run:2" in result.stderr


def test_export_without_output_streams_to_stdout(
    small_demo: tuple[Path, CliResult], tmp_path: Path
) -> None:
    data_dir, _ = small_demo
    completed = [
        r
        for r in json.loads(run_cli(data_dir, "evaluation", "list", "--json").stdout)
        if r["status"] == "completed"
    ]
    evaluation_id = completed[0]["evaluation_id"]
    streamed = run_cli(data_dir, "evaluation", "export", evaluation_id)
    assert streamed.returncode == 0, streamed.stderr
    written = tmp_path / "run.txt"
    run_cli(data_dir, "evaluation", "export", evaluation_id, "--output", str(written))
    assert streamed.stdout == written.read_text()
    assert streamed.stdout.count("\n") > 100
    refused = run_cli(data_dir, "evaluation", "export", evaluation_id, "--output", "/dev/null")
    assert refused.returncode == 2
    assert "not a regular file" in refused.stderr


def test_a_corrupt_stored_dataset_summary_is_named_and_exits_2(
    small_demo: tuple[Path, CliResult], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(
        small_demo[0], data_dir, ignore=shutil.ignore_patterns("dagster_home", "executions")
    )
    summary = data_dir / "datasets" / "demo-judgments" / "dataset.json"
    summary.write_text('{"name": "demo-judgments", ')
    listed = run_cli(data_dir, "dataset", "list")
    assert listed.returncode == 2
    assert f"{summary}: not valid JSON" in listed.stderr
    evaluations = data_dir / "evaluations"
    before = sorted(evaluations.rglob("*")) if evaluations.exists() else []
    run = run_cli(data_dir, "evaluation", "run", "demo_prod", "--dataset", "demo-judgments")
    assert run.returncode == 2
    assert "dataset.json" in run.stderr
    assert (sorted(evaluations.rglob("*")) if evaluations.exists() else []) == before
