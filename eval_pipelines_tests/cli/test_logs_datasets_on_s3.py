"""Logs, datasets and the click model with the data root on S3 (a real moto server on loopback),
through the real console script: the same answers as a local root, whole objects only, and bad
input leaving no object behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from eval_pipelines.core.click_model import load_or_fit
from eval_pipelines.core.datasets import import_dataset, list_datasets
from eval_pipelines.core.datasets.from_logs import derive_dataset, read_evidence
from eval_pipelines.core.logs.ingest import ingest_files
from eval_pipelines.core.paths import DataPaths, data_root
from eval_pipelines.core.retrieval.collections import import_collection
from eval_pipelines.core.storage import read_parquet_dir
from eval_pipelines_tests.conftest import copy_world
from eval_pipelines_tests.core.datasets.fixed_page_logs import write_fixed_page_logs
from eval_pipelines_tests.services import S3, run_cli_env, upload_world

KEYS = {"executions": "execution_id", "interactions": "interaction_id"}


def bucket_of(root: str) -> str:
    return root.split("/")[2]


def object_keys(s3: S3, root: str) -> list[str]:
    prefix = root.split("/", 3)[3] + "/"
    return sorted(key.removeprefix(prefix) for key in s3.keys(bucket_of(root), prefix))


def ok(result: Any) -> Any:
    assert result.returncode == 0, result.stderr
    return result


def log_inputs(small_world: DataPaths, directory: Path) -> dict[str, Path]:
    """Part of the small world's raw logs, with rows that each break the contract in a known way."""
    raw = Path(small_world.root) / "demo" / "raw"
    executions = raw.joinpath("executions.jsonl").read_text().splitlines()[:400]
    kept = {json.loads(line)["execution_id"] for line in executions}
    interactions = [
        line
        for line in raw.joinpath("interactions.jsonl").read_text().splitlines()
        if json.loads(line)["execution_id"] in kept
    ]
    first = json.loads(executions[0])
    conflicting = {**first, "documents": ["someone-else"]}
    no_query = {k: v for k, v in json.loads(executions[1]).items() if k != "query_input"}
    orphan = {**json.loads(interactions[0]), "interaction_id": "i-orphan", "execution_id": "nope"}
    directory.mkdir()
    files = {
        "executions": directory / "executions.jsonl",
        "interactions": directory / "interactions.jsonl",
    }
    rows = {
        "executions": [*executions, json.dumps(conflicting), json.dumps(no_query)],
        "interactions": [*interactions, json.dumps(orphan)],
    }
    for table, file in files.items():
        file.write_text("\n".join(rows[table]) + "\n", encoding="utf-8")
    return files


def ingest(root: str, table: str, file: Path) -> dict[str, Any]:
    """The CLI's report of an ingest into the S3 root, its parts relative to logs/."""
    report = json.loads(ok(run_cli_env(root, {}, "ingest", table, str(file), "--json")).stdout)
    report["written"] = sorted(path.split("/logs/", 1)[1] for path in report["written"])
    return report


def ingest_locally(paths: DataPaths, table: str, file: Path) -> dict[str, Any]:
    """The same ingest into a local root, in this process (the reference)."""
    report = json.loads(json.dumps(ingest_files(paths, table, [file]).to_dict()))
    report["written"] = sorted(path.split("/logs/", 1)[1] for path in report["written"])
    return report


def table_rows(paths: DataPaths, table: str) -> list[dict[str, Any]]:
    stored = read_parquet_dir(paths.log_table_dir(table))
    assert stored is not None, table
    key = KEYS.get(table)
    order = [(key, "ascending")] if key else [("line", "ascending"), ("raw", "ascending")]
    return stored.sort_by(order).to_pylist()


def test_ingest_into_s3_stores_what_a_local_root_stores(
    small_world: DataPaths, s3_root: str, s3_service: S3, tmp_path: Path
) -> None:
    files = log_inputs(small_world, tmp_path / "input")
    local = DataPaths(tmp_path / "local")
    remote = DataPaths(data_root(s3_root, "test"))
    for table in ("executions", "interactions"):
        assert ingest(s3_root, table, files[table]) == ingest_locally(local, table, files[table])
    for table in ("executions", "interactions", "quarantine"):
        assert table_rows(remote, table) == table_rows(local, table)
    # again: every row is already stored, judged against the parts on S3
    again = ingest(s3_root, "interactions", files["interactions"])
    assert again == ingest_locally(local, "interactions", files["interactions"])
    assert again["ingested"] == 0 and again["quarantine_already_present"] == 1
    keys = object_keys(s3_service, s3_root)
    assert keys and all(key.startswith("logs/") and key.endswith(".parquet") for key in keys)
    assert not any(key.endswith("/.lock") for key in keys)  # the logs lease was released
    local_parts = sorted(
        str(path.relative_to(local.root)) for path in Path(local.root).rglob("logs/*/*.parquet")
    )
    assert keys == local_parts


