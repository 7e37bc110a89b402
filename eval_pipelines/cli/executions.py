"""`eval-pipelines execution get`: one stored retriever call as an ExecutionDetail."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

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
    try:
        text = json.dumps(detail, indent=2, allow_nan=False, default=str)
    except ValueError:
        raise ValueError(
            f"execution {execution_id}: the stored record holds {_non_finite(detail)}, which JSON"
            " cannot carry (it was stored before malformed rankings were refused); not printed"
        ) from None
    sys.stdout.write(text + "\n")
    return 0


def _non_finite(value: Any, where: str = "") -> str:
    """Where the first NaN or Infinity in value is, as `field: value`."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where or '(record)'}: {value}"
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        found = _non_finite(
            item, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}".lstrip(".")
        )
        if found:
            return found
    return ""
