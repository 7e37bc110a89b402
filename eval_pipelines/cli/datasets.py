"""`eval-pipelines dataset import|list`: ground-truth datasets."""

from __future__ import annotations

import argparse
from pathlib import Path

from eval_pipelines.cli.output import format_table, print_json
from eval_pipelines.core.datasets import import_dataset, list_datasets
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("dataset", help="import and list ground-truth datasets")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    importing = verbs.add_parser(
        "import",
        help="import a dataset (GroundTruthQuery JSONL, TREC qrels + topics, or BEIR queries + qrels)",
        description="Every problem in the files is listed (file:line: field: problem), exit 2, and nothing is stored.",
    )
    importing.add_argument("name", metavar="NAME")
    importing.add_argument("files", nargs="+", type=Path, metavar="FILE")
    importing.add_argument(
        "--format", default="auto", choices=["auto", "ground_truth", "trec", "beir"]
    )
    importing.add_argument(
        "--replace", action="store_true", help="replace an existing dataset of that name"
    )
    importing.set_defaults(handler=run_import)
    listing = verbs.add_parser("list", help="datasets with query and judgment counts")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_list)


def run_import(args: argparse.Namespace, paths: DataPaths) -> int:
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        raise InvalidInputError(f"FILE: not found: {', '.join(missing)}")
    summary = import_dataset(paths, args.name, args.files, fmt=args.format, replace=args.replace)
    print_json(summary.to_dict())
    return 0


def run_list(args: argparse.Namespace, paths: DataPaths) -> int:
    datasets = list_datasets(paths)
    if args.json:
        print_json([d.to_dict() for d in datasets])
    elif datasets:
        print(
            format_table(
                ["name", "dataset_id", "format", "queries", "judgments", "relevant", "created_at"],
                [
                    [
                        d.name,
                        d.dataset_id,
                        d.format,
                        d.query_count,
                        d.judgment_count,
                        d.relevant_count,
                        d.created_at,
                    ]
                    for d in datasets
                ],
            )
        )
    else:
        print("no datasets (import one with `eval-pipelines dataset import NAME FILE...`)")
    return 0
