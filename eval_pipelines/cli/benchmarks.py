"""`eval-pipelines benchmark create|plan|rerun|get|list|export`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from eval_pipelines.cli.output import (
    EXIT_NO_VERDICT,
    EXIT_OK,
    finish_record,
    format_table,
    local_file,
    print_json,
    progress,
    wants_json,
)
from eval_pipelines.core.benchmarks.estimators import DEFAULT_MIN_COVERAGE, ESTIMATORS
from eval_pipelines.core.benchmarks.record import has_verdict
from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.benchmarks.submit import (
    BENCHMARK_RECORDS,
    benchmark_store,
    new_benchmark_id,
)
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.json_input import JsonProblem, decode_json
from eval_pipelines.core.paths import DataPaths, validate_id
from eval_pipelines.core.reports.summary import benchmark_summary

STATUSES = [status.value for status in BENCHMARK_RECORDS.statuses]


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("benchmark", help="create, inspect and list benchmarks")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    create = verbs.add_parser(
        "create",
        help="validate and submit a benchmark request; print the record",
        description="Submit a create-benchmark request (`eval-pipelines benchmark schema` prints its JSON "
        "Schema; README 'Benchmarks' has an example) "
        "from a file (- for stdin) or flags (flags override the file). Without --wait the record is "
        "pending and the daemon's request sensor runs it. With --wait it runs here and prints the final "
        "record, its warnings on stderr; exit 1 if it failed, 3 if it completed without a verdict for "
        "every candidate.",
    )
    create.add_argument("request", nargs="?", type=local_file, metavar="REQUEST.json")
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
    add_filter_arguments(create)
    create.add_argument("--seed", type=int, help="sampling seed (recorded; default 0)")
    create.add_argument(
        "--estimator",
        choices=ESTIMATORS,
        help="how sessions are scored: counterfactual (corrected for position bias), logged_order, or"
        " auto (default: counterfactual when the logs support it; the reason is recorded when not)",
    )
    create.add_argument(
        "--min-coverage",
        dest="min_coverage",
        type=float,
        help="share of a candidate's top 10 the logs must have shown for its queries to be tested"
        f" (default {DEFAULT_MIN_COVERAGE:g})",
    )
    create.add_argument(
        "--wait", action="store_true", help="run in this process and print the final record"
    )
    create.add_argument(
        "--json",
        action="store_true",
        help="print the final record as JSON (the default when stdout is not a terminal)",
    )
    create.set_defaults(handler=run_create)

    plan = verbs.add_parser(
        "plan",
        help="how many sessions a benchmark needs to detect a delta, from a pilot replay",
        description="Plan a benchmark before running it: for each target NDCG@10 delta, the "
        "sessions a benchmark needs to detect it (power, alpha, the Holm family of the request's "
        "candidates, the design effect of repeated queries), and the minimum detectable effect at "
        "common sizes. The filter comes from the request file (- for stdin) and flags, exactly as "
        "for create. The spread comes from a pilot: --pilot-sessions sessions sampled with the "
        "filter and seed, replayed here through the baseline and each candidate; nothing is "
        "stored. Or assume it with --sd and --icc (no replay; candidates then only set the Holm "
        "family). Exit 3 when some candidate's pilot leaves nothing to plan with.",
    )
    plan.add_argument("request", nargs="?", type=local_file, metavar="REQUEST.json")
    plan.add_argument(
        "--name", dest="benchmark_name", metavar="NAME", help="benchmark_name (not needed)"
    )
    plan.add_argument(
        "--baseline", dest="baseline_retriever_id", metavar="ID", help="baseline_retriever_id"
    )
    plan.add_argument(
        "--candidate",
        dest="candidate_retriever_ids",
        metavar="ID",
        action="append",
        help="candidate id (repeatable; each is piloted, and they form the Holm family)",
    )
    add_filter_arguments(plan)
    plan.add_argument(
        "--seed", type=int, metavar="N", help="sampling seed of the pilot (default 0)"
    )
    plan.add_argument(
        "--delta",
        dest="deltas",
        metavar="X",
        type=float,
        action="append",
        help="target NDCG@10 delta (repeatable; default 0.01, 0.02, 0.05 and the pilot's own)",
    )
    plan.add_argument("--pilot-sessions", type=int, help="sessions the pilot replays (default 200)")
    plan.add_argument("--sd", type=float, help="assumed sd of per-session differences")
    plan.add_argument("--icc", type=float, help="assumed intra-query correlation (0..1)")
    plan.add_argument("--power", type=float, help="power to plan for (default 0.8)")
    plan.add_argument("--alpha", type=float, help="two-sided alpha (default 0.05)")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(handler=run_plan, session_count=None)

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
    rerun.add_argument(
        "--json",
        action="store_true",
        help="print the final record as JSON (the default when stdout is not a terminal)",
    )
    rerun.set_defaults(handler=run_rerun)

    schema = verbs.add_parser(
        "schema",
        help="print the JSON Schema of a create-benchmark request (generated from its model)",
    )
    schema.set_defaults(handler=run_schema)

    get = verbs.add_parser(
        "get",
        help="a benchmark's verdict table on a terminal; its BenchmarkResponse JSON with --json or"
        " when stdout is not a terminal",
    )
    get.add_argument("benchmark_id", metavar="BENCHMARK_ID")
    get.add_argument("--json", action="store_true", help="print the record as JSON")
    get.set_defaults(handler=run_get)

    export = verbs.add_parser(
        "export",
        help="write a completed benchmark's per-session scores (session x retriever) as CSV",
    )
    export.add_argument("benchmark_id", metavar="BENCHMARK_ID")
    export.add_argument("--format", choices=["csv"], default="csv")
    export.add_argument("--output", "-o", type=local_file, help="file to write (default: stdout)")
    export.set_defaults(handler=run_export)

    history = verbs.add_parser(
        "history",
        help="a candidate's completed benchmarks against a baseline, oldest first",
        description="Every completed benchmark with baseline ID and candidate ID, oldest first by"
        " completion: the tested NDCG@10 delta, its 95% CI, Holm-adjusted p, verdict, estimator,"
        " paired sessions, and where either pipeline hash changed since the benchmark before. A"
        " table on a terminal; a JSON list with --json or when stdout is not a terminal. Records"
        " left out (unreadable, not completed, incomplete) are counted on stderr with the reason."
        " Exit 2 when no completed benchmark compares the two.",
    )
    history.add_argument("--baseline", required=True, metavar="ID", help="the baseline retriever")
    history.add_argument("--candidate", required=True, metavar="ID", help="the candidate retriever")
    history.add_argument(
        "--plot", type=local_file, metavar="FILE.svg", help="also write the history as an SVG plot"
    )
    history.add_argument("--json", action="store_true", help="print the points as JSON")
    history.set_defaults(handler=run_history)

    listing = verbs.add_parser("list", help="list benchmarks")
    listing.add_argument(
        "--retriever-id", help="only benchmarks where this retriever is baseline or candidate"
    )
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--json", action="store_true", help="print the records as JSON")
    listing.set_defaults(handler=run_list)


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per session_filter field, for create and plan alike (flags override the file)."""
    parser.add_argument(
        "--strategy",
        choices=["random", "recent", "stratified"],
        help="session_filter.sample_strategy",
    )
    parser.add_argument(
        "--retriever-filter",
        dest="filter_retriever_ids",
        metavar="ID",
        action="append",
        help="only sessions logged by this retriever or application (repeatable;"
        " session_filter.retriever_ids)",
    )
    parser.add_argument(
        "--taxonomy-node",
        dest="filter_taxonomy_node_ids",
        metavar="ID",
        action="append",
        help="only sessions under this taxonomy node (repeatable; session_filter.taxonomy_node_ids)",
    )
    parser.add_argument(
        "--since", metavar="TIME", help="sessions from this ISO 8601 time (time_range.start)"
    )
    parser.add_argument(
        "--until", metavar="TIME", help="sessions up to this ISO 8601 time (time_range.end)"
    )
    parser.add_argument(
        "--interaction-type",
        dest="filter_interaction_types",
        metavar="TYPE",
        action="append",
        help="the interaction types that count (repeatable; session_filter.interaction_types)",
    )
    parser.add_argument(
        "--min-interactions",
        dest="filter_min_interactions",
        metavar="N",
        type=int,
        help="sessions with at least N counted interactions (session_filter.min_interactions)",
    )


