"""Benchmark assets, partitioned by benchmark id: sessions -> replays -> session scores -> comparison."""

import math

import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from eval_pipelines.core.benchmarks.comparison import PipelineInfo, benchmark_results
from eval_pipelines.core.benchmarks.health import (
    Finding,
    baseline_agreement,
    failure_rates,
    query_clusters,
    replay_coverage,
)
from eval_pipelines.core.benchmarks.replay import (
    default_replay_deadline_s,
    discard_replay_chunks,
    replay_sessions,
)
from eval_pipelines.core.benchmarks.sampling import sample_sessions
from eval_pipelines.core.benchmarks.scoring import score_benchmark
from eval_pipelines.core.benchmarks.submit import OUTCOME, SAMPLE, load_request
from eval_pipelines.core.benchmarks.submit import benchmark_store as store
from eval_pipelines.core.logs import find_duplicate_ids
from eval_pipelines.core.records import with_record_id
from eval_pipelines.core.retrieval.registry import load_retriever_registry
from eval_pipelines.partitions import benchmark_partitions
from eval_pipelines.resources import DataDirResource

GROUP = "benchmark"


@asset(
    partitions_def=benchmark_partitions,
    group_name=GROUP,
    description="Sessions sampled from the logs by the request's filter and strategy (DuckDB SQL).",
    check_specs=[
        AssetCheckSpec("sampled_count_matches_request", asset="benchmark_sessions", blocking=True),
        AssetCheckSpec("no_duplicate_sessions", asset="benchmark_sessions", blocking=True),
    ],
)
def benchmark_sessions(
    context: AssetExecutionContext, data_dir: DataDirResource
) -> MaterializeResult:
    paths, benchmark_id = data_dir.paths, context.partition_key
    request = load_request(paths, benchmark_id)
    sample = sample_sessions(paths, request.sampling_filter, request.session_count, request.seed)
    for warning in sample.warnings:
        context.log.warning(warning)
    store(paths).write_table(
        benchmark_id, "sessions", with_record_id(sample.sessions, "benchmark_id", benchmark_id)
    )
    store(paths).write_table(
        benchmark_id,
        "session_interactions",
        with_record_id(sample.interactions, "benchmark_id", benchmark_id),
    )
    sampled = sample.sessions.num_rows
    store(paths).write_json(
        benchmark_id,
        SAMPLE,
        {
            "sampled": sampled,
            "requested": request.session_count,
            "matched": sample.matched,
            "strategy": sample.strategy,
            "seed": sample.seed,
            "warnings": sample.warnings,
            "allocation": sample.allocation,
        },
    )
    expected = min(request.session_count, sample.matched)
    duplicates = find_duplicate_ids(paths, "executions", sample.sessions.column("execution_id"))
    if not duplicates.passed:
        context.log.error(duplicates.describe())
    return MaterializeResult(
        metadata={
            "sessions_sampled": sampled,
            "sessions_requested": request.session_count,
            "sessions_matched": sample.matched,
            "strategy": sample.strategy,
            "seed": sample.seed,
            "warnings": MetadataValue.json(sample.warnings),
            "allocation": MetadataValue.json(sample.allocation or {}),
        },
        check_results=[
            AssetCheckResult(
                check_name="sampled_count_matches_request",
                passed=sampled == expected,
                metadata={"sampled": sampled, "expected": expected, "matched": sample.matched},
            ),
            AssetCheckResult(
                check_name="no_duplicate_sessions",
                passed=duplicates.passed,
                description=duplicates.describe(),
                metadata={
                    "sessions": sampled,
                    "distinct": duplicates.distinct,
                    "duplicated_execution_ids": duplicates.duplicated,
                    "stored_in": MetadataValue.json(duplicates.stored),
                },
            ),
        ],
    )


