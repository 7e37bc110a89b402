"""What a data root on S3 costs: four CLI verbs on the same world, on a local root and on an S3 root.

Each verb runs as the real console script (`eval-pipelines`) in a subprocess, as a user runs it, so
every time includes the process's start and imports. The S3 root is a bucket on moto's server,
started on loopback for the benchmark and stopped after; the world is the demo world built once
locally, then copied object by object to the bucket (the tests' own server and `upload_world`: no
`dagster_home`, no `.duckdb`). Verbs, local and S3 alternating, one warm-up round first (it builds
the BM25 indexes and fills the S3 root's local cache, as on a machine that has run before):

- `benchmark create REQUEST --wait --json`: demo_prod vs demo_better over N of demo_prod's sessions;
- `evaluation run demo_better --dataset demo-judgments --wait --json`;
- `benchmark list --json` with LIST_RECORDS records present (topped up with pending requests);
- `ingest executions FILE --json` of a generated JSON Lines file, each time into a new, empty root.

Checks: every call exits 0; benchmarks complete over N sessions with demo_better ahead on NDCG@10 and
the same NDCG@10 on both roots; evaluations complete with the same metrics on both roots; both lists
hold the same number of records; every ingest reads and stores every line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.benchmarks.submit import accept_request, benchmark_store
from eval_pipelines.core.demo import DemoScale, build_demo_world
from eval_pipelines.core.demo.retrievers import BETTER, PROD
from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.services import s3_server, upload_world
from perf.harness import BenchmarkResult, ContenderResult, CorrectnessError

NAME = "s3_root"
SESSIONS: dict[str, int] = {"tiny": 60, "small": 300, "full": 2_000}
DEMO_SCALES: dict[str, DemoScale] = {
    "tiny": DemoScale.small(),
    "small": DemoScale.small(),
    "full": DemoScale(),
}
INGEST_LINES: dict[str, int] = {"tiny": 5_000, "small": 100_000, "full": 100_000}
REPEAT_CAP: dict[str, int] = {"tiny": 2, "small": 3, "full": 3}
LIST_RECORDS = 20
DATASET = "demo-judgments"
CLI = Path(sys.executable).parent / "eval-pipelines"
CALL_TIMEOUT_S = 900
BUCKET = "perf-s3-root"
WATCH_INTERVAL_S = 0.05
_VM_HWM = re.compile(rb"^VmHWM:\s+(\d+) kB", re.MULTILINE)
ROOTS: tuple[str, ...] = ("local", "s3")
OPERATIONS: tuple[str, ...] = (
    "benchmark create --wait",
    "evaluation run --wait",
    "benchmark list",
    "ingest executions",
)


@dataclass(frozen=True)
class Call:
    """One finished console-script call: its output, wall seconds and the child's peak RSS."""

    stdout: str
    stderr: str
    seconds: float
    peak_rss_bytes: int


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """These variables set in this process (s3fs reads them) and restored after."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _watch_peak_rss(pid: int, stop: threading.Event, peak: list[int]) -> None:
    """The process's VmHWM, read every WATCH_INTERVAL_S until it exits (wait4's ru_maxrss would
    report this process's own size: a child's high-water mark survives exec)."""
    status = Path(f"/proc/{pid}/status")
    while not stop.is_set():
        try:
            found = _VM_HWM.search(status.read_bytes())
        except OSError:
            return
        if found:
            peak[0] = max(peak[0], int(found.group(1)) * 1024)
        stop.wait(WATCH_INTERVAL_S)


def run_cli(root: str, env: dict[str, str], scratch: Path, *args: str) -> Call:
    """The console script on `root`, timed from start to exit (exit 0 required), and its peak RSS."""
    full = {**os.environ, **env, "EVAL_PIPELINES_DATA": root}
    full.pop("DAGSTER_HOME", None)
    out, err = scratch / "call.stdout", scratch / "call.stderr"
    peak, stop = [0], threading.Event()
    with out.open("w") as stdout, err.open("w") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen([str(CLI), *args], env=full, stdout=stdout, stderr=stderr)
        watcher = threading.Thread(target=_watch_peak_rss, args=(process.pid, stop, peak))
        watcher.start()
        try:
            code = process.wait(timeout=CALL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        finally:
            seconds = time.perf_counter() - started
            stop.set()
            watcher.join()
    if code != 0:
        raise CorrectnessError(
            f"{' '.join(args)} on {root}: exit {code}: {err.read_text()[-3000:]}"
        )
    return Call(out.read_text(), err.read_text(), seconds, peak[0])


def request_document(sessions: int, name: str = "s3 root benchmark") -> dict[str, Any]:
    return {
        "benchmark_name": name,
        "baseline_retriever_id": PROD,
        "candidate_retriever_ids": [BETTER],
        "session_count": sessions,
        "session_filter": {"retriever_ids": [PROD]},
        "seed": 17,
    }


def write_executions(path: Path, lines: int) -> None:
    """JSON Lines of logged searches: 3 per session, 24 documents each, a month of created_at."""
    start = 1_767_225_600  # 2026-01-01T00:00:00Z
    step = 30 * 86_400 // lines or 1
    with path.open("w") as handle:
        for n in range(lines):
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + n * step))
            row = {
                "execution_id": f"exec-{n:012d}",
                "retriever_id": "prod",
                "session_id": f"sess-{n // 3:012d}",
                "user_id": f"user-{n // 7:09d}",
                "query_input": {"text": f"query {n * 7919 % 50_000}"},
                "documents": [f"doc-{(n * 31 + k * 977) % 2_000_000:08d}" for k in range(24)],
                "taxonomy_node_ids": [f"node-{n % 40}"],
                "created_at": created,
            }
            handle.write(json.dumps(row) + "\n")


def check_benchmark(stdout: str, sessions: int) -> dict[str, float]:
    """A completed record over `sessions` sessions with demo_better ahead; NDCG@10 per pipeline."""
    record = json.loads(stdout)
    if record["status"] != "completed":
        raise CorrectnessError(f"{record['benchmark_id']}: {record['status']}")
    if record["session_count"] != sessions:
        raise CorrectnessError(f"{record['benchmark_id']}: {record['session_count']} sessions")
    ndcg = {r["retriever_id"]: r["metrics"]["ndcg_at_k"]["10"] for r in record["results"]}
    if not ndcg[BETTER] > ndcg[PROD]:
        raise CorrectnessError(f"{record['benchmark_id']}: {BETTER} not ahead: {ndcg}")
    return ndcg


def check_evaluation(stdout: str) -> dict[str, Any]:
    record = json.loads(stdout)
    if record["status"] != "completed":
        raise CorrectnessError(f"{record['evaluation_id']}: {record['status']}")
    return record["metrics_by_k"]


def check_ingest(stdout: str, lines: int) -> int:
    report = json.loads(stdout)
    if report["rows_read"] != lines or report["ingested"] != lines:
        raise CorrectnessError(
            f"ingest read {report['rows_read']}, stored {report['ingested']} of {lines}"
        )
    return report["ingested"]


def top_up(paths: DataPaths, count: int) -> int:
    """Pending requests (as `benchmark create` without --wait stores them) until `count` exist."""
    present = len(benchmark_store(paths).ids())
    for n in range(present, count):
        accept_request(paths, parse_request(request_document(10, f"listed {n}"), paths))
    return max(count - present, 0)


CHILD_RSS = f"peak RSS of the CLI process itself (its VmHWM, read every {WATCH_INTERVAL_S} s)"
Steps = dict[str, Callable[[], Call]]


def alternate(
    operation: str, steps: Steps, check: Callable[[str], Any], repetitions: int, items: int | None
) -> tuple[list[ContenderResult], dict[str, list[Any]]]:
    """One warm-up round, then `repetitions` timed rounds, local and S3 alternating; every call's
    output checked, the checked values kept per root."""
    results = {
        root: ContenderResult(f"{operation}, {root}", [], 0, CHILD_RSS, items) for root in steps
    }
    checked: dict[str, list[Any]] = {root: [] for root in steps}
    for round_number in range(1 + repetitions):
        for root, step in steps.items():
            call = step()
            checked[root].append(check(call.stdout))
            result = results[root]
            if round_number == 0:
                result.warmup_seconds.append(call.seconds)
                continue
            result.seconds.append(call.seconds)
            result.peak_rss_bytes = max(result.peak_rss_bytes, call.peak_rss_bytes)
    return list(results.values()), checked


def same_on_both(name: str, checked: dict[str, list[Any]]) -> Any:
    """The one value every call on both roots gave, or a CorrectnessError naming the difference."""
    first = checked["local"][0]
    for root, values in checked.items():
        for index, value in enumerate(values):
            if value != first:
                raise CorrectnessError(
                    f"{name}: {root} call {index} gave {value}, local gave {first}"
                )
    return first


@dataclass
class Roots:
    """The two roots of the same world, each with the environment its subprocesses get."""

    workdir: Path
    local: DataPaths
    remote: DataPaths
    s3_env: dict[str, str]

    def env(self, root: str) -> dict[str, str]:
        return self.s3_env if root == "s3" else {}

    def step(self, root: str, *args: str) -> Callable[[], Call]:
        target = str((self.local if root == "local" else self.remote).root)
        return lambda: run_cli(target, self.env(root), self.workdir, *args)

    def ingest_steps(self, file: Path) -> Steps:
        """Each call ingests into a new, empty root (local folder or bucket prefix)."""
        numbers = iter(range(1_000_000))

        def step(root: str) -> Callable[[], Call]:
            def call() -> Call:
                n = next(numbers)
                local, remote = self.workdir / f"ingest-{n}", f"s3://{BUCKET}/ingest-{n}"
                target = str(local) if root == "local" else remote
                args = ("ingest", "executions", str(file), "--json")
                return run_cli(target, self.env(root), self.workdir, *args)

            return call

        return {root: step(root) for root in ROOTS}


def measure(
    roots: Roots, sessions: int, lines: int, repetitions: int
) -> tuple[list[ContenderResult], dict[str, Any]]:
    """The four verbs, one after another, each alternating local and S3; their checks."""
    request_file, executions_file = (
        roots.workdir / "request.json",
        roots.workdir / "executions.jsonl",
    )
    request_file.write_text(json.dumps(request_document(sessions)))
    write_executions(executions_file, lines)
    create = ("benchmark", "create", str(request_file), "--wait", "--json")
    evaluate = ("evaluation", "run", BETTER, "--dataset", DATASET, "--wait", "--json")
    contenders: list[ContenderResult] = []
    checks: dict[str, Any] = {}

    def verb(operation: str, steps: Steps, check: Callable[[str], Any], items: int | None) -> Any:
        measured, checked = alternate(operation, steps, check, repetitions, items)
        contenders.extend(measured)
        return same_on_both(operation, checked)

    checks["benchmark_ndcg_at_10"] = verb(
        OPERATIONS[0],
        {r: roots.step(r, *create) for r in ROOTS},
        lambda out: check_benchmark(out, sessions),
        sessions,
    )
    evaluated = verb(
        OPERATIONS[1], {r: roots.step(r, *evaluate) for r in ROOTS}, check_evaluation, None
    )
    checks["evaluation_ndcg_at_10"] = evaluated["10"]["ndcg"]
    checks["pending_records_added_for_list"] = {
        "local": top_up(roots.local, LIST_RECORDS),
        "s3": top_up(roots.remote, LIST_RECORDS),
    }
    checks["records_listed"] = verb(
        OPERATIONS[2],
        {r: roots.step(r, "benchmark", "list", "--json") for r in ROOTS},
        lambda out: len(json.loads(out)),
        None,
    )
    if checks["records_listed"] != LIST_RECORDS:
        raise CorrectnessError(
            f"benchmark list: {checks['records_listed']} records, expected {LIST_RECORDS}"
        )
    checks["ingested_each_time"] = verb(
        OPERATIONS[3],
        roots.ingest_steps(executions_file),
        lambda out: check_ingest(out, lines),
        lines,
    )
    return contenders, checks


NOTES: tuple[str, ...] = (
    "no target: this measures what an S3 root costs. moto is a single-process Python server on"
    " this machine, sharing its 2 cores with the CLI, so the absolute S3 times are upper bounds of"
    " what a real S3 endpoint in the same region gives; the S3/local ratio is the number to read.",
    "every time is one `eval-pipelines` process from start to exit (imports included), as a user"
    " pays it; peak RSS is that process's own.",
    "one untimed warm-up round first: it builds the BM25 indexes and fills the S3 root's local"
    " cache (log parts, DAGSTER_HOME), as on a machine that has run before.",
    f"benchmark list runs with {LIST_RECORDS} records: the benchmarks created above plus pending"
    " requests stored as `benchmark create` without --wait stores them.",
    "each ingest goes into a new, empty root, so every repetition does the same work.",
    "ratios: within each verb, peer's median / contender's median (local's ratio to S3 is the"
    " S3 slowdown); parameters.s3_seconds_over_local holds the same per verb.",
)


def run(scale: str, repeat: int, workdir: Path, seed: int = 17) -> BenchmarkResult:
    try:
        import moto.server  # noqa: F401
    except ImportError:
        return BenchmarkResult(
            NAME, {}, [], {}, unavailable={"s3": "moto[server] is not installed (the test extra)"}
        )
    repetitions = min(repeat, REPEAT_CAP[scale])
    sessions, lines = SESSIONS[scale], INGEST_LINES[scale]
    load_before = os.getloadavg()
    world = DataPaths(workdir / "world")
    build_demo_world(world, seed, DEMO_SCALES[scale])
    local = DataPaths(workdir / "local")
    shutil.copytree(world.root, local.root)
    with s3_server() as s3:
        s3_env = {**s3.env, "EVAL_PIPELINES_CACHE": str(workdir / "cache")}
        with environment(s3_env):
            bucket = s3.create_bucket(BUCKET)
            started = time.perf_counter()
            remote = upload_world(world, f"{bucket}/world")
            upload_seconds = time.perf_counter() - started
            contenders, checks = measure(
                Roots(workdir, local, remote, s3_env), sessions, lines, repetitions
            )
    by_name = {c.name: c for c in contenders}
    slowdown = {
        op: by_name[f"{op}, s3"].median_seconds / by_name[f"{op}, local"].median_seconds
        for op in OPERATIONS
    }
    return BenchmarkResult(
        name=NAME,
        parameters={
            "benchmark_sessions": sessions,
            "benchmark_pipelines": [PROD, BETTER],
            "evaluation": f"{BETTER} on {DATASET}",
            "list_records": LIST_RECORDS,
            "ingest_lines": lines,
            "demo_executions": DEMO_SCALES[scale].executions,
            "demo_products": DEMO_SCALES[scale].products,
            "repetitions": repetitions,
            "upload_seconds": round(upload_seconds, 2),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "s3_seconds_over_local": {op: round(r, 2) for op, r in slowdown.items()},
            "seed": seed,
        },
        contenders=contenders,
        checks=checks,
        notes=list(NOTES),
        peer_groups=[tuple(f"{op}, {root}" for root in ROOTS) for op in OPERATIONS],
    )
