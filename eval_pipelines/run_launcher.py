"""Runs whose worker process died: told apart from runs still working, and failed with the step named.

Dagster's run monitoring (turned on in the dagster.yaml the project writes, see instance.py) asks the
run launcher whether each started run's worker is alive; the default launcher cannot tell, so a run
whose worker was killed (say with `dagster dev`) stayed STARTED forever and its record said
`replaying`. This launcher launches runs as the default one does and answers that question from the
worker's process: the pid Dagster logs when it starts a run's process, or the process tag of a run
started in process by `--wait`. The CLI's `get` and `rerun` use the same check.
"""

from __future__ import annotations

import json
import logging
import socket

from dagster import DagsterEventType, DagsterInstance, DefaultRunLauncher
from dagster._core.events import DagsterEvent, StepFailureData
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._utils.error import SerializableErrorInfo

from eval_pipelines.core.processes import pid_ended_since, process_ended

PROCESS_TAG = "eval_pipelines/process"
WORKER_HOST_TAG = "eval_pipelines/worker_host"
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
WORKER_STARTED = "Started process for run (pid: "
# A step is under way from the moment its worker is launched (multiprocess executor) or it starts.
_STEP_BEGUN = {DagsterEventType.STEP_WORKER_STARTING, DagsterEventType.STEP_START}
_STEP_ENDED = {
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.STEP_SKIPPED,
}


def _worker_pid(instance: DagsterInstance, run: DagsterRun) -> tuple[int, float] | None:
    """(pid, when it was logged) of the process Dagster started for the run, if it logged one."""
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
        if entry.message.startswith(WORKER_STARTED):
            pid = entry.message[len(WORKER_STARTED) :].split(")", 1)[0]
            if pid.isdigit():
                return int(pid), entry.timestamp
    return None


def dead_worker(instance: DagsterInstance, run: DagsterRun) -> str | None:
    """Why an unfinished run's worker is certainly gone, or None while it may still be working."""
    if run.is_finished:
        return None
    owner = run.tags.get(PROCESS_TAG)
    if owner is not None:
        if process_ended(owner):
            pid = owner.rsplit("/", 2)[1]
            return (
                f"the process running it (pid {pid}) ended before it finished (killed or crashed)"
            )
        return None
    if run.tags.get(WORKER_HOST_TAG) != socket.gethostname():
        return None  # a pid says nothing about a process on another host
    worker = _worker_pid(instance, run)
    if worker is not None and pid_ended_since(*worker):
        return (
            f"its run worker process (pid {worker[0]}) ended before it finished (killed or crashed,"
            " e.g. with `dagster dev`)"
        )
    return None


def _unfinished_steps(instance: DagsterInstance, run_id: str) -> list[str]:
    begun: list[str] = []
    ended: set[str] = set()
    for entry in instance.all_logs(run_id, of_type=_STEP_BEGUN | _STEP_ENDED):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type in _STEP_ENDED:
            ended.add(event.step_key)
        elif event.step_key not in begun:
            begun.append(event.step_key)
    return [key for key in begun if key not in ended]


def fail_unfinished_steps(instance: DagsterInstance, run: DagsterRun, message: str) -> None:
    """A STEP_FAILURE for each step the dead worker left running, so the record names the step."""
    for step_key in _unfinished_steps(instance, run.run_id):
        failure = StepFailureData(
            error=SerializableErrorInfo(message=message, stack=[], cls_name=None),
            user_failure_data=None,
        )
        event = DagsterEvent(
            event_type_value=DagsterEventType.STEP_FAILURE.value,
            job_name=run.job_name,
            step_key=step_key,
            event_specific_data=failure,
            message=f'Execution of step "{step_key}" failed: {message}.',
        )
        instance.report_dagster_event(event, run_id=run.run_id, log_level=logging.ERROR)


def fail_dead_run(instance: DagsterInstance, run: DagsterRun) -> bool:
    """Mark a run failed if its worker is certainly gone; True when it was."""
    message = dead_worker(instance, run)
    if message is None:
        return False
    fail_unfinished_steps(instance, run, message)
    instance.report_run_failed(run, f"This run failed: {message}.")
    return True


class WorkerCheckingRunLauncher(DefaultRunLauncher):
    """The default launcher, plus the worker health check that Dagster's run monitoring needs."""

    def launch_run(self, context: LaunchRunContext) -> None:
        """Launch as the default launcher does; a worker started by a code server on this host is
        tagged with the host, so its pid can be checked here later."""
        super().launch_run(context)
        run = self._instance.get_run_by_id(context.dagster_run.run_id)
        if run is None:
            return
        info = json.loads(run.tags.get(GRPC_INFO_TAG) or "{}")
        if "socket" in info or info.get("host") in {*_LOOPBACK, socket.gethostname()}:
            self._instance.add_run_tags(run.run_id, {WORKER_HOST_TAG: socket.gethostname()})

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        message = dead_worker(self._instance, run)
        if message is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        # Monitoring marks the run failed next; the steps first, so the failure names the step.
        fail_unfinished_steps(self._instance, run, message)
        return CheckRunHealthResult(WorkerStatus.FAILED, message)
