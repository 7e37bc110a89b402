"""When the logs hold an execution_id twice, the no_duplicate_sessions check names the ids and the
Parquet files holding them, so the failing benchmark points at its cause.

The duplicates are planted as an unlocked concurrent ingest left them: a second Parquet part
repeating rows of the first.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import DagsterEventType, DagsterInstance, materialize

from eval_pipelines.assets.benchmarks import benchmark_sessions
from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.benchmarks.sampling import SessionFilter, sample_sessions
from eval_pipelines.core.benchmarks.submit import accept_request
from eval_pipelines.core.logs import find_duplicate_ids, ingest_files
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.storage import parquet_files
from eval_pipelines.resources import DataDirResource
from eval_pipelines_tests.core.logs.helpers import EXECUTION, INTERACTION, write_jsonl

PLANTED = "logs/executions/part-planted.parquet"


def plant_duplicates(paths: DataPaths, execution_ids: list[str]) -> tuple[str, str]:
    """Copy the stored rows of execution_ids (from every day's part) into one more part; return the
    first part's and the planted part's relative names."""
    parts = parquet_files(paths.log_table_dir("executions"))
    original = parts[0]
    stored = pa.concat_tables(pq.read_table(part) for part in parts)
    copies = stored.filter(pa.compute.is_in(stored["execution_id"], pa.array(execution_ids)))
    assert copies.num_rows == len(execution_ids)
    pq.write_table(copies, paths.root / PLANTED)
    return str(original.relative_to(paths.root)), PLANTED


def small_logs(paths: DataPaths, tmp_path: Path, count: int) -> list[str]:
    ids = [f"exec_{i}" for i in range(count)]
    executions = [{**EXECUTION, "execution_id": i, "session_id": f"s_{i}"} for i in ids]
    interactions = [{**INTERACTION, "execution_id": i} for i in ids]
    ingest_files(paths, "executions", [write_jsonl(tmp_path / "e.jsonl", executions)])
    ingest_files(paths, "interactions", [write_jsonl(tmp_path / "i.jsonl", interactions)])
    return ids


def test_the_core_check_names_duplicated_ids_and_their_files(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "data")
    ids = small_logs(paths, tmp_path, 30)
    original, planted = plant_duplicates(paths, ids[:3])
    sample = sample_sessions(paths, SessionFilter(), count=100, seed=1)

    found = find_duplicate_ids(paths, "executions", sample.sessions.column("execution_id"))

    assert not found.passed
    checked = (
        sample.sessions.num_rows
    )  # the sample repeats a duplicated session (how often is sampling's business)
    assert checked > 30
    assert (found.checked, found.distinct, found.duplicated) == (checked, 30, 3)
    assert found.stored == {i: {original: 1, planted: 1} for i in ids[:3]}
    description = found.describe()
    assert description.startswith(
        f"3 execution_ids occur more than once among the {checked} checked."
    )
    assert f"'exec_0': 2 rows in {original}, {planted}" in description
    assert "keep one row per execution_id" in description


def test_the_list_of_ids_is_bounded(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "data")
    ids = small_logs(paths, tmp_path, 30)
    plant_duplicates(paths, ids)

    found = find_duplicate_ids(paths, "executions", ids + ids, limit=5)

    assert (found.duplicated, len(found.stored)) == (30, 5)
    assert list(found.stored) == sorted(ids)[:5]
    assert found.describe().count("2 rows in") == 5
    assert "; and 25 more." in found.describe()


def test_unique_ids_pass(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "data")
    ids = small_logs(paths, tmp_path, 5)

    found = find_duplicate_ids(paths, "executions", ids)

    assert found.passed
    assert (found.checked, found.distinct, found.stored) == (5, 5, {})
    assert found.describe() == "no execution_id occurs more than once among the 5 checked"


def test_the_materialized_check_names_ids_and_files(
    world_copy: DataPaths, instance: DagsterInstance
) -> None:
    parts = parquet_files(world_copy.log_table_dir("executions"))
    everything = pa.concat_tables(pq.read_table(part) for part in parts)["execution_id"].to_pylist()
    _, planted = plant_duplicates(world_copy, everything)
    request = parse_request(
        {
            "benchmark_name": "duplicates",
            "baseline_retriever_id": "demo_prod",
            "candidate_retriever_ids": ["demo_better"],
            "session_count": 50,
        },
        world_copy,
    )
    benchmark_id = accept_request(world_copy, request)["benchmark_id"]
    instance.add_dynamic_partitions("benchmark", [benchmark_id])

    result = materialize(
        [benchmark_sessions],
        partition_key=benchmark_id,
        instance=instance,
        resources={"data_dir": DataDirResource(path=str(world_copy.root))},
        raise_on_error=False,
    )

    assert not result.success  # the check is blocking
    (evaluation,) = [
        entry.dagster_event.event_specific_data
        for entry in instance.all_logs(
            result.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
        )
        if entry.dagster_event.event_specific_data.check_name == "no_duplicate_sessions"
    ]
    assert not evaluation.passed
    metadata = {key: value.value for key, value in evaluation.metadata.items()}
    sessions, distinct = metadata["sessions"], metadata["distinct"]
    assert sessions > distinct > 20
    assert metadata["duplicated_execution_ids"] == distinct  # every logged execution is doubled
    assert len(metadata["stored_in"]) == 20  # a bounded list
    for files in metadata["stored_in"].values():  # its day's part and the planted copy
        (day_part,) = set(files) - {planted}
        assert files == {day_part: 1, planted: 1} and day_part.startswith("logs/executions/part-")
    first = min(metadata["stored_in"])
    (first_part,) = set(metadata["stored_in"][first]) - {planted}
    assert f"{first!r}: 2 rows in {first_part}, {planted}" in evaluation.description
    assert evaluation.description.startswith(
        f"{distinct} execution_ids occur more than once among the {sessions} checked."
    )
    assert f"; and {distinct - 20} more." in evaluation.description
