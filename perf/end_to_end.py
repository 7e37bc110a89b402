"""Benchmark 6: one benchmark of 10,000 logged sessions x 4 demo pipelines through Dagster, request to record.

The demo world (catalog, retrievers, intents, logs) is built in a scratch data directory and the Dagster
instance lives in a scratch DAGSTER_HOME beside it, made the way DagsterInstance.get() makes it. The
measured step is what `eval-pipelines benchmark create --wait` does: parse the request, then
run_benchmark_here (partition, accepted request, the benchmark assets materialized in this process, the
record synced). Every run is a new request with a new benchmark id over the last WINDOW_DAYS days of
the logs. Where the time goes comes from the run's event log: each asset step from its STEP_START to
its STEP_SUCCESS; the rest of the wall time is Dagster's run setup, event writes and the record sync.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from dagster import DagsterEventType, DagsterInstance

from eval_pipelines.cli.run_in_process import run_benchmark_here
from eval_pipelines.contracts import validation_errors
from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.benchmarks.submit import benchmark_store, new_benchmark_id
from eval_pipelines.core.demo.retrievers import BETTER, PROD, PROD_COPY, WORSE
from eval_pipelines.core.demo.world import (
    DEFAULT_SEED,
    LOGS_END,
    DemoScale,
    build_catalog,
    build_intents,
    simulate_logs,
    write_demo_retrievers,
)
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.records import utc_timestamp
from eval_pipelines.core.storage import write_text_atomic
from eval_pipelines.core.table_names import SESSIONS as SESSIONS_TABLE
from perf.harness import (
    BenchmarkResult,
    ContenderResult,
    CorrectnessError,
    Target,
    measure_step,
)

NAME = "end_to_end"
SESSIONS: dict[str, int] = {"tiny": 300, "small": 2_000, "full": 10_000}
WARMUP_SESSIONS: dict[str, int] = {"tiny": 50, "small": 200, "full": 500}
DEMO_SCALES: dict[str, DemoScale] = {
    "tiny": DemoScale.small(),
    "small": DemoScale.small(),
    "full": DemoScale(),
}
REPEAT_CAP: dict[str, int] = {"tiny": 3, "small": 3, "full": 2}
BASELINE = PROD
CANDIDATES: tuple[str, ...] = (BETTER, WORSE, PROD_COPY)
WINDOW_DAYS = 32
TARGET_SECONDS = 120.0
CONTENDER = "eval-pipelines (Dagster, in process)"
OUTSIDE_STEPS = "outside the asset steps"
_DAGSTER_YAML = "telemetry:\n  enabled: false\n"


def build_world(paths: DataPaths, scale: DemoScale, seed: int) -> dict[str, Any]:
    """The demo steps a benchmark needs (no judgments); returns the logs step's summary."""
    build_catalog(paths, seed, scale)
    write_demo_retrievers(paths)
    build_intents(paths, seed, scale)
    return simulate_logs(paths, seed, scale)


def scratch_instance(home: Path) -> DagsterInstance:
    """A sqlite instance in `home`, built the way DagsterInstance.get() builds one from DAGSTER_HOME.

    The process's DAGSTER_HOME is left alone, so nothing points at the scratch directory afterwards.
    """
    write_text_atomic(_DAGSTER_YAML, home / "dagster.yaml")
    return DagsterInstance.from_config(str(home))


def request_document(session_count: int, seed: int) -> dict[str, Any]:
    start = LOGS_END - timedelta(days=WINDOW_DAYS)
    return {
        "benchmark_name": f"end-to-end benchmark, {session_count} sessions",
        "baseline_retriever_id": BASELINE,
        "candidate_retriever_ids": list(CANDIDATES),
        "session_count": session_count,
        "session_filter": {
            "retriever_ids": [BASELINE],  # the baseline's own traffic, as users benchmark it
            "time_range": {"start": utc_timestamp(start), "end": utc_timestamp(LOGS_END)},
        },
        "seed": seed,
    }


def create_and_wait(
    paths: DataPaths, instance: DagsterInstance, session_count: int, seed: int
) -> dict[str, Any]:
    """What `benchmark create --wait` does with a fresh request: the final record."""
    request = parse_request(request_document(session_count, seed), paths)
    return run_benchmark_here(paths, request, new_benchmark_id(), lambda _: None, instance)


def step_seconds(instance: DagsterInstance, run_id: str) -> dict[str, float]:
    """Each step's STEP_START -> STEP_SUCCESS seconds, in the order the steps started."""
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    events = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS}
    for entry in instance.all_logs(run_id, of_type=events):
        step = entry.step_key
        if step is None or entry.dagster_event is None:
            continue
        if entry.dagster_event.event_type == DagsterEventType.STEP_START:
            started[step] = entry.timestamp
        elif step in started:
            seconds[step] = entry.timestamp - started[step]
    if set(seconds) != set(started):
        raise CorrectnessError(
            f"run {run_id}: steps {sorted(set(started) - set(seconds))} never succeeded"
        )
    return seconds


def schema_errors(record: dict[str, Any]) -> list[str]:
    """The record's violations of the reference BenchmarkResponse (the schemas ship with the package)."""
    return validation_errors("get_benchmark.openapi", "BenchmarkResponse", record)


