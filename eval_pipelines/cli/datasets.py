"""`eval-pipelines dataset import|derive|list`: ground-truth datasets, imported or derived from logs."""

from __future__ import annotations

import argparse
import math

from eval_pipelines.cli.output import format_table, local_file, print_json, progress
from eval_pipelines.core.datasets import DatasetSummary, import_dataset, list_datasets
from eval_pipelines.core.datasets.from_logs import (
    DEFAULT_GRADE_THRESHOLDS,
    DEFAULT_MIN_EXPOSURE,
    DEFAULT_MIN_IMPRESSIONS,
    CorrectionUnavailableError,
    DerivationSettings,
    NothingToJudgeError,
    derive_dataset,
    parse_grade_thresholds,
)
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
    importing.add_argument("files", nargs="+", type=local_file, metavar="FILE")
    importing.add_argument(
        "--format", default="auto", choices=["auto", "ground_truth", "trec", "beir"]
    )
    importing.add_argument(
        "--replace", action="store_true", help="replace an existing dataset of that name"
    )
    importing.set_defaults(handler=run_import)
    _register_derive(verbs)
    listing = verbs.add_parser("list", help="datasets with query and judgment counts")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_list)


def _register_derive(verbs: argparse._SubParsersAction) -> None:
    deriving = verbs.add_parser(
        "derive",
        help="derive graded judgments from the logs' click model (position-corrected)",
        description=(
            "One query per normalized logged query text; one judgment per (query, document) with"
            " an exposure of at least --min-exposure (expected examinations at position 1) over at"
            " least --min-impressions impressions, graded by its gain per examination at position 1."
        ),
    )
    deriving.add_argument("name", metavar="NAME")
    deriving.add_argument(
        "--from-logs",
        action="store_true",
        required=True,
        help="derive from the ingested logs (the only source today)",
    )
    deriving.add_argument(
        "--min-impressions",
        default=str(DEFAULT_MIN_IMPRESSIONS),
        metavar="N",
        help=f"impressions a pair needs to be judged (default {DEFAULT_MIN_IMPRESSIONS})",
    )
    deriving.add_argument(
        "--min-exposure",
        default=f"{DEFAULT_MIN_EXPOSURE:g}",
        metavar="X",
        help="exposure (expected examinations, in position-1 equivalents) a pair needs to be"
        f" judged, wherever it was served (default {DEFAULT_MIN_EXPOSURE:g})",
    )
    deriving.add_argument(
        "--grade-thresholds",
        default=",".join(str(t) for t in DEFAULT_GRADE_THRESHOLDS),
        metavar="A,B,C",
        help="gain per examination at which grades 1, 2, 3 start (default %(default)s)",
    )
    deriving.add_argument(
        "--allow-uncorrected",
        action="store_true",
        help="when the logs cannot correct for position, derive from raw rates (recorded as such)",
    )
    deriving.add_argument(
        "--replace", action="store_true", help="replace an existing dataset of that name"
    )
    deriving.set_defaults(handler=run_derive)


def _derive_settings(args: argparse.Namespace) -> DerivationSettings:
    """The flags checked, each error naming its flag."""
    try:
        min_impressions = int(args.min_impressions)
    except ValueError:
        raise InvalidInputError(
            f"--min-impressions: expected a whole number, got {args.min_impressions!r}"
        ) from None
    if min_impressions < 1:
        raise InvalidInputError(f"--min-impressions: must be >= 1, got {min_impressions}")
    try:
        min_exposure = float(args.min_exposure)
    except ValueError:
        raise InvalidInputError(
            f"--min-exposure: expected a number, got {args.min_exposure!r}"
        ) from None
    if not math.isfinite(min_exposure) or min_exposure < 0:
        raise InvalidInputError(
            f"--min-exposure: expected a finite number >= 0, got {args.min_exposure!r}"
        )
    try:
        thresholds = parse_grade_thresholds(args.grade_thresholds)
    except InvalidInputError as exc:
        raise InvalidInputError(f"--{str(exc).replace('_', '-', 1)}") from None
    return DerivationSettings(
        min_impressions=min_impressions,
        min_exposure=min_exposure,
        grade_thresholds=thresholds,
        allow_uncorrected=args.allow_uncorrected,
    )


def run_derive(args: argparse.Namespace, paths: DataPaths) -> int:
    settings = _derive_settings(args)
    try:
        summary = derive_dataset(paths, args.name, settings, replace=args.replace)
    except CorrectionUnavailableError as exc:
        raise InvalidInputError(
            f"--from-logs: {exc}. Add impressions, ranker changes or exploration traffic to the"
            " logs, or pass --allow-uncorrected to derive from raw interaction rates anyway"
        ) from None
    except NothingToJudgeError as exc:
        raise InvalidInputError(
            f"--min-impressions, --min-exposure: no (query, document) pair was served"
            f" {exc.min_impressions} times with an exposure of {exc.min_exposure:g} (the most any"
            f" pair was served is {exc.most}, the largest exposure {exc.most_exposure:.4g});"
            " lower them"
        ) from None
    print_json(summary.to_dict())
    progress(_derive_message(summary))
    return 0


def _derive_message(summary: DatasetSummary) -> str:
    facts = summary.derivation or {}
    corrected = "position-corrected" if facts.get("corrected") else "NOT corrected for position"
    return (
        f"dataset {summary.name}: {summary.query_count} queries, {summary.judgment_count}"
        f" judgments ({summary.relevant_count} with grade >= 1), {corrected}, from click model"
        f" {facts.get('click_model_id')} (log snapshot {facts.get('snapshot_id')});"
        f" {facts.get('pairs_below_minimum')} of {facts.get('pairs_seen')} pairs had fewer than"
        f" {facts.get('min_impressions')} impressions ({facts.get('pairs_below_min_impressions')})"
        f" or an exposure below {facts.get('min_exposure')} (another"
        f" {facts.get('pairs_below_min_exposure')}) and {facts.get('queries_below_minimum')}"
        " queries had no pair with enough, so they are not judged"
    )


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
                [
                    "name",
                    "dataset_id",
                    "format",
                    "queries",
                    "judgments",
                    "relevant",
                    "evidence",
                    "created_at",
                ],
                [
                    [
                        d.name,
                        d.dataset_id,
                        d.format,
                        d.query_count,
                        d.judgment_count,
                        d.relevant_count,
                        _evidence_cell(d),
                        d.created_at,
                    ]
                    for d in datasets
                ],
            )
        )
    else:
        print("no datasets (import one with `eval-pipelines dataset import NAME FILE...`)")
    return 0


def _evidence_cell(summary: DatasetSummary) -> str:
    """For a derived dataset: its click model, correction and the impressions behind a judgment."""
    facts = summary.derivation
    if not facts:
        return "-"
    spread = facts.get("judged_impressions") or {}
    corrected = "corrected" if facts.get("corrected") else "UNCORRECTED"
    return (
        f"{facts.get('click_model_id')} {corrected}, impressions >= {facts.get('min_impressions')}"
        f" (median {spread.get('median')}), exposure >= {facts.get('min_exposure', 0)},"
        f" {facts.get('pairs_below_minimum')} pairs below"
    )
