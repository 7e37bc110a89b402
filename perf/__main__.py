"""Command line: run one benchmark or all of them, print the table, write the JSON results."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from perf import (
    click_model,
    counterfactual_panel,
    counterfactual_scoring,
    derived_agreement,
    end_to_end,
    ground_truth,
    ingest,
    replay_fanout,
    replay_http,
    replay_in_process,
    report,
    s3_root,
    sampling,
    session_scoring,
    trec_eval_files,
)
from perf.harness import BenchmarkResult, format_table, write_results

BENCHMARKS: dict[str, Callable[[str, int, Path], BenchmarkResult]] = {
    ground_truth.NAME: ground_truth.run,
    session_scoring.NAME: session_scoring.run,
    sampling.NAME: sampling.run,
    replay_in_process.NAME: replay_in_process.run,
    replay_http.NAME: replay_http.run,
    replay_fanout.NAME: replay_fanout.run,
    end_to_end.NAME: end_to_end.run,
    click_model.NAME: click_model.run,
    counterfactual_scoring.NAME: counterfactual_scoring.run,
    counterfactual_panel.NAME: counterfactual_panel.run,
    derived_agreement.NAME: derived_agreement.run,
    ingest.NAME: ingest.run,
    trec_eval_files.NAME: trec_eval_files.run,
    report.NAME: report.run,
    s3_root.NAME: s3_root.run,
}
SCALES: tuple[str, ...] = ("tiny", "small", "full")


def run_benchmarks(names: Sequence[str], scale: str, repeat: int) -> list[BenchmarkResult]:
    """Each benchmark in its own scratch directory, removed afterwards."""
    results = []
    for name in names:
        print(f"running {name} (scale {scale}, {repeat} repetitions) ...", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as scratch:
            results.append(BENCHMARKS[name](scale, repeat, Path(scratch)))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perf", description=__doc__)
    parser.add_argument("name", choices=["all", *BENCHMARKS])
    parser.add_argument("--scale", choices=SCALES, default="full")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions after a warm-up")
    parser.add_argument("--output", type=Path, default=Path("benchmark-results.json"))
    arguments = parser.parse_args(argv)
    if arguments.repeat < 1:
        parser.error("--repeat must be at least 1")
    names = list(BENCHMARKS) if arguments.name == "all" else [arguments.name]
    results = run_benchmarks(names, arguments.scale, arguments.repeat)
    print(format_table(results))
    written = write_results(results, arguments.output, arguments.scale, arguments.repeat)
    print(f"results: {written}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