@asset(
    partitions_def=benchmark_partitions,
    group_name=GROUP,
    deps=[benchmark_sessions],
    description="Each session's query replayed through the baseline and every candidate.",
    check_specs=[
        AssetCheckSpec(
            "every_session_replayed_by_every_pipeline", asset="benchmark_replays", blocking=True
        ),
        AssetCheckSpec("baseline_reproduces_logged_rankings", asset="benchmark_replays"),
    ],
)
def benchmark_replays(
    context: AssetExecutionContext, data_dir: DataDirResource
) -> MaterializeResult:
    paths, benchmark_id = data_dir.paths, context.partition_key
    request = load_request(paths, benchmark_id)
    sessions = store(paths).read_table(benchmark_id, "sessions")
    configs = load_retriever_registry(paths).require(request.pipeline_ids)
    deadline_s = default_replay_deadline_s(
        sessions.num_rows, [configs[pid] for pid in request.pipeline_ids]
    )
    replays = replay_sessions(
        paths,
        benchmark_id,
        sessions,
        request.pipeline_ids,
        request.replay_depth,
        context.log.info,
        resume_dir=paths.benchmark_replay_chunks_dir(benchmark_id),
        deadline_s=deadline_s,
    )
    store(paths).write_table(benchmark_id, "replays", replays)
    # Chunks only serve to resume an unfinished replay: a later materialization replays afresh.
    discard_replay_chunks(paths.benchmark_replay_chunks_dir(benchmark_id))
    data_dir.refresh_views()
    per_pipeline = replays.group_by(["pipeline_id", "status"]).aggregate(
        [("latency_ms", "mean"), ("latency_ms", "count")]
    )
    lines = ["| pipeline | status | calls | mean ms |", "|---|---|---|---|"]
    for row in sorted(per_pipeline.to_pylist(), key=lambda r: (r["pipeline_id"], r["status"])):
        lines.append(
            f"| {row['pipeline_id']} | {row['status']} | {row['latency_ms_count']} | {row['latency_ms_mean']:.2f} |"
        )
    return MaterializeResult(
        metadata={
            "rows": replays.num_rows,
            "replay_deadline_s": deadline_s,
            "replays": MetadataValue.md("\n".join(lines)),
        },
        check_results=[
            _check(
                "every_session_replayed_by_every_pipeline",
                replay_coverage(sessions, replays, request.pipeline_ids),
                AssetCheckSeverity.ERROR,
            ),
            _check(
                "baseline_reproduces_logged_rankings",
                baseline_agreement(sessions, replays, request.baseline_retriever_id),
                AssetCheckSeverity.WARN,
            ),
        ],
    )


def _check(name: str, finding: Finding, severity: AssetCheckSeverity) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=name,
        passed=finding.passed,
        severity=severity,
        description=finding.description,
        metadata={
            key: MetadataValue.json(value) if isinstance(value, dict | list) else value
            for key, value in finding.metadata.items()
        },
    )


def _out_of_range(scores: pa.Table) -> dict[str, int]:
    """Count metric values outside their range: NDCG and recall in [0, 1], counts >= 0."""
    problems = {}
    for name in scores.column_names:
        column = scores.column(name)
        if name.startswith(("ndcg_at_", "recall_at_", "logged_ndcg_at_")):
            bad = pc.sum(pc.or_(pc.less(column, 0.0), pc.greater(column, 1.0 + 1e-9))).as_py() or 0
        elif name in (
            "interacted_count",
            "clicked_count",
            "purchased_count",
            "promoted",
            "demoted",
        ):
            bad = pc.sum(pc.less(column, 0)).as_py() or 0
        else:
            continue
        if bad:
            problems[name] = bad
    return problems


@asset(
    partitions_def=benchmark_partitions,
    group_name=GROUP,
    deps=[benchmark_replays],
    description="Alignment metrics per session and pipeline, vectorized over all sessions.",
    check_specs=[AssetCheckSpec("metrics_within_range", asset="benchmark_session_scores")],
)
def benchmark_session_scores(
    context: AssetExecutionContext, data_dir: DataDirResource
) -> MaterializeResult:
    paths, benchmark_id = data_dir.paths, context.partition_key
    request = load_request(paths, benchmark_id)
    scores = score_benchmark(
        request,
        store(paths).read_table(benchmark_id, "sessions"),
        store(paths).read_table(benchmark_id, "session_interactions"),
        store(paths).read_table(benchmark_id, "replays"),
    )
    store(paths).write_table(benchmark_id, "session_scores", scores)
    problems = _out_of_range(scores)
    return MaterializeResult(
        metadata={"rows": scores.num_rows},
        check_results=[
            AssetCheckResult(
                check_name="metrics_within_range",
                passed=not problems,
                severity=AssetCheckSeverity.ERROR,
                metadata={"out_of_range": MetadataValue.json(problems)},
            )
        ],
    )