def test_a_failing_ingest_leaves_no_new_object(
    small_world: DataPaths, s3_root: str, s3_service: S3, tmp_path: Path
) -> None:
    files = log_inputs(small_world, tmp_path / "input")
    ingest_files(DataPaths(data_root(s3_root, "test")), "executions", [files["executions"]])
    before = object_keys(s3_service, s3_root)
    assert before
    broken = tmp_path / "broken.jsonl"
    good = files["interactions"].read_text().splitlines()[:5]
    broken.write_text("\n".join([*good, '{"execution_id": "x", ']) + "\n", encoding="utf-8")
    result = run_cli_env(s3_root, {}, "ingest", "interactions", str(broken))
    assert result.returncode == 2, result.stderr
    assert "broken.jsonl:6" in result.stderr and "nothing was written" in result.stderr
    assert object_keys(s3_service, s3_root) == before


def comparable(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in ("created_at", "source_files")}


def test_datasets_and_the_click_model_on_s3_equal_a_local_root(
    small_world: DataPaths, s3_root: str, s3_service: S3, tmp_path: Path
) -> None:
    local = copy_world(small_world, tmp_path / "local")
    upload_world(small_world, s3_root)
    truth = Path(small_world.root) / "demo" / "datasets" / "demo-judgments.jsonl"
    ok(run_cli_env(s3_root, {}, "dataset", "import", "imported", str(truth)))
    ok(run_cli_env(s3_root, {}, "dataset", "derive", "from-logs", "--from-logs"))
    import_dataset(local, "imported", [truth])
    derive_dataset(local, "from-logs")
    listed = json.loads(ok(run_cli_env(s3_root, {}, "dataset", "list", "--json")).stdout)
    expected = json.loads(json.dumps([s.to_dict() for s in list_datasets(local)]))
    assert [comparable(s) for s in listed] == [comparable(s) for s in expected]
    assert {entry["name"] for entry in listed} >= {"imported", "from-logs"}

    shown = json.loads(ok(run_cli_env(s3_root, {}, "click-model", "show", "--json")).stdout)
    fitted = json.loads(json.dumps(load_or_fit(local).to_dict()))
    for model in (shown, fitted):
        model["fit"].pop("seconds")
    assert shown == fitted
    evidence = read_evidence(DataPaths(data_root(s3_root, "test")), "from-logs")
    assert evidence.equals(read_evidence(local, "from-logs"))
    cached = f"click_models/{shown['snapshot_id']}/model.json"
    assert cached in object_keys(s3_service, s3_root)  # fitted once by derive, then read back

    before = object_keys(s3_service, s3_root)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query_id": "q1", "query_input": {"text": "x"}}\n{"query_id": 5}\n')
    refused = run_cli_env(s3_root, {}, "dataset", "import", "new-one", str(bad))
    assert refused.returncode == 2 and "bad.jsonl:2" in refused.stderr
    exists = run_cli_env(s3_root, {}, "dataset", "import", "imported", str(truth))
    assert exists.returncode == 2
    assert "dataset imported exists; use --replace" in exists.stderr
    assert object_keys(s3_service, s3_root) == before


def test_derive_on_s3_refuses_uncorrected_logs_writing_no_dataset(
    s3_root: str, s3_service: S3, tmp_path: Path
) -> None:
    write_fixed_page_logs(DataPaths(data_root(s3_root, "test")), tmp_path)
    refused = run_cli_env(s3_root, {}, "dataset", "derive", "d", "--from-logs")
    assert (refused.returncode, refused.stdout) == (2, ""), refused.stderr
    assert "cannot correct for position" in refused.stderr
    assert not [key for key in object_keys(s3_service, s3_root) if key.startswith("datasets/")]
    allowed = run_cli_env(
        s3_root, {}, "dataset", "derive", "d", "--from-logs", "--allow-uncorrected"
    )
    assert json.loads(ok(allowed).stdout)["derivation"]["corrected"] is False


def test_click_model_show_without_logs_on_s3_exits_2_and_writes_nothing(
    s3_root: str, s3_service: S3
) -> None:
    result = run_cli_env(s3_root, {}, "click-model", "show")
    assert result.returncode == 2
    assert "logs/executions: no logged executions; ingest logs first" in result.stderr
    assert object_keys(s3_service, s3_root) == []


def test_ingest_collection_into_s3_equals_local_and_a_bad_one_writes_nothing(
    small_world: DataPaths, s3_root: str, s3_service: S3, tmp_path: Path
) -> None:
    [documents] = Path(small_world.root).glob("collections/*/documents.parquet")
    rows = pq.read_table(documents).slice(0, 40).to_pylist()
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    local = DataPaths(tmp_path / "local")
    ok(run_cli_env(s3_root, {}, "ingest", "collection", str(source), "--name", "shop"))
    import_collection(local, "shop", [source])
    remote = DataPaths(data_root(s3_root, "test"))
    stored = [
        pq.read_table(str(paths.collection_dir("shop") / "documents.parquet"))
        for paths in (remote, local)
    ]
    assert stored[0].num_rows == 40 and stored[0].equals(stored[1])

    before = object_keys(s3_service, s3_root)
    repeated = tmp_path / "repeated.jsonl"
    repeated.write_text(source.read_text() + json.dumps(rows[0]) + "\n", encoding="utf-8")
    refused = run_cli_env(s3_root, {}, "ingest", "collection", str(repeated), "--name", "other")
    assert refused.returncode == 2
    assert "collection 'other': document_id: 1 duplicated value(s)" in refused.stderr
    assert object_keys(s3_service, s3_root) == before
