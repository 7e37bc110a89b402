"""A run that ends failed or canceled outside any step (a killed worker, a blocking check, a
cancel) cannot write its record; this marks it failed with the failing step and its root cause.
The run-failure sensor calls it as runs end, and `get`/`list`/`rerun` for a run no daemon watched."""

from __future__ import annotations

from typing import Any

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
from dagster._core.storage.dagster_run import DagsterRun

from eval_pipelines.assets.recording import planned_steps
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.records import FINAL_STATUSES
from eval_pipelines.kinds import KIND_TAG, KINDS, PARTITION_TAG, RequestKind
from eval_pipelines.run_launcher import fail_dead_run

ENDED_UNFINISHED = {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def failure_message(instance: DagsterInstance, run_id: str, status: DagsterRunStatus) -> str:
    """The first step failure's root cause (what a user needs), else the run's own failure."""
    for event_type in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE):
        for entry in instance.all_logs(run_id, of_type=event_type):
            event = entry.dagster_event
            is_step_failure = (
                event is not None and event.event_type == DagsterEventType.STEP_FAILURE
            )
            data = event.event_specific_data if event is not None else None
            error = getattr(data, "error", None)
            if error is not None:
                while error.cause is not None:  # Dagster wraps the user's exception; show the cause
                    error = error.cause
                where = f"{event.step_key}: " if is_step_failure else ""
                return f"{where}{error.message.strip()}"
            if entry.message:
                return entry.message
    return "the run was canceled" if status == DagsterRunStatus.CANCELED else "the run failed"


def kind_of(instance: DagsterInstance, run: DagsterRun) -> RequestKind | None:
    """The request kind a run materializes: tagged by one of our doors, or planning any of its
    steps (a UI button or `dagster asset materialize` tags nothing)."""
    if run.tags.get(KIND_TAG) in KINDS:
        return KINDS[run.tags[KIND_TAG]]
    steps = planned_steps(instance, run)
    return next((kind for kind in KINDS.values() if steps & set(kind.records.stage_names)), None)


def record_run_end(
    instance: DagsterInstance, paths: DataPaths, run: DagsterRun
) -> dict[str, Any] | None:
    """Mark the record of a failed or canceled run failed, unless the run already wrote its end;
    returns the record it wrote (None when there was nothing to do)."""
    record_id = run.tags.get(PARTITION_TAG)
    kind = kind_of(instance, run) if record_id else None
    if kind is None or run.status not in ENDED_UNFINISHED:
        return None
    entry = kind.store(paths).entry(record_id)
    if entry is None:
        return None
    ours = entry.get("run_id") == run.run_id
    if ours and entry["record"]["status"] in FINAL_STATUSES:
        return None
    if not ours and entry.get("run_id") is not None and not _newer(instance, run, entry["run_id"]):
        return None  # a later run owns the record now
    message = failure_message(instance, run.run_id, run.status)
    return kind.records.failed(paths, record_id, message, run.run_id)


def _newer(instance: DagsterInstance, run: DagsterRun, other_run_id: str) -> bool:
    other = instance.get_run_record_by_id(other_run_id)
    this = instance.get_run_record_by_id(run.run_id)
    return other is None or this is None or this.create_timestamp >= other.create_timestamp


def settle_record(
    instance: DagsterInstance, paths: DataPaths, kind: RequestKind, record_id: str
) -> dict[str, Any] | None:
    """Bring a record up to date with the run it names, when that run ended without writing its
    end (its worker died, or it failed outside a step); returns the record as it stands."""
    entry = kind.store(paths).entry(record_id)
    if entry is None:
        return None
    run_id = entry.get("run_id")
    if run_id is None or entry["record"]["status"] in FINAL_STATUSES:
        return entry["record"]
    run = instance.get_run_by_id(run_id)
    if run is None:
        return entry["record"]
    if not run.is_finished and fail_dead_run(instance, run):
        run = instance.get_run_by_id(run_id)
    return record_run_end(instance, paths, run) or kind.store(paths).get(record_id)
