"""`eval-pipelines retrievers list`: the retriever YAMLs under <data>/retrievers/, checked."""

from __future__ import annotations

import argparse
import sys

from eval_pipelines.cli.output import format_table, print_json
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.config import redact_url
from eval_pipelines.core.retrieval.registry import load_retriever_registry


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("retrievers", help="list configured retrievers")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    listing = verbs.add_parser(
        "list",
        help="list retrievers with kind, target and pipeline_hash; invalid files are reported (exit 2)",
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(handler=run_list)


def run_list(args: argparse.Namespace, paths: DataPaths) -> int:
    """Every file that reads, and every problem: a bad file, an id given twice, a missing backend.

    URLs are shown with their credentials redacted (user:password, api_key=... and the like).
    """
    registry = load_retriever_registry(paths)
    rows = [
        {
            "id": c.id,
            "name": c.name,
            "kind": c.kind,
            "target": c.collection if c.http is None else redact_url(c.http.url),
            "stages": [s.name for s in c.stages],
            "pipeline_hash": c.pipeline_hash,
            "file": str(c.source_path),
            "usable": c.id in registry.configs and registry.configs[c.id] is c,
        }
        for c in registry.parsed
    ]
    if args.json:
        print_json(rows)
    elif rows:
        print(
            format_table(
                ["id", "kind", "name", "target", "pipeline_hash"],
                [
                    [r["id"], r["kind"], r["name"], r["target"], r["pipeline_hash"][:12]]
                    for r in rows
                ],
            )
        )
    elif not registry.problems:
        print(
            f"no retrievers in {paths.retrievers_dir} (run `eval-pipelines demo` for the demo ones)"
        )
    for problem in registry.problems:
        print(f"error: {problem}", file=sys.stderr)
    return 2 if registry.problems else 0