def check_record(paths: DataPaths, record: dict[str, Any], requested: int) -> dict[str, Any]:
    """The run reached a completed, valid record over the requested sessions with the expected verdicts."""
    benchmark_id = record["benchmark_id"]
    if record["status"] != "completed":
        raise CorrectnessError(f"{benchmark_id}: {record['status']}: {record['error_message']}")
    sample = benchmark_store(paths).read_facts(benchmark_id, SESSIONS_TABLE)
    if not record["session_count"] == sample["sampled"] == requested:
        raise CorrectnessError(
            f"{benchmark_id}: record says {record['session_count']} sessions, the sample"
            f" {sample['sampled']}, requested {requested}"
        )
    if sample["warnings"]:
        raise CorrectnessError(f"{benchmark_id}: sampling warned {sample['warnings']}")
    pipelines = [BASELINE, *CANDIDATES]
    results = {r["retriever_id"]: r for r in record["results"]}
    if list(results) != pipelines:
        raise CorrectnessError(f"{benchmark_id}: results for {list(results)}, expected {pipelines}")
    failed = {pid: r["failed_sessions"] for pid, r in results.items() if r["failed_sessions"]}
    if failed:
        raise CorrectnessError(f"{benchmark_id}: failed sessions {failed}")
    comparisons = {c["candidate_retriever_id"]: c for c in record["comparison"]["comparisons"]}
    copy_delta = comparisons[PROD_COPY]["ndcg_delta"]
    if any(delta != 0.0 for delta in copy_delta.values()):
        raise CorrectnessError(f"{benchmark_id}: {PROD_COPY} vs {PROD} NDCG delta {copy_delta}")
    ndcg = {pid: r["metrics"]["ndcg_at_k"]["10"] for pid, r in results.items()}
    if not ndcg[BETTER] > ndcg[PROD]:
        raise CorrectnessError(f"{benchmark_id}: {BETTER} does not beat {PROD} on NDCG@10: {ndcg}")
    errors = schema_errors(record)
    if errors:
        raise CorrectnessError(f"{benchmark_id}: record breaks BenchmarkResponse: {errors[:5]}")
    return {
        "status": record["status"],
        "sessions_sampled": sample["sampled"],
        "sessions_matched": sample["matched"],
        "ndcg_at_10": ndcg,
        "prod_copy_ndcg_delta_at_10": copy_delta["10"],
        "better_beats_prod_at_10": True,
        "recommendation": record["comparison"]["recommendation"],
        "record_schema": "valid",
    }


def split_of(
    instance: DagsterInstance, paths: DataPaths, record: dict[str, Any], wall: float
) -> dict[str, float]:
    """Seconds per asset step of the run behind the record, and the wall time outside them."""
    entry = benchmark_store(paths).entry(record["benchmark_id"])
    if entry is None or entry["run_id"] is None:
        raise CorrectnessError(f"{record['benchmark_id']}: the record names no Dagster run")
    split = step_seconds(instance, entry["run_id"])
    split[OUTSIDE_STEPS] = wall - sum(split.values())
    return split


def median_run(seconds: list[float]) -> int:
    """Index of the run with the median wall time (the lower one of an even count)."""
    return sorted(range(len(seconds)), key=seconds.__getitem__)[(len(seconds) - 1) // 2]


def run(scale: str, repeat: int, workdir: Path, seed: int = 6) -> BenchmarkResult:
    paths = DataPaths(workdir / "data")
    demo_scale = DEMO_SCALES[scale]
    logs = build_world(paths, demo_scale, DEFAULT_SEED)
    sessions = SESSIONS[scale]
    repetitions = min(repeat, REPEAT_CAP[scale])
    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    with scratch_instance(home) as instance:

        def benchmark(count: int) -> Callable[[], dict[str, Any]]:
            return lambda: create_and_wait(paths, instance, count, seed)

        warmup, _, _, _ = measure_step(benchmark(WARMUP_SESSIONS[scale]))
        check_record(paths, warmup, WARMUP_SESSIONS[scale])
        contender = ContenderResult(CONTENDER, [], 0, "", items=sessions)
        splits: list[dict[str, float]] = []
        checks: dict[str, Any] = {}
        for _ in range(repetitions):
            record, seconds, peak, method = measure_step(benchmark(sessions))
            checks = check_record(paths, record, sessions)
            splits.append(split_of(instance, paths, record, seconds))
            contender.seconds.append(seconds)
            contender.peak_rss_bytes = max(contender.peak_rss_bytes, peak)
            contender.rss_method = method
    middle = median_run(contender.seconds)
    split, wall = splits[middle], contender.seconds[middle]
    checks["split_seconds_median_run"] = {part: round(s, 3) for part, s in split.items()}
    checks["split_share_of_wall"] = {part: round(s / wall, 4) for part, s in split.items()}
    checks["split_seconds_each_run"] = [{p: round(s, 3) for p, s in x.items()} for x in splits]
    return BenchmarkResult(
        name=NAME,
        parameters={
            "sessions": sessions,
            "pipelines": [BASELINE, *CANDIDATES],
            "window_days": WINDOW_DAYS,
            "warmup_sessions": WARMUP_SESSIONS[scale],
            "repetitions": repetitions,
            "demo_executions": demo_scale.executions,
            "demo_products": demo_scale.products,
            "logged_sessions_with_interactions": logs["sessions_with_interactions"],
            "seed": seed,
        },
        contenders=[contender],
        checks=checks,
        targets=[
            Target(
                f"wall seconds, {sessions:,} sessions x {1 + len(CANDIDATES)} pipelines, request to record",
                contender.median_seconds,
                TARGET_SECONDS,
            )
        ],
        notes=[
            f"split of the median run ({wall:.2f} s): "
            + ", ".join(f"{part} {s:.2f} s ({s / wall:.0%})" for part, s in split.items()),
            f"{OUTSIDE_STEPS}: request parsing, partition and request, Dagster run setup and"
            " teardown, event-log writes between steps, and the record sync.",
            f"untimed warm-up: one {WARMUP_SESSIONS[scale]}-session benchmark; then {repetitions}"
            f" timed run(s) (--repeat capped at {REPEAT_CAP[scale]} at this scale), each a new request.",
            "items/s are sessions per second (each session replayed through every pipeline).",
        ],
    )
