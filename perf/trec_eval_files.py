"""Benchmark: `trec-eval` from TREC files to scores, with the run in two layouts, against pytrec_eval.

Issue 14 point 4: the run reader's fast path must not depend on the order of the lines. The same run
(benchmark 1's: 100 documents per query, distinct scores) is written twice: queries in numeric order
(q0, q1, ..., q99999, each query's lines best first, as most systems write it; not trec_eval's byte
order) and with its lines shuffled. Each layout is scored by what the verb computes (core
`trec_eval`: the default measures' means; with `-q` the per-query values too), by the verb itself
in a subprocess, and by pytrec_eval reading the same files into dicts the plain way. Every value
is checked: the layouts agree exactly, and pytrec_eval agrees on every query and common measure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from eval_pipelines.core.trec_eval import DEFAULT_CUTOFFS, parse_measures, trec_eval
from perf.ground_truth import QUERIES, pytrec_eval_dicts, write_trec_files
from perf.harness import BenchmarkResult, CorrectnessError, Target, run_contenders

NAME = "trec_eval_files"
DEPTH = 100
LAYOUTS: tuple[str, ...] = ("numeric order", "shuffled")
PYTREC_FAMILIES: tuple[str, ...] = ("P", "recall", "map_cut", "ndcg_cut")
PYTREC_UNCUT: tuple[str, ...] = ("map", "ndcg", "recip_rank", "set_P", "set_recall", "set_F")
COMPARED: tuple[str, ...] = tuple(
    [f"{family}_{k}" for family in PYTREC_FAMILIES for k in DEFAULT_CUTOFFS] + list(PYTREC_UNCUT)
)
TOLERANCE = 1e-9
CLI = Path(sys.executable).parent / "eval-pipelines"


def shuffled_copy(run_path: Path, seed: int) -> Path:
    """The run's lines in a random order (the file ends with a newline)."""
    lines = run_path.read_bytes().splitlines(keepends=True)
    order = np.random.default_rng(seed).permutation(len(lines))
    path = run_path.with_name("run-shuffled.txt")
    path.write_bytes(b"".join(lines[i] for i in order.tolist()))
    return path


def pytrec_eval_scores(qrels_path: Path, run_path: Path) -> dict[str, dict[str, float]]:
    """pytrec_eval from the files: dicts read line by line, then RelevanceEvaluator.evaluate."""
    import pytrec_eval

    qrels, run = pytrec_eval_dicts(qrels_path, run_path)
    measures = {f"{family}.{','.join(map(str, DEFAULT_CUTOFFS))}" for family in PYTREC_FAMILIES}
    return pytrec_eval.RelevanceEvaluator(qrels, measures | set(PYTREC_UNCUT)).evaluate(run)


def cli_scores(qrels_path: Path, run_path: Path, data_dir: Path) -> dict[str, Any]:
    """The verb itself: `eval-pipelines trec-eval QRELS RUN` in a subprocess, its JSON parsed."""
    result = subprocess.run(
        [str(CLI), "--data-dir", str(data_dir), "trec-eval", str(qrels_path), str(run_path)],
        capture_output=True,
        text=True,
        check=False,
        env={key: value for key, value in os.environ.items() if key != "DAGSTER_HOME"},
    )
    if result.returncode != 0:
        raise CorrectnessError(f"trec-eval exited {result.returncode}: {result.stderr[-2000:]}")
    return json.loads(result.stdout)


def check_layouts_agree(outputs: dict[str, Any]) -> dict[str, Any]:
    """The layouts' outputs are identical, value for value, and the subprocess prints the same."""
    first, second = (outputs[f"eval-pipelines, {layout}"] for layout in LAYOUTS)
    if first != second:
        raise CorrectnessError("the numeric-order and shuffled runs scored differently")
    for layout in LAYOUTS:
        if outputs[f"eval-pipelines CLI, {layout}"] != first:
            raise CorrectnessError(f"the CLI's output differs from trec_eval's ({layout})")
    per_query = [outputs[f"eval-pipelines -q, {layout}"] for layout in LAYOUTS]
    if per_query[0] != per_query[1] or per_query[0]["all"] != first["all"]:
        raise CorrectnessError("the -q outputs differ between layouts or from the means")
    return {"identical_across_layouts": True, "measures": len(first["all"])}


