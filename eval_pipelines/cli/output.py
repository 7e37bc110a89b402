"""Small printing helpers shared by the commands: JSON on stdout, progress on stderr.

Exit codes: 0 success, 1 a failure at run time (a failed record included), 2 invalid input, and
3 for a record that completed without answering its question (EXIT_NO_VERDICT): a benchmark with a
candidate that could not be tested, an evaluation with no query evaluated. A CI job can gate on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eval_pipelines.core.paths import is_url, shown
from eval_pipelines.core.progress import ProgressOutput, interval_from_env, lines_to

EXIT_OK, EXIT_FAILURE, EXIT_INVALID, EXIT_NO_VERDICT = 0, 1, 2, 3


def local_file(text: str) -> Path:
    """An argparse type for a file named on the command line, which is on this machine: as a Path,
    's3://bucket/x' would become the local path 's3:/bucket/x' and be read or written there."""
    if is_url(text):
        raise argparse.ArgumentTypeError(
            f"{shown(text)} is a URL; name a file on this machine (only the data root, from"
            " --data-dir or EVAL_PIPELINES_DATA, may be on S3)"
        )
    return Path(text)


def print_json(value: Any) -> None:
    """Strict JSON: a NaN or Infinity raises here rather than printing what no JSON parser reads."""
    json.dump(value, sys.stdout, indent=2, default=str, allow_nan=False)
    sys.stdout.write("\n")


def wants_json(args: Any) -> bool:
    """JSON when asked (--json) or when stdout is not a terminal, so scripts keep reading JSON."""
    return bool(getattr(args, "json", False)) or not sys.stdout.isatty()


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def stderr_progress() -> ProgressOutput:
    """Progress lines of long work on stderr (never stdout, which stays JSON or the summary), at
    most one per EVAL_PIPELINES_PROGRESS_INTERVAL seconds."""
    return ProgressOutput(lines_to(progress), interval_from_env(sys.stderr.isatty()))


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def finish_record(
    record: dict[str, Any],
    has_verdict: Callable[[dict[str, Any]], bool],
    args: Any,
    summarize: Callable[[dict[str, Any]], str],
) -> int:
    """Print a final record (its summary on a terminal, JSON with --json or to a pipe; each warning
    on stderr); its exit code."""
    if wants_json(args):
        print_json(record)
    else:
        print(summarize(record))
    for warning in record.get("warnings") or []:
        print(f"warning: {warning}", file=sys.stderr)
    if record["status"] != "completed":
        print(f"error: {record.get('error_message') or record['status']}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK if has_verdict(record) else EXIT_NO_VERDICT
