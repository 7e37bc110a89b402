"""`eval-pipelines`: the command line. Exit 0 on success, 2 on invalid input, 1 on a run-time failure,
3 for a record that completed without a verdict (see cli/output.py)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from eval_pipelines.cli import (
    benchmarks,
    click_model,
    datasets,
    demo,
    evaluations,
    executions,
    logs,
    retrievers,
)
from eval_pipelines.cli.output import EXIT_FAILURE, EXIT_INVALID, EXIT_OK
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths

COMMAND_MODULES = (
    demo,
    logs,
    retrievers,
    executions,
    benchmarks,
    datasets,
    evaluations,
    click_model,
)
MAX_ERROR_LINE = 2000


def bounded(message: str) -> str:
    """Each line of an error cut to a readable length: a 1 MB value must not become a 1 MB message."""
    return "\n".join(
        line
        if len(line) <= MAX_ERROR_LINE
        else f"{line[:MAX_ERROR_LINE]}... ({len(line) - MAX_ERROR_LINE} more characters)"
        for line in message.splitlines()
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eval-pipelines",
        description="Offline evaluation of search retrievers (benchmarks on logged sessions, "
        "evaluations on ground truth).",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="data directory (default: $EVAL_PIPELINES_DATA, else data/ in the project root)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    paths = DataPaths(args.data_dir.resolve()) if args.data_dir else DataPaths.from_env()
    try:
        return int(args.handler(args, paths) or EXIT_OK)
    except InvalidInputError as exc:
        print(bounded(f"error: {exc}"), file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error of ours, and nothing more to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:
        print(bounded(f"error: {type(exc).__name__}: {exc}"), file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
