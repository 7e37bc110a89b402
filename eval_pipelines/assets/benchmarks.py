"""Benchmark assets, partitioned by benchmark id: sessions -> replays -> session scores -> comparison.

Each step records its stage in the benchmark's record as it starts; the comparison writes the
completed record.
"""

import warnings
from functools import partial
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    BetaWarning,
    MaterializeResult,
    MetadataValue,
    asset,
)

from eval_pipelines.assets.checks import check_result
from eval_pipelines.assets.inputs import collections, interaction_logs, retriever_configs
from eval_pipelines.assets.recording import recorded_step
from eval_pipelines.assets.tables import table_metadata
from eval_pipelines.core.benchmarks.comparison import PipelineInfo, benchmark_results
from eval_pipelines.core.benchmarks.estimators import LOGGED_ORDER
from eval_pipelines.core.benchmarks.evidence import sample_evidence
from eval_pipelines.core.benchmarks.health import (
    baseline_agreement,
    candidate_coverage,
    every_pipeline_answered,
    failure_rates,
    position_bias_corrected,
    query_clusters,
    replay_coverage,
    replay_statuses,
)
from eval_pipelines.core.benchmarks.record import REPLAY_ENGINE
from eval_pipelines.core.benchmarks.replay import (
    default_replay_deadline_s,
    discard_replay_chunks,
    replay,
)
from eval_pipelines.core.benchmarks.request import BenchmarkRequest
from eval_pipelines.core.benchmarks.sampling import sample_sessions
from eval_pipelines.core.benchmarks.score_checks import out_of_range, paired_counts
from eval_pipelines.core.benchmarks.scoring import score_benchmark
from eval_pipelines.core.benchmarks.submit import BENCHMARK_RECORDS, load_request
from eval_pipelines.core.logs import find_duplicate_ids
from eval_pipelines.core.markdown import replays_table, results_table
from eval_pipelines.core.progress import ProgressOutput
from eval_pipelines.core.records import with_record_id
from eval_pipelines.core.reports.html.sources import REPORT_FILE
from eval_pipelines.core.reports.verdict_table import VERDICT_COLUMNS, verdict_rows
from eval_pipelines.core.retrieval.registry import load_retriever_registry
from eval_pipelines.core.table_names import (
    CLICK_MODEL_FACT,
    REPLAYS,
    SESSION_EVIDENCE,
    SESSION_INTERACTIONS,
    SESSION_SCORES,
    SESSIONS,
)
from eval_pipelines.partitions import benchmark_partitions
from eval_pipelines.resources import DataDirResource
from eval_pipelines.resources.replay_engine import ReplayEngineResource

GROUP = "benchmark"
# Every asset of the kind: one partition per request, in the kind's group.
partition_asset = partial(asset, partitions_def=benchmark_partitions, group_name=GROUP)


