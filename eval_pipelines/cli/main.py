"""`eval-pipelines`: the command line. Exit 0 on success, 2 on invalid input, 1 on a run-time failure,
3 for a record that completed without a verdict (see cli/output.py)."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from eval_pipelines.cli.output import EXIT_FAILURE, EXIT_INVALID, EXIT_OK
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.object_store import check_reachable
from eval_pipelines.core.paths import DATA_ENV_VAR, DataPaths, data_root

# Each verb's module under eval_pipelines.cli, in help order. Only the module of the verb asked is
# imported (the others pull in scipy, Dagster, bm25s: about a second a call); --help imports them all.
COMMAND_MODULES: dict[str, str] = {
    "demo": "demo",
    "ingest": "logs",
    "retrievers": "retrievers",
    "execution": "executions",
    "benchmark": "benchmarks",
    "dataset": "datasets",
    "evaluation": "evaluations",
    "trec-eval": "evaluations",
    "click-model": "click_model",
    "report": "report",
    "instance": "instance",
}
MAX_ERROR_LINE = 2000


def bounded(message: str) -> str:
    """Each line of an error cut to a readable length: a 1 MB value must not become a 1 MB message."""
    return "\n".join(
        line
        if len(line) <= MAX_ERROR_LINE
        else f"{line[:MAX_ERROR_LINE]}... ({len(line) - MAX_ERROR_LINE} more characters)"
        for line in message.splitlines()
    )


def _verb(argv: Sequence[str]) -> str | None:
    """The verb a command line asks for (the first word that is not an option or its value)."""
    words = iter(argv)
    for word in words:
        if word == "--data-dir":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eval-pipelines",
        description="Offline evaluation of search retrievers (benchmarks on logged sessions, "
        "evaluations on ground truth).",
    )
    parser.add_argument(
        "--data-dir",
        help="data directory (default: $EVAL_PIPELINES_DATA, else data/ in the project root)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    verb = _verb(sys.argv[1:] if argv is None else argv)
    wanted = [COMMAND_MODULES[verb]] if verb in COMMAND_MODULES else COMMAND_MODULES.values()
    for name in dict.fromkeys(wanted):
        importlib.import_module(f"eval_pipelines.cli.{name}").register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        paths = (
            DataPaths(data_root(args.data_dir, "--data-dir"))
            if args.data_dir
            else DataPaths.from_env()
        )
        check_reachable(paths.root, "--data-dir" if args.data_dir else DATA_ENV_VAR)
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


def run() -> None:
    """The console script: main, then an exit that skips interpreter finalization. Every output is
    written and flushed by then; finalization only tears down native thread pools (DuckDB's, Arrow's),
    and that teardown aborted a finished command now and then ('terminate called without an active
    exception', exit -6) when the machine was busy."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):
            stream.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    run()
