"""How a run writes its own record: its stage as each step starts, the outcome at the end, the
root cause when a step fails. Whatever launched the run (the daemon, `--wait`, the UI, Dagster's
CLI), the record is written by the run itself, so every door leaves a true record."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.records import RecordStore, Status, new_id, utc_timestamp


@dataclass(frozen=True)
class RecordBuilders:
    """One kind's record in each state (pure functions of the previous record)."""

    in_progress: Callable[[dict[str, Any], str, str], dict[str, Any]]
    completed: Callable[[dict[str, Any], dict[str, Any], str | None, str], dict[str, Any]]
    failed: Callable[[dict[str, Any], str, str | None, str], dict[str, Any]]

    @classmethod
    def of(cls, module: Any) -> RecordBuilders:
        """A kind's record module's builders: in_progress, completed_record, failed_record."""
        return cls(module.in_progress, module.completed_record, module.failed_record)


def root_cause(error: BaseException) -> str:
    """The innermost `raise ... from` cause, as `Type: message`: what a user can act on."""
    while error.__cause__ is not None:
        error = error.__cause__
    return "".join(traceback.format_exception_only(error)).strip()


@dataclass(frozen=True)
class RunRecords:
    """The records of one kind, as its runs write them; run_id says which run a state belongs to."""

    kind: str
    id_prefix: str  # "bench", "eval": new ids read as what they are
    builders: RecordBuilders
    stages: tuple[tuple[str, Status], ...]  # (step name, status shown while it runs), in order

    def store(self, paths: DataPaths) -> RecordStore:
        return RecordStore(paths, self.kind)

    def new_id(self) -> str:
        return new_id(self.id_prefix)

    @property
    def stage_names(self) -> list[str]:
        """The steps (asset names) that make a record, in order."""
        return [name for name, _ in self.stages]

    @property
    def statuses(self) -> tuple[Status, ...]:
        """Every status this kind's records show, in lifecycle order."""
        progress = dict.fromkeys(status for _, status in self.stages)
        return (Status.PENDING, *progress, Status.COMPLETED, Status.FAILED)

    def _current(self, paths: DataPaths, record_id: str, run_id: str) -> dict[str, Any]:
        """The stored record; a run other than the one it shows starts with fresh timestamps."""
        entry = self.store(paths).entry(record_id)
        if entry is None:
            raise FileNotFoundError(f"{self.kind}/{record_id} has no record (was it accepted?)")
        record = entry["record"]
        if entry.get("run_id") == run_id:
            return record
        return {**record, "started_at": None, "completed_at": None}

    def stage_started(self, paths: DataPaths, record_id: str, step: str, run_id: str) -> None:
        status = dict(self.stages)[step]
        record = self._current(paths, record_id, run_id)
        updated = self.builders.in_progress(record, status, utc_timestamp())
        self.store(paths).save(record_id, updated, run_id)

    def completed(
        self, paths: DataPaths, record_id: str, outcome: dict[str, Any], run_id: str
    ) -> dict[str, Any]:
        record = self._current(paths, record_id, run_id)
        updated = self.builders.completed(record, outcome, None, utc_timestamp())
        return self.store(paths).save(record_id, updated, run_id)

    def failed(self, paths: DataPaths, record_id: str, message: str, run_id: str) -> dict[str, Any]:
        record = self._current(paths, record_id, run_id)
        updated = self.builders.failed(record, message, None, utc_timestamp())
        return self.store(paths).save(record_id, updated, run_id)

    def step_stopped_early(self, step: str, planned: set[str]) -> list[str] | None:
        """The stages after `step` a run leaves unmade when step is the last one it plans; None
        when the run goes on (or step is the last stage)."""
        names = self.stage_names
        later = names[names.index(step) + 1 :]
        if not later or any(name in planned for name in later):
            return None
        return later

    def incomplete(
        self, paths: DataPaths, record_id: str, run_id: str, missing: list[str]
    ) -> dict[str, Any]:
        """A run that ends before the last stage: the record says what is missing, not progress."""
        return self.failed(
            paths,
            record_id,
            f"incomplete: run {run_id} succeeded but did not bring {', '.join(missing)} up to date"
            " (not selected); materialize them, or the whole partition, to finish",
            run_id,
        )
