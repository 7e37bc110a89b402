"""`eval-pipelines report ID`: a completed benchmark's or evaluation's HTML report, built from its
stored partition (no Dagster needed), written to --output or the partition's report.html."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eval_pipelines.cli.output import local_file
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.reports.html.sources import resolve


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "report",
        help="write the self-contained HTML report of a completed benchmark or evaluation",
    )
    parser.add_argument("record_id", metavar="ID", help="a benchmark id or an evaluation id")
    parser.add_argument(
        "--output",
        type=local_file,
        metavar="FILE.html",
        help="a file on this machine to write it to (default: report.html in the record's folder,"
        " on the data root)",
    )
    parser.add_argument(
        "--against",
        metavar="EVALUATION_ID",
        help="a completed evaluation to compare an evaluation with (query scatter, drill-down)",
    )
    parser.set_defaults(handler=run_report)


def _output(path: Path | None) -> Path | None:
    """The --output file, checked before anything is built: its folder exists, it is no folder."""
    if path is None:
        return None
    path = path.expanduser().absolute()
    if path.is_dir():
        raise InvalidInputError(f"--output: {path} is a directory; name a file such as report.html")
    if not path.parent.is_dir():
        raise InvalidInputError(f"--output: the folder {path.parent} does not exist")
    return path


def run_report(args: argparse.Namespace, paths: DataPaths) -> int:
    output = _output(args.output)
    resolve(paths, args.record_id, against=args.against)
    from eval_pipelines.core.reports.html.build import (
        build_report,
        write_report,
    )  # matplotlib, once the ids are known good

    report = build_report(paths, args.record_id, against=args.against)
    written = write_report(report, output)
    sys.stdout.write(f"{written}\n")
    return 0
