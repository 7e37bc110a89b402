"""The request sensor every kind has: a request accepted by a door (or dropped by hand) becomes a
partition and one run."""

from typing import Any

from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import ID_RULE, DataPaths, shown
from eval_pipelines.core.records import FINAL_STATUSES, RecordStore, utc_timestamp
from eval_pipelines.core.run_lock import run_lock_held
from eval_pipelines.kinds import PARTITION_TAG, RequestKind
from eval_pipelines.resources import DataDirResource

SENSOR_INTERVAL_S = 5


def runnable_requests(
    paths: DataPaths, kind: RequestKind, candidates: list[str]
) -> tuple[dict[str, Any], list[str]]:
    """The requests among candidates to run (parsed, by id), and a report for each stored request
    that cannot run.

    A malformed request never runs (nor gets a partition): one a door accepted (it has a pending
    record) must still be well-formed in itself, and its record is marked failed if it is not, so
    later ticks pass it over; one dropped by hand (no record) must also name retrievers and datasets
    that exist. A door's request whose retriever or dataset vanished since runs, and its run
    reports that.
    """
    store = kind.store(paths)
    runnable: dict[str, Any] = {}
    reports = [
        f"{kind.name}/{shown(name)}: the folder name is not a valid id"
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
            parsed = kind.parse(request, paths if record is None else None)
        except InvalidInputError as exc:
            message = f"the stored request cannot run: {exc}"
            reports.append(f"{kind.name}/{record_id}: {message}")
            if isinstance(record, dict):
                reports.extend(_mark_failed(store, kind, record_id, record, message))
            continue
        except Exception as exc:  # one entry must never hold up the others; tried again next tick
            reports.append(f"{kind.name}/{record_id}: not checked this tick: {_said(exc)}")
            continue
        runnable[record_id] = parsed
    return runnable, reports


def _said(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _mark_failed(
    store: RecordStore, kind: RequestKind, record_id: str, record: dict, message: str
) -> list[str]:
    """The record of a request that cannot run, marked failed; a report if even that fails."""
    try:
        store.save(record_id, kind.records.builders.failed(record, message, None, utc_timestamp()))
    except Exception as exc:
        return [f"{kind.name}/{record_id}: its record could not be marked failed: {_said(exc)}"]
    return []


def awaits_a_run(
    instance: DagsterInstance, paths: DataPaths, kind: RequestKind, record_id: str
) -> bool:
    """A request a door accepted (partition added, record pending) that nothing has run yet and no
    process is running here (`--wait` and `rerun` hold the request's run lock)."""
    store = kind.store(paths)
    try:
        entry = store.entry(record_id)
    except InvalidInputError:
        return True  # runnable_requests reports it
    return (
        entry is not None
        and entry["record"]["status"] == "pending"
        and entry.get("run_id") is None
        and not run_lock_held(store.folder(record_id))
        and not instance.get_run_records(RunsFilter(tags={PARTITION_TAG: record_id}), limit=1)
    )


def request_sensor(kind: RequestKind) -> SensorDefinition:
    """Accepted requests nothing runs yet get one run (run_key = request id); a request dropped by
    hand gets its partition first."""

    @sensor(
        name=f"{kind.name}_request_sensor",
        job=kind.job,
        minimum_interval_seconds=SENSOR_INTERVAL_S,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Turns accepted {kind.name} requests into a run (and a partition).",
    )
    def _sensor(
        context: SensorEvaluationContext, data_dir: DataDirResource
    ) -> SensorResult | SkipReason:
        paths = data_dir.paths
        ids = kind.store(paths).request_ids()
        existing = set(context.instance.get_dynamic_partitions(kind.partitions.name))
        candidates = [
            record_id
            for record_id in ids
            if record_id not in existing or awaits_a_run(context.instance, paths, kind, record_id)
        ]
        new, reports = runnable_requests(paths, kind, candidates)
        for report in reports:
            context.log.warning(report)
        if not new:
            rejected = "".join(f"\n{report}" for report in reports)
            return SkipReason(f"no new {kind.name} requests ({len(ids)} known){rejected}")
        unpartitioned = [record_id for record_id in new if record_id not in existing]
        return SensorResult(
            run_requests=[
                RunRequest(run_key=record_id, partition_key=record_id, tags=kind.run_tags(request))
                for record_id, request in new.items()
            ],
            dynamic_partitions_requests=(
                [kind.partitions.build_add_request(unpartitioned)] if unpartitioned else []
            ),
        )

    return _sensor
