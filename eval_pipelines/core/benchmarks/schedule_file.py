"""Benchmarks declared in a file, run on a schedule (e.g. nightly: production vs candidates, last 24 h)."""

from __future__ import annotations

import copy
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.records import utc_timestamp

SCHEDULE_FILE = "benchmark_schedule.yaml"


def declared_requests(file: Path, now: datetime) -> list[dict[str, Any]]:
    """The file's requests; `lookback_hours: H` becomes session_filter.time_range [now - H, now]."""
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{file}: not valid YAML ({exc})") from None
    entries = (data or {}).get("benchmarks") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise InvalidInputError(f"{file}: benchmarks: expected a list of benchmark requests")
    requests = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidInputError(f"{file}: benchmarks[{index}]: expected an object")
        request = copy.deepcopy(entry)
        hours = request.pop("lookback_hours", None)
        if hours is not None:
            if type(hours) not in (int, float) or not math.isfinite(hours) or hours <= 0:
                raise InvalidInputError(
                    f"{file}: benchmarks[{index}].lookback_hours: expected a positive number, got {hours!r}"
                )
            session_filter = request.setdefault("session_filter", {}) or {}
            session_filter["time_range"] = {
                "start": utc_timestamp(now - timedelta(hours=hours)),
                "end": utc_timestamp(now),
            }
            request["session_filter"] = session_filter
        requests.append(request)
    return requests
