"""Benchmarks declared in a file, run on a schedule (e.g. nightly: production vs candidates, last 24 h)."""

from __future__ import annotations

import copy
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from eval_pipelines.core.benchmarks.request import RequestValidationError, parse_request
from eval_pipelines.core.errors import InvalidRequestError
from eval_pipelines.core.paths import DataPaths, shown
from eval_pipelines.core.records import utc_timestamp
from eval_pipelines.core.storage import read_whole

SCHEDULE_FILE = "benchmark_schedule.yaml"
# A century: any longer look-back is a typo, and datetime arithmetic overflows not far beyond.
MAX_LOOKBACK_HOURS = 24 * 365 * 100


class ScheduleFileError(InvalidRequestError):
    """The schedule file, or one of its entries, cannot be submitted; every problem is listed."""

    def __init__(self, file: Path, problems: list[str]) -> None:
        self.title = f"{file}: nothing was submitted"
        super().__init__(problems)


def _load(file: Path) -> Any:
    try:
        return yaml.safe_load(read_whole(file).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ScheduleFileError(file, [f"file: not UTF-8 text ({exc.reason})"]) from None
    except OSError as exc:
        raise ScheduleFileError(file, [f"file: cannot read ({exc.strerror or exc})"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScheduleFileError(file, [f"file: not valid YAML{where}: {problem}"]) from None


def declared_requests(file: Path, now: datetime) -> list[dict[str, Any]]:
    """The file's requests; `lookback_hours: H` becomes session_filter.time_range [now - H, now]."""
    data = _load(file)
    entries = data.get("benchmarks") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ScheduleFileError(file, ["benchmarks: expected a list of benchmark requests"])
    requests, problems = [], []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(f"benchmarks[{index}]: expected an object, got {shown(entry)}")
            continue
        request = copy.deepcopy(entry)
        hours = request.pop("lookback_hours", None)
        if hours is not None:
            if (
                type(hours) not in (int, float)
                or not math.isfinite(hours)
                or not 0 < hours <= MAX_LOOKBACK_HOURS
            ):
                problems.append(
                    f"benchmarks[{index}].lookback_hours: expected a positive number of hours"
                    f" up to {MAX_LOOKBACK_HOURS}, got {shown(hours)}"
                )
                continue
            session_filter = request.get("session_filter") or {}
            if isinstance(session_filter, dict):
                request["session_filter"] = {
                    **session_filter,
                    "time_range": {
                        "start": utc_timestamp(now - timedelta(hours=hours)),
                        "end": utc_timestamp(now),
                    },
                }
        requests.append(request)
    if problems:
        raise ScheduleFileError(file, problems)
    return requests


def checked_requests(file: Path, now: datetime, paths: DataPaths) -> list[dict[str, Any]]:
    """The file's requests, each validated as every door validates one; all or none are submitted."""
    requests = declared_requests(file, now)
    problems = []
    for index, request in enumerate(requests):
        try:
            parse_request(request, paths)
        except RequestValidationError as exc:
            problems += [f"benchmarks[{index}]: {problem}" for problem in exc.problems]
    if problems:
        raise ScheduleFileError(file, problems)
    return requests
