"""`eval-pipelines benchmark create|rerun|get|list`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from eval_pipelines.cli.output import format_table, print_json, progress
from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.benchmarks.submit import accept_request, benchmark_store, new_benchmark_id
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths, validate_id
from eval_pipelines.core.records import FINAL_STATUSES

STATUSES = ("pending", "building_sessions", "replaying", "computing_metrics", "completed", "failed")


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("benchmark", help="create, inspect and list benchmarks")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    create = verbs.add_parser(
        "create",
        help="validate and submit a benchmark request; print the record",
        description="Submit a request shaped like ../shared/schemas/create_benchmark.request.json, from "
        "a file (- for stdin) or flags (flags override the file). Without --wait the record is pending "
        "and the daemon's request sensor runs it; with --wait it runs here and prints the final record.",
    )
    create.add_argument("request", nargs="?", type=Path, metavar="REQUEST.json")
    create.add_argument("--name", dest="benchmark_name", help="benchmark_name")
    create.add_argument("--baseline", dest="baseline_retriever_id", help="baseline_retriever_id")
    create.add_argument(
        "--candidate",
        dest="candidate_retriever_ids",
        action="append",
        help="candidate id (repeatable)",
    )
    create.add_argument(
        "--sessions", dest="session_count", type=int, help="session_count (10..10000)"
    )
    create.add_argument(
        "--strategy",
        choices=["random", "recent", "stratified"],
        help="session_filter.sample_strategy",
    )
    create.add_argument("--seed", type=int, help="sampling seed (recorded; default 0)")
    create.add_argument(
        "--wait", action="store_true", help="run in this process and print the final record"
    )
    create.set_defaults(handler=run_create)

    rerun = verbs.add_parser(
        "rerun",
        help="run an unfinished benchmark again here, resuming its replay; print the final record",
        description="Run BENCHMARK_ID again in this process with the request it was created with "
        "(after its run was killed, crashed or failed), and print the final record. Replay chunks "
        "an earlier run finished are loaded, not replayed, so the record equals an uninterrupted "
        "run's (EVAL_PIPELINES_REPLAY_CHUNK_SIZE sets sessions per chunk, default 1000). Refused "
        "(exit 2) while the benchmark is still running, and once it has completed.",
    )
    rerun.add_argument("benchmark_id", metavar="BENCHMARK_ID")
    rerun.set_defaults(handler=run_rerun)

    get = verbs.add_parser("get", help="print a benchmark record (BenchmarkResponse JSON)")
    get.add_argument("benchmark_id", metavar="BENCHMARK_ID")
    get.set_defaults(handler=run_get)

    listing = verbs.add_parser("list", help="list benchmarks")
    listing.add_argument(
        "--retriever-id", help="only benchmarks where this retriever is baseline or candidate"
    )
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--json", action="store_true", help="print the records as JSON")
    listing.set_defaults(handler=run_list)


def request_from_args(args: argparse.Namespace) -> dict[str, Any]:
    data: Any = {}
    if args.request is not None:
        try:
            text = (
                sys.stdin.read()
                if str(args.request) == "-"
                else args.request.read_text(encoding="utf-8")
            )
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"REQUEST: cannot read {args.request} ({exc})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(
                f"REQUEST: {args.request}:{exc.lineno}: not valid JSON ({exc.msg})"
            ) from None
        if not isinstance(data, dict):
            raise InvalidInputError(f"REQUEST: {args.request}: expected a JSON object")
    for key in (
        "benchmark_name",
        "baseline_retriever_id",
        "candidate_retriever_ids",
        "session_count",
        "seed",
    ):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    if args.strategy:
        data.setdefault("session_filter", {})
        data["session_filter"] = {
            **(data["session_filter"] or {}),
            "sample_strategy": args.strategy,
        }
    return data


def run_create(args: argparse.Namespace, paths: DataPaths) -> int:
    request = parse_request(request_from_args(args), paths)
    if not args.wait:
        print_json(accept_request(paths, request))
        return 0
    from eval_pipelines.cli.run_in_process import run_benchmark_here

    benchmark_id = new_benchmark_id()
    record = run_benchmark_here(paths, request, benchmark_id, progress)
    print_json(record)
    return 0 if record["status"] == "completed" else 1


def run_rerun(args: argparse.Namespace, paths: DataPaths) -> int:
    from eval_pipelines.cli.run_in_process import rerun_benchmark_here

    benchmark_id = validate_id(args.benchmark_id, "benchmark_id")
    record = rerun_benchmark_here(paths, benchmark_id, progress)
    print_json(record)
    return 0 if record["status"] == "completed" else 1


def run_get(args: argparse.Namespace, paths: DataPaths) -> int:
    benchmark_id = validate_id(args.benchmark_id, "benchmark_id")
    record = benchmark_store(paths).get(benchmark_id)
    if record is None:
        raise InvalidInputError(f"benchmark_id: no benchmark {benchmark_id!r}")
    if record["status"] not in FINAL_STATUSES:
        from eval_pipelines.cli.run_in_process import refresh_record
        from eval_pipelines.sensors.benchmarks import benchmark_lifecycle

        record = refresh_record(paths, benchmark_lifecycle, benchmark_id) or record
    print_json(record)
    return 0


def run_list(args: argparse.Namespace, paths: DataPaths) -> int:
    records = [
        r
        for r in benchmark_store(paths).records()
        if (args.status is None or r["status"] == args.status)
        and (
            args.retriever_id is None
            or args.retriever_id in [r["baseline_retriever_id"], *r["candidate_retriever_ids"]]
        )
    ]
    if args.json:
        print_json(records)
        return 0
    if not records:
        print("no benchmarks")
        return 0
    print(
        format_table(
            ["benchmark_id", "status", "name", "baseline", "candidates", "sessions", "created_at"],
            [
                [
                    r["benchmark_id"],
                    r["status"],
                    r["benchmark_name"],
                    r["baseline_retriever_id"],
                    ",".join(r["candidate_retriever_ids"]),
                    r["session_count"],
                    r["created_at"],
                ]
                for r in records
            ],
        )
    )
    return 0
