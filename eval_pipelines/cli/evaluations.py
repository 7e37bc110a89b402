"""`eval-pipelines evaluation run|get|list|export` and `eval-pipelines trec-eval`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eval_pipelines.cli.output import (
    finish_record,
    format_table,
    local_file,
    print_json,
    progress,
    wants_json,
)
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.evaluations.pipeline import export_trec_run
from eval_pipelines.core.evaluations.record import has_verdict, start_response
from eval_pipelines.core.evaluations.request import AVAILABLE_METRICS, parse_evaluation_request
from eval_pipelines.core.evaluations.submit import (
    EVALUATION_RECORDS,
    evaluation_store,
    new_evaluation_id,
)
from eval_pipelines.core.paths import DataPaths, validate_id
from eval_pipelines.core.reports.summary import evaluation_name, evaluation_summary
from eval_pipelines.core.trec_eval import trec_eval

STATUSES = [status.value for status in EVALUATION_RECORDS.statuses]


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _name_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluation", help="run, inspect, list and export evaluations")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    run = verbs.add_parser(
        "run",
        help="evaluate a retriever on a dataset",
        description="Without --wait, accept the request and print its StartEvaluationResponse "
        "(task_id, evaluation_id, task_type, status, created_at); the daemon's request sensor runs it. "
        "With --wait, run it here and print the final EvaluationRecord, its warnings on stderr; exit 1 "
        "if it failed, 3 if it completed with no query evaluated.",
    )
    run.add_argument("retriever_id", metavar="RETRIEVER_ID")
    run.add_argument("--dataset", required=True, dest="dataset_name", metavar="NAME")
    run.add_argument(
        "--k",
        type=_int_list,
        dest="k_values",
        metavar="1,5,10,20",
        help="cutoffs (default 1,5,10,20)",
    )
    run.add_argument(
        "--metrics",
        type=_name_list,
        metavar="M,...",
        help=f"default precision,recall,f1,map,ndcg,mrr; available: {','.join(AVAILABLE_METRICS)}",
    )
    run.add_argument(
        "--judged-only",
        action="store_true",
        help="condensed lists (trec_eval -J): drop documents the dataset does not judge from each"
        " ranking before any measure (judged@k still reads the ranking as retrieved)",
    )
    run.add_argument(
        "--wait", action="store_true", help="run in this process and print the final record"
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print the final record as JSON (the default when stdout is not a terminal)",
    )
    run.set_defaults(handler=run_evaluation)

    schema = verbs.add_parser(
        "schema",
        help="print the JSON Schema of a run-evaluation request (generated from its model)",
    )
    schema.set_defaults(handler=run_schema)

    get = verbs.add_parser(
        "get",
        help="an evaluation's values at each k on a terminal; its EvaluationRecord JSON with --json"
        " or when stdout is not a terminal",
    )
    get.add_argument("evaluation_id", metavar="EVALUATION_ID")
    get.add_argument("--json", action="store_true", help="print the record as JSON")
    get.set_defaults(handler=run_get)

    listing = verbs.add_parser("list", help="list evaluations")
    listing.add_argument("--retriever-id")
    listing.add_argument("--dataset", dest="dataset_name")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_list)

    export = verbs.add_parser(
        "export",
        help="write the evaluation's ranked results as a TREC run file (trec-run), or its"
        " per-query scores as CSV (csv)",
    )
    export.add_argument("evaluation_id", metavar="EVALUATION_ID")
    export.add_argument("--format", choices=["trec-run", "csv"], default="trec-run")
    export.add_argument(
        "--output", "-o", type=local_file, help="a file on this machine to write (default: stdout)"
    )
    export.set_defaults(handler=run_export)

    trec = commands.add_parser(
        "trec-eval",
        help="trec_eval on TREC qrels and run files, printed as JSON",
        description="Measures as trec_eval names them (P_5, recall_10, map, map_cut_10, ndcg, ndcg_cut_10, "
        "recip_rank, set_P, set_recall, set_F) plus F1_k and F2_k; families (P, recall, map_cut, ndcg_cut, F1, F2) "
        "expand to trec_eval's cutoffs. Ties: score descending, then docno descending. Only queries in both files.",
    )
    trec.add_argument("qrels", type=local_file, metavar="QRELS")
    trec.add_argument("run", type=local_file, metavar="RUN")
    trec.add_argument(
        "-q", action="store_true", dest="per_query", help="also print per-query values"
    )
    trec.add_argument(
        "-m",
        action="append",
        dest="measures",
        metavar="MEASURE",
        help="measure or family (repeatable)",
    )
    trec.set_defaults(handler=run_trec_eval)


def run_evaluation(args: argparse.Namespace, paths: DataPaths) -> int:
    config = {}
    if args.k_values is not None:
        config["k_values"] = args.k_values
    if args.metrics is not None:
        config["metrics"] = args.metrics
    data = {"retriever_id": args.retriever_id, "dataset_name": args.dataset_name}
    if config:
        data["evaluation_config"] = config
    if args.judged_only:
        data["judged_only"] = True
    request = parse_evaluation_request(data, paths)
    evaluation_id = new_evaluation_id()
    if not args.wait:
        from eval_pipelines.cli.run_in_process import accept_here
        from eval_pipelines.kinds import EVALUATIONS

        print_json(start_response(accept_here(paths, EVALUATIONS, request, evaluation_id)))
        return 0
    from eval_pipelines.cli.run_in_process import run_evaluation_here

    record = run_evaluation_here(paths, request, evaluation_id, progress)
    return finish_record(record, has_verdict, args, evaluation_summary)


def _record(paths: DataPaths, evaluation_id: str) -> dict:
    evaluation_id = validate_id(evaluation_id, "evaluation_id")
    record = evaluation_store(paths).get(evaluation_id)
    if record is None:
        raise InvalidInputError(f"evaluation_id: no evaluation {evaluation_id!r}")
    return record


def run_get(args: argparse.Namespace, paths: DataPaths) -> int:
    record = _record(paths, args.evaluation_id)
    from eval_pipelines.cli.run_in_process import refresh_record
    from eval_pipelines.kinds import EVALUATIONS

    record = refresh_record(paths, EVALUATIONS, record["evaluation_id"])
    if wants_json(args):
        print_json(record)
    else:
        print(evaluation_summary(record))
    return 0


# What the listing reads from each record (EvaluationRecord's required fields among them).
LISTED_FIELDS = {
    "evaluation_id": str,
    "status": str,
    "retriever_id": str,
    "dataset_name": str,
    "created_at": str,
}


def _at_10(record: dict, metric: str) -> str:
    """metrics_by_k["10"][metric], or "-" while there is none (optional until completed, and
    records written before judged@k have no judged)."""
    by_k = record.get("metrics_by_k")
    at_10 = by_k.get("10") if isinstance(by_k, dict) else None
    value = at_10.get(metric) if isinstance(at_10, dict) else None
    return f"{value:.4f}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def run_list(args: argparse.Namespace, paths: DataPaths) -> int:
    """Every readable evaluation; each entry that is not is reported on stderr and the rest listed
    (exit 0, as `benchmark list`)."""
    from eval_pipelines.cli.run_in_process import refresh_records
    from eval_pipelines.kinds import EVALUATIONS

    listing = evaluation_store(paths).listing(LISTED_FIELDS)
    records = [
        r
        for r in refresh_records(paths, EVALUATIONS, listing.records)
        if (args.status is None or r["status"] == args.status)
        and (args.retriever_id is None or r["retriever_id"] == args.retriever_id)
        and (args.dataset_name is None or r["dataset_name"] == args.dataset_name)
    ]
    if args.json:
        print_json(records)  # the records as stored: scripts read the API's shape
    elif records:
        rows = [
            [
                r["evaluation_id"],
                evaluation_name(r),
                r["status"],
                r.get("evaluated_queries") if r.get("evaluated_queries") is not None else "-",
                _at_10(r, "ndcg"),
                _at_10(r, "judged"),
                r["created_at"],
            ]
            for r in records
        ]
        print(
            format_table(
                [
                    "evaluation_id",
                    "name",
                    "status",
                    "evaluated",
                    "ndcg@10",
                    "judged@10",
                    "created_at",
                ],
                rows,
            )
        )
    else:
        print("no evaluations")
    for problem in listing.problems:
        print(problem, file=sys.stderr)
    return 0


def run_export(args: argparse.Namespace, paths: DataPaths) -> int:
    record = _record(paths, args.evaluation_id)
    if args.format == "csv":
        return _export_csv(record, args.output, paths)
    if record["status"] != "completed":
        raise InvalidInputError(
            f"evaluation_id: {record['evaluation_id']} is {record['status']}, not completed"
        )
    runs = evaluation_store(paths).read_table(record["evaluation_id"], "runs")
    if args.output is None:
        sys.stdout.flush()
        export_trec_run(runs, sys.stdout.buffer, tag=record["retriever_id"])
        return 0
    count = export_trec_run(runs, args.output, tag=record["retriever_id"])
    print(f"wrote {count} queries to {args.output}", file=sys.stderr)
    return 0


def _export_csv(record: dict, output: Path | None, paths: DataPaths) -> int:
    from eval_pipelines.core.reports.score_export import score_table, write_scores_csv

    table = score_table(evaluation_store(paths), "evaluation", record)
    if output is None:
        sys.stdout.flush()
        write_scores_csv(table, sys.stdout.buffer)
        return 0
    rows = write_scores_csv(table, output)
    print(f"wrote {rows} per-query scores to {output}", file=sys.stderr)
    return 0


def run_trec_eval(args: argparse.Namespace, paths: DataPaths) -> int:
    missing = [str(f) for f in (args.qrels, args.run) if not f.is_file()]
    if missing:
        raise InvalidInputError(f"file not found: {', '.join(missing)}")
    print_json(trec_eval(args.qrels, args.run, measures=args.measures, per_query=args.per_query))
    return 0


def run_schema(args: argparse.Namespace, paths: DataPaths) -> int:
    from eval_pipelines.core.evaluations.request import EvaluationRequest

    print_json(EvaluationRequest.model_json_schema())
    return 0