def with_replay_engine(**kwargs: Any) -> Any:
    """partition_asset with ReplayEngineResource bound to the asset, not in definitions.py, so
    every door that materializes with data_dir alone (--wait, rerun, tests) still replays, and a
    run's config may set it (resources.replay_engine). Dagster calls resource_defs beta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        return partition_asset(resource_defs={"replay_engine": ReplayEngineResource()}, **kwargs)


def benchmark_labels(request: BenchmarkRequest) -> dict[str, str]:
    """What a person knows a benchmark by: Dagster lists its partitions by id only, so every
    step's materialization and the run's tags carry its name."""
    return {"benchmark_name": request.benchmark_name}


@partition_asset(
    deps=[interaction_logs],
    description="Sessions sampled from the logs by the request's filter and strategy (DuckDB SQL).",
    check_specs=[
        AssetCheckSpec("sampled_count_matches_request", asset="benchmark_sessions", blocking=True),
        AssetCheckSpec("no_duplicate_sessions", asset="benchmark_sessions", blocking=True),
    ],
)
def benchmark_sessions(
    context: AssetExecutionContext, data_dir: DataDirResource
) -> MaterializeResult:
    with recorded_step(context, BENCHMARK_RECORDS, data_dir) as (paths, benchmark_id, store):
        request = load_request(paths, benchmark_id)
        sample = sample_sessions(
            paths, request.sampling_filter, request.session_count, request.seed
        )
        for warning in sample.warnings:
            context.log.warning(warning)
        found = sample_evidence(paths, request, sample.sessions)
        if found.choice.reason and request.estimator != LOGGED_ORDER:
            context.log.warning(f"estimator {found.choice.used}: {found.choice.reason}")
        store.write_table(
            benchmark_id,
            SESSIONS,
            with_record_id(sample.sessions, "benchmark_id", benchmark_id),
            facts={**sample.facts(), CLICK_MODEL_FACT: found.click_model},
        )
        store.write_table(benchmark_id, SESSION_EVIDENCE, found.evidence)
        store.write_table(
            benchmark_id,
            SESSION_INTERACTIONS,
            with_record_id(sample.interactions, "benchmark_id", benchmark_id),
        )
        sampled = sample.sessions.num_rows
        expected = min(request.session_count, sample.matched)
        duplicates = find_duplicate_ids(paths, "executions", sample.sessions.column("execution_id"))
        if not duplicates.passed:
            context.log.error(duplicates.describe())
    return MaterializeResult(
        metadata={
            **benchmark_labels(request),
            "sessions_sampled": sampled,
            "sessions_requested": request.session_count,
            "sessions_matched": sample.matched,
            "strategy": sample.strategy,
            "seed": sample.seed,
            "warnings": MetadataValue.json(sample.warnings),
            "allocation": MetadataValue.json(sample.allocation or {}),
            "estimator": found.choice.used,
            "estimator_reason": found.choice.reason or "",
            "click_model_id": found.click_model["model_id"],
            "query_document_pairs_with_evidence": found.evidence.num_rows,
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


@with_replay_engine(
    deps=[benchmark_sessions, retriever_configs, collections],
    description="Each session's query replayed through the baseline and every candidate.",
    check_specs=[
        AssetCheckSpec(
            "every_session_replayed_by_every_pipeline", asset="benchmark_replays", blocking=True
        ),
        AssetCheckSpec("baseline_reproduces_logged_rankings", asset="benchmark_replays"),
        AssetCheckSpec("every_pipeline_answered_a_session", asset="benchmark_replays"),
    ],
)
def benchmark_replays(
    context: AssetExecutionContext,
    data_dir: DataDirResource,
    replay_engine: ReplayEngineResource,
) -> MaterializeResult:
    with recorded_step(context, BENCHMARK_RECORDS, data_dir) as (paths, benchmark_id, store):
        request = load_request(paths, benchmark_id)
        sessions = store.read_table(benchmark_id, SESSIONS)
        configs = load_retriever_registry(paths).require(request.retriever_ids)
        deadline_s = default_replay_deadline_s(
            sessions.num_rows, [configs[pid] for pid in request.retriever_ids]
        )
        chunks = paths.benchmark_replay_chunks_dir(benchmark_id)
        replayed = replay(
            paths,
            benchmark_id,
            sessions,
            request.retriever_ids,
            request.replay_depth,
            ProgressOutput.to_log(context.log.info),
            resume_dir=chunks,
            deadline_s=deadline_s,
            engine=replay_engine.choice(),
        )
        replays = replayed.table
        store.write_table(benchmark_id, REPLAYS, replays, facts={REPLAY_ENGINE: replayed.engine})
        # Chunks only serve to resume an unfinished replay: a later materialization replays afresh.
        discard_replay_chunks(chunks)
        data_dir.refresh_views()
    return MaterializeResult(
        metadata={
            **benchmark_labels(request),
            "rows": replays.num_rows,
            "replay_deadline_s": deadline_s,
            "replay_engine": MetadataValue.json(replayed.engine),
            "replays": MetadataValue.md(replays_table(replays)),
        },
        check_results=[
            check_result(
                "every_session_replayed_by_every_pipeline",
                replay_coverage(sessions, replays, request.retriever_ids),
                AssetCheckSeverity.ERROR,
            ),
            check_result(
                "baseline_reproduces_logged_rankings",
                baseline_agreement(sessions, replays, request.baseline_retriever_id),
                AssetCheckSeverity.WARN,
            ),
            check_result(
                "every_pipeline_answered_a_session",
                every_pipeline_answered(
                    replay_statuses(replays, request.retriever_ids), "sessions"
                ),
                AssetCheckSeverity.ERROR,
            ),
        ],
    )


@partition_asset(
    deps=[benchmark_replays],
    description="Alignment metrics per session and pipeline, vectorized over all sessions.",
    check_specs=[AssetCheckSpec("metrics_within_range", asset="benchmark_session_scores")],
)
def benchmark_session_scores(
    context: AssetExecutionContext, data_dir: DataDirResource
) -> MaterializeResult:
    with recorded_step(context, BENCHMARK_RECORDS, data_dir) as (paths, benchmark_id, store):
        request = load_request(paths, benchmark_id)
        choice = request.estimator_choice(
            store.read_facts(benchmark_id, SESSIONS).get(CLICK_MODEL_FACT)
        )
        scores = score_benchmark(
            request,
            store.read_table(benchmark_id, SESSIONS),
            store.read_table(benchmark_id, SESSION_INTERACTIONS),
            store.read_table(benchmark_id, REPLAYS),
            choice,
            store.read_table(benchmark_id, SESSION_EVIDENCE),
        )
        store.write_table(benchmark_id, SESSION_SCORES, scores)
    return MaterializeResult(
        metadata={**benchmark_labels(request), "rows": scores.num_rows, "estimator": choice.used},
        check_results=[
            check_result("metrics_within_range", out_of_range(scores), AssetCheckSeverity.ERROR)
        ],
    )


@partition_asset(
    deps=[benchmark_session_scores],
    description="Per-pipeline results and the paired comparison with the baseline; completes the"
    " benchmark's record.",
    check_specs=[
        AssetCheckSpec("paired_counts_consistent", asset="benchmark_comparison"),
        AssetCheckSpec("failure_rates_within_tolerance", asset="benchmark_comparison"),
        AssetCheckSpec("enough_queries_for_inference", asset="benchmark_comparison"),
        AssetCheckSpec("position_bias_corrected", asset="benchmark_comparison"),
        AssetCheckSpec("candidates_covered_by_the_logs", asset="benchmark_comparison"),
    ],
)
def benchmark_comparison(
    context: AssetExecutionContext, data_dir: DataDirResource
) -> MaterializeResult:
    with recorded_step(context, BENCHMARK_RECORDS, data_dir) as (paths, benchmark_id, store):
        request = load_request(paths, benchmark_id)
        scores = store.read_table(benchmark_id, SESSION_SCORES)
        configs = load_retriever_registry(paths).require(request.retriever_ids)
        pipelines = [
            PipelineInfo(pid, configs[pid].name, configs[pid].pipeline_hash)
            for pid in request.retriever_ids
        ]
        sample = store.read_facts(benchmark_id, SESSIONS)
        choice = request.estimator_choice(sample.get(CLICK_MODEL_FACT))
        results, comparison = benchmark_results(
            scores,
            pipelines,
            epsilon=request.epsilon,
            settings=request.inference_settings,
            choice=choice,
        )
        outcome = {
            "results": results,
            "comparison": comparison,
            "sessions_sampled": sample["sampled"],
            "sessions_matched": sample["matched"],
            "warnings": sample["warnings"],
            REPLAY_ENGINE: store.read_facts(benchmark_id, REPLAYS).get(REPLAY_ENGINE),
        }
        data_dir.refresh_views()
        record = BENCHMARK_RECORDS.completed(paths, benchmark_id, outcome, context.run.run_id)
    return MaterializeResult(
        metadata={
            **benchmark_labels(request),
            "verdict_table": table_metadata(VERDICT_COLUMNS, verdict_rows(record)),
            "report": MetadataValue.path(str(store.folder(benchmark_id) / REPORT_FILE)),
            "pipelines": MetadataValue.md(results_table(results)),
            "recommendation": comparison.get("recommendation") or "",
            "estimator": MetadataValue.json(comparison["estimator"]),
            "verdicts": MetadataValue.json(
                {
                    item["candidate_retriever_id"]: {
                        "verdict": item["verdict"],
                        "reasons": item["verdict_reasons"],
                        "coverage": item["coverage"]["candidate"],
                    }
                    for item in comparison["comparisons"]
                }
            ),
        },
        check_results=[
            check_result(
                "paired_counts_consistent",
                paired_counts(scores, request.retriever_ids, comparison),
                AssetCheckSeverity.ERROR,
            ),
            check_result(
                "failure_rates_within_tolerance", failure_rates(comparison), AssetCheckSeverity.WARN
            ),
            check_result(
                "enough_queries_for_inference",
                query_clusters(comparison, request.min_clusters),
                AssetCheckSeverity.WARN,
            ),
            check_result(
                "position_bias_corrected",
                position_bias_corrected(comparison),
                AssetCheckSeverity.WARN,
            ),
            check_result(
                "candidates_covered_by_the_logs",
                candidate_coverage(comparison, request.min_coverage),
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