def _filter_from_args(args: argparse.Namespace, given: Any) -> Any:
    """The request's session_filter with the flags' fields laid over it."""
    flags = {
        "sample_strategy": args.strategy,
        "retriever_ids": args.filter_retriever_ids,
        "taxonomy_node_ids": args.filter_taxonomy_node_ids,
        "interaction_types": args.filter_interaction_types,
        "min_interactions": args.filter_min_interactions,
    }
    flags = {key: value for key, value in flags.items() if value is not None}
    nothing_given = args.since is None and args.until is None and not flags
    if nothing_given or (given is not None and not isinstance(given, dict)):
        return given  # nothing to lay over it, or a value the request's checks will name
    merged = {**(given or {}), **flags}
    if args.since is not None or args.until is not None:
        time_range = merged.get("time_range")
        time_range = dict(time_range) if isinstance(time_range, dict) else {}
        for key, value in (("start", args.since), ("end", args.until)):
            if value is not None:
                time_range[key] = value
        merged["time_range"] = time_range
    return merged


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
            data = decode_json(text)
        except JsonProblem as exc:
            line = f":{exc.line}" if exc.line else ""
            raise InvalidInputError(f"REQUEST: {args.request}{line}: {exc.problem}") from None
        if not isinstance(data, dict):
            raise InvalidInputError(f"REQUEST: {args.request}: expected a JSON object")
    for key in (
        "benchmark_name",
        "baseline_retriever_id",
        "candidate_retriever_ids",
        "session_count",
        "seed",
        "estimator",
        "min_coverage",
    ):
        if getattr(args, key, None) is not None:
            data[key] = getattr(args, key)
    session_filter = _filter_from_args(args, data.get("session_filter"))
    if session_filter is not None:
        data["session_filter"] = session_filter
    return data


