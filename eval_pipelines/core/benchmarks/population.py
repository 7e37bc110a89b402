"""The query mix of the sessions a benchmark's filter matches: where a plan's S comes from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from eval_pipelines.core.benchmarks.inference import UNIT_SESSION
from eval_pipelines.core.benchmarks.plan_settings import MIN_SESSION_COUNT
from eval_pipelines.core.benchmarks.request import BenchmarkRequest
from eval_pipelines.core.benchmarks.sampling import query_counts
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.query_keys import query_keys
from eval_pipelines.core.stats import power as pw


@dataclass(frozen=True)
class Population:
    """Sessions per query among every session the filter matches."""

    counts: np.ndarray

    @property
    def sessions(self) -> int:
        return int(self.counts.sum())

    @property
    def concentration(self) -> float:
        return pw.concentration(self.counts)


def population(paths: DataPaths, request: BenchmarkRequest) -> Population:
    """Counted in SQL per raw query text (and input, when filters are part of the key), then merged
    per normalized key with query_keys itself, so the clusters are the benchmark's."""
    columns = ("query_text",) if request.query_key == "text" else ("query_text", "query_input")
    counted = query_counts(paths, request.sampling_filter, columns)
    if counted.num_rows == 0:
        return Population(np.zeros(0, dtype=np.int64))
    keyed = pa.table(
        {"key": query_keys(counted, request.query_key), "sessions": counted.column("sessions")}
    )
    merged = keyed.group_by("key").aggregate([("sessions", "sum")])
    return Population(np.sort(merged.column("sessions_sum").to_numpy())[::-1])


def minimum_sessions(population: Population, request: BenchmarkRequest) -> int | None:
    """The smallest benchmark that can be tested: session_count's minimum, and enough sessions to
    expect min_clusters queries (sessions, with session-level inference). None: no benchmark of
    this population reaches min_clusters."""
    if request.inference_unit == UNIT_SESSION:
        needed: int | None = request.min_clusters
        if request.min_clusters > population.sessions:
            needed = None
    else:
        needed = pw.sessions_for_clusters(
            request.min_clusters, population.counts, population.sessions
        )
    return None if needed is None else max(MIN_SESSION_COUNT, needed)
