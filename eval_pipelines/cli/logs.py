"""`eval-pipelines ingest`: bring logs into the normalized tables, quarantining what breaks the contract."""

from __future__ import annotations

import argparse

from eval_pipelines.cli.output import local_file, print_json, progress, stderr_progress
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.logs.ingest import LogParseError, ingest_files
from eval_pipelines.core.logs.ubi import (
    DEFAULT_ORDINAL_BASE,
    ORDINAL_BASES,
    ReadOptions,
    UbiSessions,
    read_ubi_sessions,
)
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.collections import import_collection
from eval_pipelines.core.warehouse import refresh_views


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "ingest",
        help="ingest logged executions or interactions (JSONL, CSV, Parquet, UBI), or a collection",
        description="Read log files into the normalized Parquet tables. Rows that break the contract "
        "go to the quarantine table with their reason; a file that cannot be parsed fails the whole "
        "call (exit 2) and nothing is written. Ingest executions before their interactions. "
        "`ingest collection FILE... --name NAME` replaces the collection NAME (documents with a unique "
        "document_id) that pipeline retrievers search.",
    )
    parser.add_argument("table", choices=["executions", "interactions", "collection"])
    parser.add_argument("files", nargs="+", type=local_file, metavar="FILE")
    parser.add_argument(
        "--format",
        default="auto",
        choices=["auto", "jsonl", "csv", "parquet", "ubi"],
        help="input format (auto: by file extension; ubi: OpenSearch UBI ubi_queries / ubi_events JSONL)",
    )
    parser.add_argument(
        "--retriever-id", help="retriever_id for rows that carry none (e.g. UBI queries)"
    )
    parser.add_argument(
        "--ubi-ordinal-base",
        type=int,
        choices=ORDINAL_BASES,
        help="ingest interactions --format ubi: the number event_attributes.position.ordinal counts"
        f" from (default {DEFAULT_ORDINAL_BASE}, the UBI schema's; 0 for writers that count from 0)",
    )
    parser.add_argument(
        "--ubi-sessions",
        type=local_file,
        metavar="EVENTS_FILE",
        help="ingest executions --format ubi: take each query's session id from these ubi_events"
        " (UBI query documents carry none; without it a query with no session is its own session)",
    )
    parser.add_argument(
        "--name", help="collection name (ingest collection; default: first file's stem)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run_ingest)


def run_ingest(args: argparse.Namespace, paths: DataPaths) -> int:
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        raise InvalidInputError(f"FILE: not found: {', '.join(missing)}")
    options, sessions = _ubi_options(args)
    if args.table == "collection":
        return run_collection_import(args, paths)
    try:
        report = ingest_files(
            paths,
            args.table,
            args.files,
            fmt=args.format,
            default_retriever_id=args.retriever_id,
            options=options,
            progress=stderr_progress(),
        )
    except LogParseError as exc:
        raise InvalidInputError(f"{exc} (nothing was written)") from exc
    if sessions is not None:
        report.reading.notes.append(sessions.summary())
    refresh_views(paths, lambda problem: progress(f"warning: {problem}"))
    if args.json:
        print_json(report.to_dict())
    else:
        print("\n".join(report.summary_lines()))
    return 0


def _ubi_options(args: argparse.Namespace) -> tuple[ReadOptions, UbiSessions | None]:
    """The UBI flags as read options; each flag only where it means something, else exit 2."""
    ubi = args.format == "ubi"
    if args.ubi_ordinal_base is not None and not (ubi and args.table == "interactions"):
        raise InvalidInputError(
            "--ubi-ordinal-base: only for `ingest interactions --format ubi` (UBI events' ordinals)"
        )
    if args.ubi_sessions is not None and not (ubi and args.table == "executions"):
        raise InvalidInputError(
            "--ubi-sessions: only for `ingest executions --format ubi` (sessions for UBI queries)"
        )
    sessions = None
    if args.ubi_sessions is not None:
        if not args.ubi_sessions.is_file():
            raise InvalidInputError(f"--ubi-sessions: not found: {args.ubi_sessions}")
        sessions = read_ubi_sessions(args.ubi_sessions)
    base = DEFAULT_ORDINAL_BASE if args.ubi_ordinal_base is None else args.ubi_ordinal_base
    return ReadOptions(base, sessions.sessions if sessions else None), sessions


def run_collection_import(args: argparse.Namespace, paths: DataPaths) -> int:
    name = args.name or args.files[0].stem
    written, rows = import_collection(paths, name, args.files)
    refresh_views(paths, lambda problem: progress(f"warning: {problem}"))
    report = {"collection": name, "documents": rows, "file": str(written)}
    if args.json:
        print_json(report)
    else:
        print(f"collection {name}: {rows:,} documents written to {written}")
    return 0
