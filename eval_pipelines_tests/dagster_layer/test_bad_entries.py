"""Broken benchmark/evaluation folders beside good ones: `list` (real CLI) lists the good ones and names
each broken entry on stderr, exit 0; both sensors (real Dagster instance) handle every good entry and
report the broken ones, never failing their tick."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import (
    AssetsDefinition,
    DagsterInstance,
    SensorDefinition,
    SensorResult,
    SkipReason,
    build_sensor_context,
    materialize,
)

from eval_pipelines.assets.benchmarks import benchmark_assets
from eval_pipelines.assets.evaluations import evaluation_assets
from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.benchmarks.submit import accept_request as accept_benchmark
from eval_pipelines.core.datasets import import_dataset
from eval_pipelines.core.evaluations.request import parse_evaluation_request
from eval_pipelines.core.evaluations.submit import accept_request as accept_evaluation
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.records import RecordStore, StoredFileError
from eval_pipelines.kinds import BENCHMARKS, EVALUATIONS
from eval_pipelines.resources import DataDirResource
from eval_pipelines.sensors.requests import request_sensor
from eval_pipelines_tests.cli.conftest import run_cli
from eval_pipelines_tests.loopback import free_port

BENCHMARK = {
    "benchmark_name": "bad entries",
    "baseline_retriever_id": "prod",
    "candidate_retriever_ids": ["cand"],
    "session_count": 10,
}
EVALUATION = {"retriever_id": "prod", "dataset_name": "tiny"}


@dataclass(frozen=True)
class Kind:
    kind: str
    command: str
    prefix: str
    id_field: str
    request: dict[str, Any]
    accept: Callable[[DataPaths, str], dict[str, Any]]
    request_sensor: SensorDefinition
    assets: list[AssetsDefinition]
    listed_field: str  # one the listing reads


KINDS = [
    Kind(
        "benchmarks",
        "benchmark",
        "bench",
        "benchmark_id",
        BENCHMARK,
        lambda paths, record_id: accept_benchmark(
            paths, parse_request(BENCHMARK, paths), record_id
        ),
        request_sensor(BENCHMARKS),
        benchmark_assets,
        "baseline_retriever_id",
    ),
    Kind(
        "evaluations",
        "evaluation",
        "eval",
        "evaluation_id",
        EVALUATION,
        lambda paths, record_id: accept_evaluation(
            paths, parse_evaluation_request(EVALUATION, paths), record_id
        ),
        request_sensor(EVALUATIONS),
        evaluation_assets,
        "retriever_id",
    ),
]


@pytest.fixture
def paths(tmp_path: Path) -> DataPaths:
    """Two HTTP retrievers nobody answers for (a call fails at once) and a two-query dataset."""
    paths = DataPaths(tmp_path / "data")
    paths.retrievers_dir.mkdir(parents=True)
    url = f"http://127.0.0.1:{free_port()}/search"
    for retriever_id in ("prod", "cand"):
        (paths.retrievers_dir / f"{retriever_id}.yaml").write_text(
            yaml.safe_dump(
                {"id": retriever_id, "kind": "http", "http": {"url": url, "max_retries": 0}}
            )
        )
    truth = tmp_path / "truth.jsonl"
    truth.write_text(
        "".join(
            json.dumps({"query_id": q, "query_input": {"text": q}, "relevant_documents": ["d1"]})
            + "\n"
            for q in ("sofa", "chair")
        )
    )
    import_dataset(paths, "tiny", [truth])
    return paths


def record_file(paths: DataPaths, kind: Kind, record_id: str) -> Path:
    return paths.root / kind.kind / record_id / "record.json"


def broken_records(paths: DataPaths, kind: Kind) -> dict[str, str]:
    """Folders with a good request.json and a record.json that cannot be used; id -> its problem."""
    cases = {
        "garbage": ('{"record": ', "record.json: not valid JSON"),
        "empty": ("", "record.json: empty file"),
        "directory": (None, "record.json: not a regular file"),
        "array": ("[1, 2]", "record.json: expected a JSON object, got list"),
        "shape": ('{"record": {"status": 7}}', "expected an object with a record and its status"),
        "other_id": (
            "other",
            f"record.json: {kind.id_field} is '{kind.prefix}_else', not its folder's",
        ),
    }
    problems = {}
    for name, (content, problem) in cases.items():
        record_id = f"{kind.prefix}_{name}"
        record = kind.accept(paths, record_id)
        file = record_file(paths, kind, record_id)
        if content is None:
            file.unlink()
            file.mkdir()
        elif content == "other":
            entry = {"record": {**record, kind.id_field: f"{kind.prefix}_else"}, "run_id": None}
            file.write_text(json.dumps(entry))
        else:
            file.write_text(content)
        problems[record_id] = problem
    return problems


def good_entries(paths: DataPaths, kind: Kind) -> list[str]:
    """A good request, one whose request.json is garbage, one whose request.json is gone: `get` finds
    each of their records, so `list` lists them."""
    ids = [f"{kind.prefix}_good", f"{kind.prefix}_request_garbage", f"{kind.prefix}_no_request"]
    for record_id in ids:
        kind.accept(paths, record_id)
    (paths.root / kind.kind / ids[1] / "request.json").write_text("{")
    (paths.root / kind.kind / ids[2] / "request.json").unlink()
    return ids


def dropped_with_a_bad_name(paths: DataPaths, kind: Kind) -> None:
    folder = paths.root / kind.kind / "not an id"
    folder.mkdir(parents=True)
    (folder / "request.json").write_text(json.dumps(kind.request))


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.kind)
def test_list_shows_the_good_entries_and_names_each_bad_one(paths: DataPaths, kind: Kind) -> None:
    listed = good_entries(paths, kind)
    problems = broken_records(paths, kind)
    dropped_with_a_bad_name(paths, kind)
    problems["'not an id'"] = "the folder name is not a valid id"
    missing_field = f"{kind.prefix}_missing_field"
    record = kind.accept(paths, missing_field)
    del record[kind.listed_field]
    record_file(paths, kind, missing_field).write_text(json.dumps({"record": record}))
    problems[missing_field] = f"record.json: {kind.listed_field} is missing"
    request_only = f"{kind.prefix}_request_only"
    kind.accept(paths, request_only)
    record_file(paths, kind, request_only).unlink()
    problems[request_only] = "a request.json without a record.json"

    table = run_cli(paths.root, kind.command, "list")
    as_json = run_cli(paths.root, kind.command, "list", "--json")
    for result in (table, as_json):
        assert result.returncode == 0, result.stderr
        reported = [line for line in result.stderr.splitlines() if line.startswith(f"{kind.kind}/")]
        assert len(reported) == len(problems), result.stderr
        for record_id, problem in problems.items():
            line = next(line for line in reported if line.startswith(f"{kind.kind}/{record_id}: "))
            assert problem in line, line
    assert sorted(r[kind.id_field] for r in json.loads(as_json.stdout)) == sorted(listed)
    rows = {line.split()[0] for line in table.stdout.splitlines()[2:]}
    assert rows == set(listed)

    store = RecordStore(paths, kind.kind)
    assert sorted(store.ids()) == sorted(
        [*listed, *(i for i in problems if i.startswith(kind.prefix) and i != request_only)]
    )
    for record_id in listed:
        assert store.get(record_id)[kind.id_field] == record_id
    for record_id in problems.keys() & set(store.ids()) - {missing_field}:
        with pytest.raises(StoredFileError):
            store.get(record_id)
    fetched = run_cli(paths.root, kind.command, "get", f"{kind.prefix}_directory")
    assert fetched.returncode == 2
    assert "record.json: not a regular file" in fetched.stderr


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.kind)
def test_both_sensors_handle_every_good_entry_and_report_the_bad_ones(
    paths: DataPaths, kind: Kind, instance: DagsterInstance
) -> None:
    good, request_garbage, _ = good_entries(paths, kind)
    broken = broken_records(paths, kind)
    dropped_with_a_bad_name(paths, kind)
    resources = {"data_dir": DataDirResource(path=str(paths.root))}

    first = kind.request_sensor(build_sensor_context(instance=instance, resources=resources))
    assert isinstance(first, SensorResult), first
    assert [(r.run_key, r.partition_key) for r in first.run_requests] == [(good, good)]
    assert [list(a.partition_keys) for a in first.dynamic_partitions_requests] == [[good]]
    assert RecordStore(paths, kind.kind).get(request_garbage)["status"] == "failed"
    for add in first.dynamic_partitions_requests:
        instance.add_dynamic_partitions(add.partitions_def_name, list(add.partition_keys))
    (run,) = first.run_requests
    materialize(  # what the daemon does with the run request
        kind.assets,
        partition_key=good,
        instance=instance,
        resources=resources,
        tags=run.tags,
        raise_on_error=False,
    )

    second = kind.request_sensor(build_sensor_context(instance=instance, resources=resources))
    assert isinstance(second, SkipReason), second
    for record_id, problem in broken.items():
        assert f"{kind.kind}/{record_id}: " in second.skip_message
        assert problem.removeprefix("record.json: ") in second.skip_message
    assert f"{kind.kind}/'not an id': the folder name is not a valid id" in second.skip_message

    # The run wrote its own record; the broken entries beside it are still reported, not touched.
    assert RecordStore(paths, kind.kind).get(good)["status"] in {"completed", "failed"}
    listed = run_cli(paths.root, kind.command, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {good, request_garbage} <= {r[kind.id_field] for r in json.loads(listed.stdout)}
    for record_id, problem in broken.items():
        assert f"{kind.kind}/{record_id}: " in listed.stderr
        assert problem.removeprefix("record.json: ") in listed.stderr


def test_a_run_whose_record_is_unreadable_fails_and_the_others_complete(
    paths: DataPaths, instance: DagsterInstance
) -> None:
    """A record spoiled while its request waits (record.json garbage) fails only its own run, with
    the file named; the other request's run completes its record."""
    kind = KINDS[1]
    resources = {"data_dir": DataDirResource(path=str(paths.root))}
    spoiled, fine = f"{kind.prefix}_spoiled", f"{kind.prefix}_fine"
    for record_id in (spoiled, fine):
        kind.accept(paths, record_id)
    started = kind.request_sensor(build_sensor_context(instance=instance, resources=resources))
    assert isinstance(started, SensorResult)
    for add in started.dynamic_partitions_requests:
        instance.add_dynamic_partitions(add.partitions_def_name, list(add.partition_keys))
    (paths.root / kind.kind / spoiled / "record.json").write_text("{")
    outcomes = {
        run.partition_key: materialize(
            kind.assets,
            partition_key=run.partition_key,
            instance=instance,
            resources=resources,
            tags=run.tags,
            raise_on_error=False,
        )
        for run in started.run_requests
    }
    store = RecordStore(paths, kind.kind)
    assert outcomes[fine].success and store.get(fine)["status"] == "completed"
    assert not outcomes[spoiled].success
    failure = next(e for e in outcomes[spoiled].all_events if e.event_type_value == "STEP_FAILURE")
    assert "record.json: not valid JSON" in str(failure.step_failure_data.error)