def run_create(args: argparse.Namespace, paths: DataPaths) -> int:
    request = parse_request(request_from_args(args), paths)
    benchmark_id = new_benchmark_id()
    if not args.wait:
        from eval_pipelines.cli.run_in_process import accept_here
        from eval_pipelines.kinds import BENCHMARKS

        print_json(accept_here(paths, BENCHMARKS, request, benchmark_id))
        return 0
    from eval_pipelines.cli.run_in_process import run_benchmark_here

    record = run_benchmark_here(paths, request, benchmark_id, progress)
    return finish_record(record, has_verdict, args, benchmark_summary)


def run_plan(args: argparse.Namespace, paths: DataPaths) -> int:
    from eval_pipelines.cli.plan import format_plan, plan_settings
    from eval_pipelines.core.benchmarks.plan_settings import parse_plan_request
    from eval_pipelines.core.benchmarks.planning import plan_benchmark

    settings = plan_settings(args)
    request = parse_plan_request(request_from_args(args), paths, settings)
    plan = plan_benchmark(paths, request, settings, progress)
    if args.json:
        print_json(plan)
    else:
        print(format_plan(plan))
    for warning in plan["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_NO_VERDICT if any(p["problem"] for p in plan["plans"]) else EXIT_OK


def run_rerun(args: argparse.Namespace, paths: DataPaths) -> int:
    from eval_pipelines.cli.run_in_process import rerun_benchmark_here

    benchmark_id = validate_id(args.benchmark_id, "benchmark_id")
    record = rerun_benchmark_here(paths, benchmark_id, progress)
    return finish_record(record, has_verdict, args, benchmark_summary)


def run_get(args: argparse.Namespace, paths: DataPaths) -> int:
    benchmark_id = validate_id(args.benchmark_id, "benchmark_id")
    if benchmark_store(paths).get(benchmark_id) is None:
        raise InvalidInputError(f"benchmark_id: no benchmark {benchmark_id!r}")
    from eval_pipelines.cli.run_in_process import refresh_record
    from eval_pipelines.kinds import BENCHMARKS

    record = refresh_record(paths, BENCHMARKS, benchmark_id)
    if wants_json(args):
        print_json(record)
    else:
        print(benchmark_summary(record))
    return 0


def run_export(args: argparse.Namespace, paths: DataPaths) -> int:
    from eval_pipelines.core.reports.score_export import score_table, write_scores_csv

    benchmark_id = validate_id(args.benchmark_id, "benchmark_id")
    store = benchmark_store(paths)
    record = store.get(benchmark_id)
    if record is None:
        raise InvalidInputError(f"benchmark_id: no benchmark {benchmark_id!r}")
    table = score_table(store, "benchmark", record)
    if args.output is None:
        sys.stdout.flush()
        write_scores_csv(table, sys.stdout.buffer)
        return EXIT_OK
    rows = write_scores_csv(table, args.output)
    print(f"wrote {rows} session scores to {args.output}", file=sys.stderr)
    return EXIT_OK


# What the listing reads from each record (BenchmarkResponse's required fields).
LISTED_FIELDS = {
    "benchmark_id": str,
    "benchmark_name": str,
    "baseline_retriever_id": str,
    "candidate_retriever_ids": list[str],
    "session_count": int,
    "status": str,
    "created_at": str,
}


def run_list(args: argparse.Namespace, paths: DataPaths) -> int:
    """Every readable benchmark; each entry that is not is reported on stderr and the rest listed
    (exit 0: the listing is complete for what can be read, and the report names the rest)."""
    from eval_pipelines.cli.run_in_process import refresh_records
    from eval_pipelines.kinds import BENCHMARKS

    listing = benchmark_store(paths).listing(LISTED_FIELDS)
    records = [
        r
        for r in refresh_records(paths, BENCHMARKS, listing.records)
        if (args.status is None or r["status"] == args.status)
        and (
            args.retriever_id is None
            or args.retriever_id in [r["baseline_retriever_id"], *r["candidate_retriever_ids"]]
        )
    ]
    if args.json:
        print_json(records)
    elif not records:
        print("no benchmarks")
    else:
        print(
            format_table(
                [
                    "benchmark_id",
                    "name",
                    "status",
                    "baseline",
                    "candidates",
                    "sessions",
                    "created_at",
                ],
                [
                    [
                        r["benchmark_id"],
                        r["benchmark_name"],
                        r["status"],
                        r["baseline_retriever_id"],
                        ",".join(r["candidate_retriever_ids"]),
                        r["session_count"],
                        r["created_at"],
                    ]
                    for r in records
                ],
            )
        )
    for problem in listing.problems:
        print(problem, file=sys.stderr)
    return 0


def run_history(args: argparse.Namespace, paths: DataPaths) -> int:
    """The table or JSON on stdout; skipped records and the plot's path on stderr. The plot is
    written before anything is printed, so a refused or failed write leaves no partial output."""
    from eval_pipelines.core.reports import history as reports
    from eval_pipelines.core.storage import write_text_atomic

    baseline_id = validate_id(args.baseline, "--baseline")
    candidate_id = validate_id(args.candidate, "--candidate")
    if args.plot is not None and args.plot.suffix.lower() != ".svg":
        raise InvalidInputError(f"--plot: {args.plot} must name an .svg file")
    found = reports.benchmark_history(paths, baseline_id, candidate_id)
    if found.skipped:
        print(
            f"skipped {len(found.skipped)} benchmark record(s), not in the history:",
            file=sys.stderr,
        )
        for reason in found.skipped:
            print(f"  {reason}", file=sys.stderr)
    if not found.points:
        raise InvalidInputError(reports.no_history_message(found))
    if args.plot is not None:
        svg = reports.history_svg(found.points, baseline_id, candidate_id)
        try:
            write_text_atomic(svg, args.plot)
        except OSError as exc:
            raise InvalidInputError(f"--plot: cannot write {args.plot} ({exc.strerror})") from None
        print(f"wrote the history plot to {args.plot}", file=sys.stderr)
    if wants_json(args):
        print_json(reports.history_json(found.points))
    else:
        print(reports.history_table(found.points))
    return EXIT_OK


def run_schema(args: argparse.Namespace, paths: DataPaths) -> int:
    from eval_pipelines.core.benchmarks.request import BenchmarkRequest

    print_json(BenchmarkRequest.model_json_schema())
    return 0
