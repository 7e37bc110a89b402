"""How a request's record follows its Dagster runs: shared by benchmarks and evaluations.

The record is derived from the instance (the latest run that materialized any of the kind's assets
for the request's partition, whatever launched it: the request sensor, `--wait`, the UI's
Materialize button or `dagster asset materialize`), so every reader reaches the same record by the
same code. A run that re-materializes only part of a partition leaves the assets after it stale;
the record then says which ones, instead of passing the old results off as the new run's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DynamicPartitionsDefinition,
    RunsFilter,
)
from dagster._core.storage.dagster_run import DagsterRun, RunRecord

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.records import FINAL_STATUSES, RecordStore, utc_timestamp

PARTITION_TAG = "dagster/partition"
KIND_TAG = "eval_pipelines/kind"
FAILED_RUN_STATUSES = {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
# Runs of one partition looked at to find the latest that belongs to the kind (asset-check-only
# runs, or another kind's runs under the same partition key, are passed over).
RUNS_SCANNED = 20


@dataclass(frozen=True)
class Lifecycle:
    """What differs between benchmarks and evaluations; everything else here is shared."""

    kind: str
    partitions: DynamicPartitionsDefinition
    # (asset, status shown until it is materialized), in pipeline order
    stages: Sequence[tuple[AssetKey, str]]
    in_progress: Callable[[dict[str, Any], str, str], dict[str, Any]]
    completed: Callable[[DataPaths, str, dict[str, Any], str | None, str], dict[str, Any]]
    failed: Callable[[dict[str, Any], str, str | None, str], dict[str, Any]]

    def store(self, paths: DataPaths) -> RecordStore:
        return RecordStore(paths, self.kind)

    @property
    def asset_keys(self) -> frozenset[AssetKey]:
        return frozenset(key for key, _ in self.stages)


def accept_with_partition(
    instance: DagsterInstance,
    partitions: DynamicPartitionsDefinition,
    record_id: str,
    accept: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """The partition first, then the stored request and its pending record: an accepted request
    can always be materialized (UI, `dagster asset materialize`), with or without the daemon."""
    instance.add_dynamic_partitions(partitions.name, [record_id])
    return accept()


def _timestamp(epoch: float | None) -> str | None:
    return utc_timestamp(datetime.fromtimestamp(epoch, UTC)) if epoch else None


def belongs_to(instance: DagsterInstance, run: DagsterRun, lifecycle: Lifecycle) -> bool:
    """A run of the kind: started by one of its doors (tagged), selecting any of its assets, or
    (a run of a whole job, such as Python's `materialize`) planning to materialize any of them."""
    if run.tags.get(KIND_TAG) == lifecycle.kind:
        return True
    if run.asset_selection:  # empty (Python's `materialize`) or None (a job) say nothing
        return bool(run.asset_selection & lifecycle.asset_keys)
    planned = instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    return any(
        entry.dagster_event is not None and entry.dagster_event.asset_key in lifecycle.asset_keys
        for entry in planned
    )


def latest_run(instance: DagsterInstance, lifecycle: Lifecycle, record_id: str) -> RunRecord | None:
    records = instance.get_run_records(
        RunsFilter(tags={PARTITION_TAG: record_id}), limit=RUNS_SCANNED
    )
    return next((r for r in records if belongs_to(instance, r.dagster_run, lifecycle)), None)


def failure_message(instance: DagsterInstance, run_id: str, status: DagsterRunStatus) -> str:
    """The first step failure's message (what a user needs), else the run's own failure."""
    for event_type in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE):
        for entry in instance.all_logs(run_id, of_type=event_type):
            event = entry.dagster_event
            # Only a STEP_FAILURE carries step_failure_data; asking a RUN_FAILURE for it raises.
            is_step_failure = (
                event is not None and event.event_type == DagsterEventType.STEP_FAILURE
            )
            data = event.step_failure_data if is_step_failure else None
            if data is not None and data.error is not None:
                error = data.error
                while error.cause is not None:  # Dagster wraps the user's exception; show the cause
                    error = error.cause
                return f"{event.step_key}: {error.message.strip()}"
            if entry.message:
                return entry.message
    return "the run was canceled" if status == DagsterRunStatus.CANCELED else "the run failed"


def stages_done(
    instance: DagsterInstance, run: DagsterRun, lifecycle: Lifecycle, partition: str
) -> set[AssetKey]:
    """Stages whose output is current for this run: materialized by it, or not selected by it and
    materialized after every stage before it (an older output would be stale)."""
    in_run = {
        entry.dagster_event.asset_key
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    }
    selected = run.asset_selection
    done: set[AssetKey] = set()
    newest_upstream = 0.0
    for key, _ in lifecycle.stages:
        latest = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
        ).records
        materialized_at = latest[0].timestamp if latest else None
        unselected_but_current = (
            selected is not None
            and key not in selected
            and materialized_at is not None
            and materialized_at >= newest_upstream
        )
        if key in in_run or unselected_but_current:
            done.add(key)
        if materialized_at is not None:
            newest_upstream = max(newest_upstream, materialized_at)
    return done


def _incomplete(lifecycle: Lifecycle, run: DagsterRun, done: set[AssetKey]) -> str:
    missing = [key.to_user_string() for key, _ in lifecycle.stages if key not in done]
    return (
        f"incomplete: run {run.run_id} succeeded but did not bring {', '.join(missing)} up to date"
        " (not selected, and older than an asset before it or never materialized); materialize"
        " them, or the whole partition, to finish"
    )


def sync_record(
    instance: DagsterInstance, paths: DataPaths, lifecycle: Lifecycle, record_id: str
) -> dict[str, Any] | None:
    """Bring one stored record up to date with its latest run; returns the record (None if unknown)."""
    store = lifecycle.store(paths)
    entry = store.entry(record_id)
    if entry is None:
        return None
    record = entry["record"]
    run_record = latest_run(instance, lifecycle, record_id)
    if run_record is None:
        return record
    run = run_record.dagster_run
    same_run = entry.get("run_id") == run.run_id
    if same_run and record["status"] in FINAL_STATUSES:
        return record
    # A new run's timestamps are its own, never those of the run the record showed before.
    base = record if same_run else {**record, "started_at": None, "completed_at": None}
    started_at = _timestamp(run_record.start_time)
    done = stages_done(instance, run, lifecycle, record_id)
    ended_at = _timestamp(run_record.end_time) or utc_timestamp()
    if run.status == DagsterRunStatus.SUCCESS and done == lifecycle.asset_keys:
        updated = lifecycle.completed(paths, record_id, base, started_at, ended_at)
    elif run.status == DagsterRunStatus.SUCCESS:
        updated = lifecycle.failed(base, _incomplete(lifecycle, run, done), started_at, ended_at)
    elif run.status in FAILED_RUN_STATUSES:
        message = failure_message(instance, run.run_id, run.status)
        updated = lifecycle.failed(base, message, started_at, ended_at)
    else:
        status = next(
            (s for key, s in lifecycle.stages if key not in done), lifecycle.stages[-1][1]
        )
        updated = lifecycle.in_progress(base, status, started_at or utc_timestamp())
    if updated != record or not same_run:
        updated = store.save(record_id, updated, run.run_id)
    return updated
