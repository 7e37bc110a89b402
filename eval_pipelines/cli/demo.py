"""`eval-pipelines demo`: build the demo world when missing (through its Dagster assets), then run it."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

import numpy as np

from eval_pipelines.cli.output import format_table, progress, stderr_progress
from eval_pipelines.core import demo
from eval_pipelines.core.benchmarks.request import BenchmarkRequest, parse_request
from eval_pipelines.core.benchmarks.submit import new_benchmark_id
from eval_pipelines.core.evaluations.request import parse_evaluation_request
from eval_pipelines.core.evaluations.submit import new_evaluation_id
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.execution_store import write_executions
from eval_pipelines.core.retrieval.registry import open_retrievers
from eval_pipelines.core.warehouse import query, refresh_views

DEMO_RETRIEVERS = ("demo_prod", "demo_better", "demo_worse", "demo_prod_copy", "demo_http")
TOUR_QUERIES = 200
DEMO_DATASET = "demo-judgments"
DEMO_EVALUATED = ("demo_prod", "demo_better", "demo_worse")
DEMO_BENCHMARK_SESSIONS = 1000


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo",
        help="build the demo world (when missing) and run the demo",
        description="Builds the simulated shop (catalog, retrievers, intents, logs, judgments) through "
        "its Dagster assets when it is missing, replays logged queries through every demo retriever, "
        "runs a benchmark of demo_prod against the other demo retrievers and evaluations on demo-judgments, "
        "and prints a summary.",
    )
    parser.add_argument("--seed", type=int, default=demo.DEFAULT_SEED, help="world seed (recorded)")
    parser.add_argument("--small", action="store_true", help="a small world, for a quick look")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the world even if present")
    parser.set_defaults(handler=run_demo)


def build_world(paths: DataPaths, seed: int, small: bool) -> None:
    """Materialize the demo assets one by one in this process, on the project's Dagster instance."""
    from dagster import materialize

    from eval_pipelines.assets.demo import demo_assets
    from eval_pipelines.cli.run_in_process import QUIET_RUN_CONFIG
    from eval_pipelines.instance import get_instance
    from eval_pipelines.resources import DataDirResource, DemoWorldResource

    instance = get_instance(paths)
    resources = {
        "data_dir": DataDirResource(path=str(paths.root)),
        "demo_world": DemoWorldResource(seed=seed, size="small" if small else "full"),
    }
    with stderr_progress().track("demo world", "steps", len(demo_assets)) as tracker:
        for asset_def in demo_assets:
            materialize(
                demo_assets,
                selection=[asset_def.key],
                instance=instance,
                resources=resources,
                run_config=QUIET_RUN_CONFIG,
                tags={"eval_pipelines/source": "cli demo"},
            )
            tracker.advance(1, detail=f"{asset_def.key.to_user_string()} built")


def tour(paths: DataPaths) -> list[list[object]]:
    """Replay a fixed sample of logged queries through every demo retriever; each run keeps its own batch."""
    sample = query(
        paths,
        "SELECT query_input FROM logged_executions ORDER BY execution_id LIMIT ?",
        [TOUR_QUERIES],
    )
    query_inputs = [json.loads(q) for q in sample.column("query_input").to_pylist()]
    batch_id = "demo-tour-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    rows = []
    total = len(query_inputs) * len(DEMO_RETRIEVERS)
    with (
        stderr_progress().track("demo tour", "queries", total) as tracker,
        open_retrievers(paths, list(DEMO_RETRIEVERS)) as retrievers,
    ):
        for retriever_id, retriever in retrievers.items():
            executions = retriever.search_many(query_inputs)
            write_executions(paths, executions, batch_id=batch_id)
            failed = sum(e.status != "completed" for e in executions)
            tracker.advance(len(executions), failed=failed, detail=f"{retriever_id} done")
            latencies = np.array([e.total_time_ms for e in executions])
            completed = [e for e in executions if e.status == "completed"]
            rows.append(
                [
                    retriever_id,
                    retriever.config.kind,
                    retriever.config.pipeline_hash[:12],
                    f"{len(completed)}/{len(executions)}",
                    f"{latencies.mean():.2f}",
                    f"{np.percentile(latencies, 90):.2f}",
                    completed[0].execution_id if completed else "-",
                ]
            )
    refresh_views(paths, lambda problem: progress(f"warning: {problem}"))
    return rows


