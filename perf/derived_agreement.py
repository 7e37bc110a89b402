"""Benchmark: does a dataset derived from the logs order the issue's panel as the truth does?

The demo world (tiny and small: the small world; full: the full one, default seed) is built in the
scratch directory, a dataset is derived from its logs with the defaults (`dataset derive`), and the
panel of core/demo/panel.py plus demo_better and demo_worse is scored with NDCG@10 against it on
plain and on condensed lists, and against the hidden grades (core/evaluations/panel_agreement.py).
Reported: Kendall tau (tau-b, its ceiling under the truth's ties, and over distinct truths), the
agreement over pairs whose truths differ by more than 0.01, judged@10 and shown@10 per candidate,
which candidates the logs cannot judge (shown@10 below the benchmarks' min_coverage), and the usable
queries; then the same judged pairs with their true grades in place of the derived ones, which
separates what the judged set allows from what the derived grades lose. The targets are the
issue's (tau >= 0.9); they are checks, not timings.
"""

from __future__ import annotations

from pathlib import Path

from eval_pipelines.core.datasets import load_dataset
from eval_pipelines.core.datasets.from_logs import derive_dataset
from eval_pipelines.core.demo import DemoScale, build_demo_world
from eval_pipelines.core.evaluations.panel_agreement import score_panel, true_grades_of
from eval_pipelines.core.paths import DataPaths
from perf.harness import BenchmarkResult, CorrectnessError, Target, run_contenders

NAME = "derived_agreement"
SCALES: dict[str, DemoScale] = {
    "tiny": DemoScale.small(),
    "small": DemoScale.small(),
    "full": DemoScale(),
}
DATASET = "from-logs"
MIN_USABLE_QUERIES = 20


def run(scale: str, repeat: int, workdir: Path, seed: int = 0) -> BenchmarkResult:
    paths = DataPaths(workdir / "data")
    build_demo_world(paths, scale=SCALES[scale])
    summary = derive_dataset(paths, DATASET)
    dataset = load_dataset(paths, DATASET)
    results, outputs = run_contenders(
        [
            (
                "panel scored plain and condensed",
                lambda: score_panel(paths, dataset.queries, dataset.judgments),
            )
        ],
        repeat,
        warmup=1,
        items=1,
    )
    agreement = outputs["panel scored plain and condensed"]
    if agreement.usable_queries < MIN_USABLE_QUERIES:
        raise CorrectnessError(
            f"only {agreement.usable_queries} usable queries in the derived dataset"
        )
    excluded = sorted(c.name for c in agreement.candidates if not c.in_tau)
    if "better_never_shown" not in excluded:
        raise CorrectnessError(f"the never-shown candidate was judged: excluded {excluded}")
    facts = agreement.to_dict()
    oracle = score_panel(
        paths, dataset.queries, true_grades_of(paths, dataset.queries, dataset.judgments)
    )
    return BenchmarkResult(
        name=NAME,
        parameters={"scale": scale, "derivation": summary.derivation},
        contenders=results,
        checks={
            **facts,
            "excluded_from_tau": excluded,
            "table": agreement.table(),
            "same_pairs_true_grades": oracle.to_dict(),
        },
        targets=[
            Target("Kendall tau-b, condensed lists", facts["tau_condensed"], 0.9, True),
            Target(
                "Kendall tau over distinct truths, condensed lists",
                facts["tau_condensed_distinct_truths"],
                0.9,
                True,
            ),
            Target(
                "agreement over pairs whose truths differ by > 0.01, condensed",
                facts["pairwise_condensed"],
                0.9,
                True,
            ),
            Target("Kendall tau-b, plain lists", facts["tau_plain"], 0.9, True),
        ],
        notes=[
            "targets are agreement checks, not timings; ties in the truth cap tau-b at"
            f" {facts['tau_ceiling']:.3f}",
            agreement.table(),
            "the same judged pairs with their true grades (what the judged set allows):",
            oracle.table(),
        ],
    )