def _paired_counts_consistent(scores: pa.Table, request, comparison: dict) -> tuple[bool, dict]:
    """Each candidate's paired sessions = sessions both it and the baseline replayed successfully."""
    ok = pc.equal(scores.column("status"), "completed")
    completed = scores.filter(ok)
    by_pipeline = {
        pid: set(
            completed.filter(pc.equal(completed.column("pipeline_id"), pid))
            .column("execution_id")
            .to_pylist()
        )
        for pid in request.pipeline_ids
    }
    baseline = by_pipeline[request.baseline_retriever_id]
    counts = {}
    consistent = True
    for item in comparison["comparisons"]:
        expected = len(baseline & by_pipeline[item["candidate_retriever_id"]])
        reported = item["paired_sessions"]
        counts[item["candidate_retriever_id"]] = {"expected": expected, "reported": reported}
        consistent &= expected == reported
    return consistent, counts


@asset(
    partitions_def=benchmark_partitions,
    group_name=GROUP,
    deps=[benchmark_session_scores],
    description="Per-pipeline results and the paired comparison with the baseline.",
    check_specs=[
        AssetCheckSpec("paired_counts_consistent", asset="benchmark_comparison"),
        AssetCheckSpec("failure_rates_within_tolerance", asset="benchmark_comparison"),
        AssetCheckSpec("enough_queries_for_inference", asset="benchmark_comparison"),
    ],
)
def benchmark_comparison(
    context: AssetExecutionContext, data_dir: DataDirResource
) -> MaterializeResult:
    paths, benchmark_id = data_dir.paths, context.partition_key
    request = load_request(paths, benchmark_id)
    scores = store(paths).read_table(benchmark_id, "session_scores")
    configs = load_retriever_registry(paths).require(request.pipeline_ids)
    pipelines = [
        PipelineInfo(pid, configs[pid].name, configs[pid].pipeline_hash)
        for pid in request.pipeline_ids
    ]
    results, comparison = benchmark_results(
        scores, pipelines, epsilon=request.epsilon, settings=request.inference_settings
    )
    sample = store(paths).read_json(benchmark_id, SAMPLE)
    outcome = {
        "results": results,
        "comparison": comparison,
        "sessions_sampled": sample["sampled"],
        "sessions_matched": sample["matched"],
        "warnings": sample["warnings"],
    }
    store(paths).write_json(benchmark_id, OUTCOME, outcome)
    data_dir.refresh_views()
    consistent, counts = _paired_counts_consistent(scores, request, comparison)
    lines = ["| pipeline | NDCG@10 | recall@10 | failed | p50 ms |", "|---|---|---|---|---|"]
    for result in results:
        metrics = result["metrics"]
        lines.append(
            f"| {result['retriever_id']} | {metrics['ndcg_at_k'].get('10', math.nan):.4f} | "
            f"{metrics['recall_at_k'].get('10', math.nan):.4f} | {result['failed_sessions']} | "
            f"{result['latency']['p50_ms']:.2f} |"
        )
    return MaterializeResult(
        metadata={
            "pipelines": MetadataValue.md("\n".join(lines)),
            "recommendation": comparison.get("recommendation") or "",
        },
        check_results=[
            AssetCheckResult(
                check_name="paired_counts_consistent",
                passed=consistent,
                metadata={"paired_sessions": MetadataValue.json(counts)},
            ),
            _check(
                "failure_rates_within_tolerance", failure_rates(comparison), AssetCheckSeverity.WARN
            ),
            _check(
                "enough_queries_for_inference",
                query_clusters(comparison, request.min_clusters),
                AssetCheckSeverity.WARN,
            ),
        ],
    )


benchmark_assets = [
    benchmark_sessions,
    benchmark_replays,
    benchmark_session_scores,
    benchmark_comparison,
]