def run_demo(args: argparse.Namespace, paths: DataPaths) -> int:
    if args.rebuild or not demo.demo_world_exists(paths):
        progress(f"Building the demo world in {paths.root} (seed {args.seed}) ...")
        build_world(paths, args.seed, args.small)
    else:
        progress(f"Demo world found in {paths.root} (use --rebuild to build it again).")
    progress(f"Replaying {TOUR_QUERIES} logged queries through the demo retrievers ...")
    rows = tour(paths)
    counts = query(
        paths,
        "SELECT (SELECT count(*) FROM logged_executions), (SELECT count(*) FROM interactions), "
        "(SELECT count(*) FROM collection_products)",
    ).to_pylist()[0]
    logged, interactions, products = counts.values()
    print(
        f"Demo world: {products:,} products, {logged:,} logged searches, {interactions:,} interactions"
    )
    print(f"Data directory: {paths.root}  (DuckDB views: {paths.warehouse})")
    print()
    print(
        format_table(
            [
                "retriever",
                "kind",
                "pipeline_hash",
                "completed",
                "mean ms",
                "p90 ms",
                "example execution",
            ],
            rows,
        )
    )
    example = next((r for r in rows if r[-1] != "-"), None)
    if example:
        print()
        print(f"Inspect one call:  eval-pipelines execution get {example[0]} {example[-1]}")
    print()
    record = run_demo_benchmark(paths, args.seed)
    print_benchmark_summary(record)
    print()
    evaluations = run_demo_evaluations(paths)
    print_evaluation_summary(evaluations)
    finished = [record, *evaluations]
    return 0 if all(r["status"] == "completed" for r in finished) else 1


def demo_benchmark_request(paths: DataPaths, seed: int) -> BenchmarkRequest:
    """demo_prod against the other demo retrievers, over sessions demo_prod served: the earlier
    ranker's sessions would make the baseline's replay differ from what those users saw."""
    return parse_request(
        {
            "benchmark_name": "demo: production vs candidates",
            "baseline_retriever_id": "demo_prod",
            "candidate_retriever_ids": ["demo_better", "demo_worse", "demo_prod_copy", "demo_http"],
            "session_count": DEMO_BENCHMARK_SESSIONS,
            "seed": seed,
            "session_filter": {"retriever_ids": ["demo_prod"]},
        },
        paths,
    )


def run_demo_benchmark(paths: DataPaths, seed: int) -> dict:
    """demo_prod against every other demo retriever over 1,000 sessions it served, run in this process."""
    from eval_pipelines.cli.run_in_process import run_benchmark_here

    request = demo_benchmark_request(paths, seed)
    progress(
        f"Benchmarking demo_prod against 4 candidates over {DEMO_BENCHMARK_SESSIONS} sessions it served ..."
    )
    return run_benchmark_here(paths, request, new_benchmark_id(), progress)


def _p(comparison: dict | None) -> str:
    """A bootstrap p-value is no finer than 1 / (draws + 1), so below 0.001 it is shown as a bound."""
    p = (comparison or {}).get("p_value")
    return "-" if p is None else "<0.001" if p < 0.001 else f"{p:.2g}"


def _interval(comparison: dict | None) -> str:
    interval = (comparison or {}).get("confidence_interval")
    return f"[{interval[0]:+.4f}, {interval[1]:+.4f}]" if interval else "-"