def check_against_pytrec_eval(ours: dict[str, Any], theirs: dict[str, dict[str, float]]) -> dict:
    """Every query and every measure both compute agree within TOLERANCE, and so do the means."""
    per_query = ours["per_query"]
    if per_query.keys() != theirs.keys():
        raise CorrectnessError("pytrec_eval and eval-pipelines scored different query sets")
    queries = list(theirs)
    worst = 0.0
    for measure in COMPARED:
        mine = np.array([per_query[query][measure] for query in queries])
        reference = np.array([theirs[query][measure] for query in queries])
        difference = np.abs(mine - reference)
        at = int(np.argmax(difference))
        if not difference[at] <= TOLERANCE:
            raise CorrectnessError(
                f"{measure} differs for query {queries[at]}: {mine[at]} vs pytrec_eval"
                f" {reference[at]}"
            )
        mean_difference = abs(ours["all"][measure] - float(reference.mean()))
        if not mean_difference <= TOLERANCE:
            raise CorrectnessError(f"the mean of {measure} differs by {mean_difference}")
        worst = max(worst, float(difference[at]), mean_difference)
    return {
        "queries_compared": len(queries),
        "measures_compared": list(COMPARED),
        "max_abs_difference": worst,
        "tolerance": TOLERANCE,
    }


def run(scale: str, repeat: int, workdir: Path, seed: int = 1) -> BenchmarkResult:
    query_count = QUERIES[scale]
    qrels_path, numeric_path = write_trec_files(workdir, query_count, seed)
    runs = dict(zip(LAYOUTS, (numeric_path, shuffled_copy(numeric_path, seed)), strict=True))
    data_dir = workdir / "data"
    groups: list[tuple[str, ...]] = []
    contenders = []
    for layout, run_path in runs.items():
        steps = {
            f"eval-pipelines, {layout}": lambda p=run_path: trec_eval(qrels_path, p),
            f"eval-pipelines -q, {layout}": lambda p=run_path: trec_eval(
                qrels_path, p, per_query=True
            ),
            f"eval-pipelines CLI, {layout}": lambda p=run_path: cli_scores(qrels_path, p, data_dir),
            f"pytrec_eval, {layout}": lambda p=run_path: pytrec_eval_scores(qrels_path, p),
        }
        contenders += list(steps.items())
        groups.append(tuple(steps))
    results, outputs = run_contenders(contenders, repeat)
    checks = {"layouts": check_layouts_agree(outputs)}
    for layout in LAYOUTS:
        checks[f"pytrec_eval, {layout}"] = check_against_pytrec_eval(
            outputs[f"eval-pipelines -q, {layout}"], outputs[f"pytrec_eval, {layout}"]
        )
    medians = {r.name: r.median_seconds for r in results}
    targets = [
        Target(
            f"speed-up over pytrec_eval, files to scores, {layout} (x)",
            medians[f"pytrec_eval, {layout}"] / medians[f"eval-pipelines, {layout}"],
            10.0,
            higher_is_better=True,
        )
        for layout in LAYOUTS
    ]
    return BenchmarkResult(
        name=NAME,
        parameters={
            "queries": query_count,
            "depth": DEPTH,
            "run_lines": query_count * DEPTH,
            "layouts": list(LAYOUTS),
            "measures": parse_measures(None),
            "seed": seed,
        },
        contenders=results,
        checks=checks,
        targets=targets,
        notes=[
            "eval-pipelines is core trec_eval(), what the verb prints: the default measures'"
            " means (with -q also every query's values as dicts); the CLI contender adds the"
            " process start and imports. pytrec_eval computes per-query values of the measures"
            " it has (the verb's F1_k and F2_k are not among them).",
            "The CLI contenders' peak RSS is not measured here (a subprocess); run the verb under"
            " /usr/bin/time -f %M for it.",
        ],
        peer_groups=groups,
    )
