"""Benchmark: the panel of candidates whose truth is known, benchmarked again and again on the demo
world under both estimators (core/demo/panel.py, core/demo/panel_runs.py).

The demo world is built in the scratch directory. Each repetition samples its own sessions (seed r)
served by demo_prod and scores every panel candidate through the benchmark's scoring and comparison.
The check holds the issue's bars: truly equal candidates called better or worse in <= 8% under the
counterfactual estimator, truly better ones with evidence promoted in >= 80%, never-shown documents
never making a candidate worse, truly worse ones never promoted. The verdict counts of both
estimators, the true NDCG@10 deltas and the click model's fit are kept in the results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval_pipelines.core.demo import DemoScale, build_demo_world
from eval_pipelines.core.demo.panel import BETTER, EQUAL, NOT_JUDGEABLE, WORSE
from eval_pipelines.core.demo.panel_runs import run_panel
from eval_pipelines.core.paths import DataPaths
from perf.harness import BenchmarkResult, CorrectnessError, Target, run_contenders

NAME = "counterfactual_panel"
REPETITIONS: dict[str, int] = {"tiny": 3, "small": 10, "full": 20}
SESSIONS: dict[str, int] = {"tiny": 300, "small": 600, "full": 1000}
SCALES: dict[str, DemoScale] = {
    "tiny": DemoScale.small(),
    "small": DemoScale.small(),
    "full": DemoScale(),
}


def rates(panel: dict[str, Any], estimator: str) -> dict[str, float]:
    """Share of benchmarks giving each verdict family, per truth class."""

    def share(truth: str, verdicts: set[str]) -> float:
        chosen = [c for c in panel["candidates"] if c["truth"] == truth]
        hits = sum(
            n
            for c in chosen
            for v, n in c["estimators"][estimator]["verdicts"].items()
            if v in verdicts
        )
        return hits / (len(chosen) * panel["repetitions"])

    return {
        "equal_called_different": share(EQUAL, {"better", "worse"}),
        "better_promoted": share(BETTER, {"better"}),
        "not_judgeable_called_worse": share(NOT_JUDGEABLE, {"worse"}),
        "worse_promoted": share(WORSE, {"better"}),
        "worse_called_worse": share(WORSE, {"worse"}),
    }


def run(scale: str, repeat: int, workdir: Path, seed: int = 0) -> BenchmarkResult:
    paths = DataPaths(workdir / "data")
    build_demo_world(paths, scale=SCALES[scale])
    repetitions, sessions = REPETITIONS[scale], SESSIONS[scale]
    results, outputs = run_contenders(
        [("panel, both estimators", lambda: run_panel(paths, repetitions, sessions))],
        1,
        warmup=1,
        items=repetitions,
    )
    panel = outputs["panel, both estimators"]
    corrected, logged = rates(panel, "counterfactual"), rates(panel, "logged_order")
    if corrected["not_judgeable_called_worse"] > 0 or corrected["worse_promoted"] > 0:
        raise CorrectnessError(f"counterfactual verdicts broke a never-rule: {corrected}")
    return BenchmarkResult(
        name=NAME,
        parameters={"repetitions": repetitions, "sessions": sessions, "scale": scale},
        contenders=results,
        checks={"counterfactual": corrected, "logged_order": logged, "panel": panel},
        targets=[
            Target(
                "truly equal called better/worse (share)", corrected["equal_called_different"], 0.08
            ),
            Target("truly better not promoted (share)", 1 - corrected["better_promoted"], 0.2),
        ],
        notes=[
            "items/s counts repetitions (each benchmarks the whole panel under both estimators)"
        ],
    )
