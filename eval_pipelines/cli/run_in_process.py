"""--wait and rerun: run a request's partition in this process, on the project's instance, with no
daemon; and `get`/`list` settling records whose run ended without writing its end.

A run started here is tagged with this process, so when the process is killed or crashes, its
run (which no daemon watches) can be marked failed instead of showing progress forever. Its steps'
progress lines (replay, evaluation runs) reach this process's stderr through core.progress's echo,
while Dagster's own console log stays at warnings.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from dagster import DagsterInstance, materialize

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.processes import this_process
from eval_pipelines.core.progress import echoing_to, interval_from_env, lines_to
from eval_pipelines.core.retrieval.engines import checked_engine_from_env
from eval_pipelines.core.run_lock import AlreadyRunning, run_lock
from eval_pipelines.instance import get_instance
from eval_pipelines.kinds import RequestKind
from eval_pipelines.resources import DataDirResource
from eval_pipelines.run_failures import record_run_end, settle_record
from eval_pipelines.run_launcher import PROCESS_TAG

QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def accept_here(
    paths: DataPaths, kind: RequestKind, request: Any, record_id: str
) -> dict[str, Any]:
    """Accept a request without running it (the daemon's request sensor will), its partition first."""
    return kind.accept_with_partition(get_instance(paths), paths, request, record_id)


def run_here(
    paths: DataPaths,
    kind: RequestKind,
    record_id: str,
    request: Any | None,
    instance: DagsterInstance | None = None,
    check: Callable[[DagsterInstance], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Under the request's run lock: check it may run (re-runs), accept it with its partition
    (new requests, when given), materialize it here, its steps' progress lines to `progress`;
    the run writes its record.

    The lock is held until the record is final, so a second rerun is refused instead of replaying
    everything again, and the request sensor never starts a run of a request running here.
    """
    interval_from_env(terminal=True)  # a bad interval is refused before anything is accepted
    instance = instance or get_instance(paths)
    store = kind.store(paths)
    echo = echoing_to(lines_to(progress)) if progress is not None else nullcontext()
    with echo, run_lock(store.folder(record_id), f"{kind.singular} {record_id}"):
        if check is not None:
            check(instance)
        if request is not None:
            kind.accept_with_partition(instance, paths, request, record_id)
        labelled = (
            request if request is not None else kind.parse(store.stored_request(record_id), None)
        )
        result = materialize(
            kind.assets,
            partition_key=record_id,
            instance=instance,
            resources={"data_dir": DataDirResource(path=str(paths.root))},
            tags={**kind.run_tags(labelled), PROCESS_TAG: this_process()},
            run_config=QUIET_RUN_CONFIG,
            raise_on_error=False,
        )
        record_run_end(instance, paths, result.dagster_run)
        return store.get(record_id)


def refresh_record(paths: DataPaths, kind: RequestKind, record_id: str) -> dict[str, Any] | None:
    return settle_record(get_instance(paths), paths, kind, record_id)


def refresh_records(
    paths: DataPaths, kind: RequestKind, records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Listed records whose run ended unwritten (a dead worker) settled; as stored when no
    instance exists yet."""
    if not (paths.dagster_home / "dagster.yaml").is_file():
        return records
    instance = get_instance(paths)
    id_field = f"{kind.singular}_id"
    return [settle_record(instance, paths, kind, r[id_field]) or r for r in records]


def rerun_here(
    paths: DataPaths,
    kind: RequestKind,
    record_id: str,
    instance: DagsterInstance | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run an accepted, unfinished request's partition again here, with its stored request.

    Replay chunks an earlier run finished are loaded, not replayed, so the record equals an
    uninterrupted run's. A request still running or already completed is refused.
    """
    if kind.store(paths).get(record_id) is None:
        raise InvalidInputError(f"{kind.singular}_id: no {kind.singular} {record_id!r}")

    def may_run_again(instance: DagsterInstance) -> None:
        record = settle_record(instance, paths, kind, record_id) or {}
        run_id = kind.store(paths).entry(record_id).get("run_id")
        run = instance.get_run_by_id(run_id) if run_id else None
        if run is not None and not run.is_finished:
            raise AlreadyRunning(
                f"{kind.singular}_id: {record_id} is still running (Dagster run {run.run_id},"
                f" {run.status.value}); wait for it to end"
            )
        if record.get("status") == "completed":
            raise InvalidInputError(
                f"{kind.singular}_id: {record_id} has completed; create a new {kind.singular} to"
                " replay again"
            )

    return run_here(paths, kind, record_id, None, instance, may_run_again, progress)


def run_benchmark_here(
    paths: DataPaths,
    request: Any,
    benchmark_id: str,
    progress: Callable[[str], None],
    instance: DagsterInstance | None = None,
) -> dict[str, Any]:
    from eval_pipelines.kinds import BENCHMARKS

    checked_engine_from_env()  # a bad replay engine or dead scheduler: refused, nothing accepted
    progress(f"benchmark {benchmark_id}: running {len(request.retriever_ids)} pipelines here ...")
    return run_here(paths, BENCHMARKS, benchmark_id, request, instance, progress=progress)


def rerun_benchmark_here(
    paths: DataPaths,
    benchmark_id: str,
    progress: Callable[[str], None],
    instance: DagsterInstance | None = None,
) -> dict[str, Any]:
    from eval_pipelines.kinds import BENCHMARKS

    checked_engine_from_env()
    progress(f"benchmark {benchmark_id}: running again here, resuming finished replay chunks ...")
    return rerun_here(paths, BENCHMARKS, benchmark_id, instance, progress)


def run_evaluation_here(
    paths: DataPaths,
    request: Any,
    evaluation_id: str,
    progress: Callable[[str], None],
    instance: DagsterInstance | None = None,
) -> dict[str, Any]:
    from eval_pipelines.kinds import EVALUATIONS

    progress(
        f"evaluation {evaluation_id}: {request.retriever_id} on {request.dataset_name}, running here ..."
    )
    return run_here(paths, EVALUATIONS, evaluation_id, request, instance, progress=progress)
