"""`eval-pipelines execution get`: one stored retriever call as an ExecutionDetail."""

from __future__ import annotations

import argparse

from eval_pipelines.cli.output import print_json
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths, validate_id
from eval_pipelines.core.retrieval.execution_store import get_execution


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("execution", help="inspect stored retriever executions")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    get = verbs.add_parser(
        "get",
        help="print an execution as ExecutionDetail JSON (ranked documents, stage statistics)",
    )
    get.add_argument("retriever_id", metavar="RETRIEVER_ID")
    get.add_argument("execution_id", metavar="EXECUTION_ID")
    get.set_defaults(handler=run_get)


def run_get(args: argparse.Namespace, paths: DataPaths) -> int:
    retriever_id = validate_id(args.retriever_id, "retriever_id")
    execution_id = validate_id(args.execution_id, "execution_id")
    detail = get_execution(paths, retriever_id, execution_id)
    if detail is None:
        raise InvalidInputError(
            f"execution_id: no execution {execution_id!r} stored for retriever {retriever_id!r}"
        )
    print_json(detail)
    return 0
