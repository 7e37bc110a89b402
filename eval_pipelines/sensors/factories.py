"""The two sensors every request kind has: new requests -> partition + run; runs -> records."""

from collections.abc import Callable
from typing import Any

from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from eval_pipelines.core.benchmarks import submit as benchmark_submit
from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.evaluations import submit as evaluation_submit
from eval_pipelines.core.evaluations.request import parse_evaluation_request
from eval_pipelines.core.paths import ID_RULE, DataPaths, shown
from eval_pipelines.core.records import FINAL_STATUSES, RecordStore, StoredFileError, utc_timestamp
from eval_pipelines.core.run_lock import run_lock_held
from eval_pipelines.lifecycle import KIND_TAG, Lifecycle, latest_run, sync_record
from eval_pipelines.resources import DataDirResource

SENSOR_INTERVAL_S = 5


# How each kind validates a stored request: the parser every door uses.
REQUEST_PARSERS: dict[str, Callable[..., Any]] = {
    benchmark_submit.KIND: parse_request,
    evaluation_submit.KIND: parse_evaluation_request,
}


def runnable_requests(
    paths: DataPaths, lifecycle: Lifecycle, candidates: list[str]
) -> tuple[list[str], list[str]]:
    """The requests among candidates to run, and a report for each stored request that cannot run.

    A malformed request never runs (nor gets a partition): one a door accepted (it has a pending record) must
    still be well-formed in itself, and its record is marked failed if it is not, so later ticks pass
    it over; one dropped by hand (no record) must also name retrievers and datasets that exist. A
    door's request whose retriever or dataset vanished since runs, and its run reports that.
    """
    store = lifecycle.store(paths)
    parse = REQUEST_PARSERS[lifecycle.kind]
    runnable: list[str] = []
    reports = [
        f"{lifecycle.kind}/{shown(name)}: the folder name is not a valid id"
        f" ({ID_RULE}); its request.json is ignored"
        for name in store.unusable_folders()
    ]
    for record_id in candidates:
        record = None
        try:
            entry = store.entry(record_id)
            record = entry["record"] if entry is not None else None
            if record is not None and record.get("status") in FINAL_STATUSES:
                continue  # rejected on an earlier tick: its record says why
            request = store.request(record_id)
            if request is None:
                continue  # removed since the listing
            parse(request, paths, check_references=record is None)
        except InvalidInputError as exc:
            message = f"the stored request cannot run: {exc}"
            reports.append(f"{lifecycle.kind}/{record_id}: {message}")
            if isinstance(record, dict):
                reports.extend(_mark_failed(store, lifecycle, record_id, record, message))
            continue
        except Exception as exc:  # one entry must never hold up the others; tried again next tick
            reports.append(f"{lifecycle.kind}/{record_id}: not checked this tick: {_said(exc)}")
            continue
        runnable.append(record_id)
    return runnable, reports


def _said(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _mark_failed(
    store: RecordStore, lifecycle: Lifecycle, record_id: str, record: dict[str, Any], message: str
) -> list[str]:
    """The record of a request that cannot run, marked failed; a report if even that fails."""
    try:
        store.save(record_id, lifecycle.failed(record, message, None, utc_timestamp()))
    except Exception as exc:
        return [
            f"{lifecycle.kind}/{record_id}: its record could not be marked failed: {_said(exc)}"
        ]
    return []


def awaits_a_run(
    instance: DagsterInstance, paths: DataPaths, lifecycle: Lifecycle, record_id: str
) -> bool:
    """A request a door accepted (partition added, record pending) that nothing has run yet and no
    process is running here (`--wait` and `rerun` hold the request's run lock)."""
    store = lifecycle.store(paths)
    try:
        entry = store.entry(record_id)
    except InvalidInputError:
        return True  # runnable_requests reports it
    return (
        entry is not None
        and entry["record"]["status"] == "pending"
        and entry.get("run_id") is None
        and not run_lock_held(store.folder(record_id))
        and latest_run(instance, lifecycle, record_id) is None
    )


def request_sensor(lifecycle: Lifecycle, job: Any) -> SensorDefinition:
    """Accepted requests nothing runs yet get one run (run_key = request id); a request dropped by
    hand gets its partition first."""

    @sensor(
        name=f"{lifecycle.kind}_request_sensor",
        job=job,
        minimum_interval_seconds=SENSOR_INTERVAL_S,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Turns accepted {lifecycle.kind} requests into a run (and a partition).",
    )
    def _sensor(
        context: SensorEvaluationContext, data_dir: DataDirResource
    ) -> SensorResult | SkipReason:
        paths = data_dir.paths
        ids = lifecycle.store(paths).request_ids()
        existing = set(context.instance.get_dynamic_partitions(lifecycle.partitions.name))
        candidates = [
            record_id
            for record_id in ids
            if record_id not in existing
            or awaits_a_run(context.instance, paths, lifecycle, record_id)
        ]
        new, reports = runnable_requests(paths, lifecycle, candidates)
        for report in reports:
            context.log.warning(report)
        if not new:
            rejected = "".join(f"\n{report}" for report in reports)
            return SkipReason(f"no new {lifecycle.kind} requests ({len(ids)} known){rejected}")
        unpartitioned = [record_id for record_id in new if record_id not in existing]
        return SensorResult(
            run_requests=[
                RunRequest(
                    run_key=record_id, partition_key=record_id, tags={KIND_TAG: lifecycle.kind}
                )
                for record_id in new
            ],
            dynamic_partitions_requests=(
                [lifecycle.partitions.build_add_request(unpartitioned)] if unpartitioned else []
            ),
        )

    return _sensor


def record_sensor(lifecycle: Lifecycle) -> SensorDefinition:
    """Keeps every record in step with its partition's latest run (progress, completion, failure)."""

    @sensor(
        name=f"{lifecycle.kind}_record_sensor",
        minimum_interval_seconds=SENSOR_INTERVAL_S,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Updates {lifecycle.kind} records from their runs' progress.",
    )
    def _sensor(context: SensorEvaluationContext, data_dir: DataDirResource) -> SkipReason:
        paths = data_dir.paths
        store = lifecycle.store(paths)
        changed = 0
        unreadable: list[str] = []
        unsynced: list[str] = []
        for record_id in store.ids():
            try:
                entry = store.entry(record_id)
                if entry is None:
                    continue
                run = latest_run(context.instance, lifecycle, record_id)
                settled = entry["record"]["status"] in FINAL_STATUSES and (
                    run is None or run.dagster_run.run_id == entry.get("run_id")
                )
                if settled:
                    continue
                before = entry["record"]
                if sync_record(context.instance, paths, lifecycle, record_id) != before:
                    changed += 1
            except StoredFileError as exc:
                unreadable.append(f"{lifecycle.kind}/{record_id}: {exc.file.name}: {exc.problem}")
            except Exception as exc:  # one entry must never stall every other record
                unsynced.append(f"{lifecycle.kind}/{record_id}: {_said(exc)}")
        for problem in unreadable + unsynced:
            context.log.warning(problem)
        message = f"updated {changed} {lifecycle.kind} record(s)"
        if unreadable:
            message += f"; {len(unreadable)} unreadable, left as they are: " + "; ".join(unreadable)
        if unsynced:
            message += f"; {len(unsynced)} not synced, tried again next tick: " + "; ".join(
                unsynced
            )
        return SkipReason(message)

    return _sensor