def print_benchmark_summary(record: dict) -> None:
    print(
        f"Benchmark {record['benchmark_id']} ({record['status']}, {record['session_count']} sessions)"
    )
    if record["status"] != "completed":
        print(f"error: {record['error_message']}")
        return
    deltas = {c["candidate_retriever_id"]: c for c in record["comparison"]["comparisons"]}
    estimator = record["comparison"]["estimator"]
    print(
        f"Estimator: {estimator['used']}"
        + (
            f" (position bias from click model {estimator['click_model_id']})"
            if estimator["used"] == "counterfactual"
            else f" ({estimator['reason']})"
        )
    )
    rows = []
    for result in record["results"]:
        metrics, comparison = result["metrics"], deltas.get(result["retriever_id"])
        logged = result.get("metrics_logged_order", metrics)
        shown = result["coverage"]["ever_shown_at_10"]
        rows.append(
            [
                result["retriever_id"],
                f"{metrics['ndcg_at_k']['10']:.4f}",
                f"{logged['ndcg_at_k']['10']:.4f}",
                "-" if shown is None else f"{shown:.2f}",
                f"{comparison['effect']['delta']:+.4f}" if comparison else "baseline",
                _interval(comparison),
                _p(comparison),
                comparison["verdict"] if comparison else "-",
                f"{metrics['recall_at_k']['10']:.4f}",
                f"{metrics['mean_rank_clicked']:.2f}",
                f"{metrics['sessions_improved']}/{metrics['sessions_degraded']}/{metrics['sessions_neutral']}",
                result["failed_sessions"],
                f"{result['latency']['p50_ms']:.2f}",
            ]
        )
    print(
        format_table(
            [
                "pipeline",
                "NDCG@10",
                "logged-order NDCG@10",
                "ever shown@10",
                "delta",
                "95% CI",
                "p",
                "verdict",
                "recall@10",
                "mean rank clicked",
                "improved/degraded/neutral",
                "failed",
                "p50 ms",
            ],
            rows,
        )
    )
    print()
    print(record["comparison"]["recommendation"])
    print(f"Full record:  eval-pipelines benchmark get {record['benchmark_id']}")


def run_demo_evaluations(paths: DataPaths) -> list[dict]:
    """demo_prod, demo_better and demo_worse on the demo-judgments ground truth, run in this process."""
    from eval_pipelines.cli.run_in_process import run_evaluation_here

    progress(f"Evaluating {', '.join(DEMO_EVALUATED)} on {DEMO_DATASET} ...")
    return [
        run_evaluation_here(
            paths,
            parse_evaluation_request(
                {"retriever_id": retriever_id, "dataset_name": DEMO_DATASET}, paths
            ),
            new_evaluation_id(),
            progress,
        )
        for retriever_id in DEMO_EVALUATED
    ]


def print_evaluation_summary(records: list[dict]) -> None:
    print(f"Evaluations on {DEMO_DATASET} (ground truth, trec_eval definitions)")
    rows = []
    for record in records:
        if record["status"] != "completed":
            rows.append(
                [
                    record["retriever_id"],
                    record["status"],
                    record["error_message"] or "",
                    "",
                    "",
                    "",
                    "",
                    "",
                ]
            )
            continue
        at10 = record["metrics_by_k"]["10"]
        rows.append(
            [
                record["retriever_id"],
                f"{at10['ndcg']:.4f}",
                f"{at10['precision']:.4f}",
                f"{at10['recall']:.4f}",
                f"{record['overall_metrics']['map']:.4f}",
                f"{record['overall_metrics']['mrr']:.4f}",
                f"{at10['judged']:.4f}",
                f"{record['evaluated_queries']}/{record['total_queries']}",
            ]
        )
    print(
        format_table(
            ["retriever", "NDCG@10", "P@10", "recall@10", "MAP", "MRR", "judged@10", "evaluated"],
            rows,
        )
    )
    if records:
        print(f"Full record:  eval-pipelines evaluation get {records[0]['evaluation_id']}")
