"""Sample health: what a benchmark's asset checks look at before anyone reads its verdicts.

- Every sampled session replayed exactly once by every pipeline (else the pairing is broken and no
  statistic can be trusted: a blocking check).
- Every pipeline answered at least one session (one that failed on every session leaves its side of
  each comparison empty, and the failure-rate check, relative to the baseline, cannot see a failed
  baseline: an error). Evaluations ask the same of their retriever, per query.
- The baseline, replayed today, reproduces the ranking users saw (else the index or ranker drifted
  and interaction metrics are biased toward the logged ranking: a warning).
- Failure rates within the tolerance, and enough queries for query-level inference (warnings that
  explain why a verdict may be not_testable or worse).
- The position-bias correction was used (or the logged order was asked for), and every candidate's
  top 10 has evidence in the logs (warnings that say what a verdict could not see).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.findings import Finding
from eval_pipelines.core.metrics.agreement import top_k_overlap
from eval_pipelines.core.retrieval.execution import COMPLETED

# A production baseline replayed over its own logs should keep most of what users saw.
MIN_BASELINE_AGREEMENT = 0.7


def replay_coverage(sessions: pa.Table, replays: pa.Table, retriever_ids: Sequence[str]) -> Finding:
    """Each (sampled session, retriever) has exactly one replay row, and no row is of another."""
    expected = set(sessions.column("execution_id").to_pylist())
    problems: dict[str, dict[str, int]] = {}
    for retriever_id in retriever_ids:
        rows = replays.filter(pc.equal(replays.column("retriever_id"), retriever_id))
        ids = rows.column("execution_id").to_pylist()
        seen = set(ids)
        missing, extra, repeated = len(expected - seen), len(seen - expected), len(ids) - len(seen)
        if missing or extra or repeated:
            problems[retriever_id] = {"missing": missing, "unknown": extra, "repeated": repeated}
    stray = len(replays) - sum(
        pc.sum(pc.equal(replays.column("retriever_id"), r)).as_py() or 0 for r in retriever_ids
    )
    if stray:
        problems["(other pipelines)"] = {"rows": stray}
    description = (
        f"every one of {len(expected)} sessions replayed once by each of {len(retriever_ids)}"
        " pipelines"
        if not problems
        else "replays do not pair up with the sample: "
        + "; ".join(f"{p}: {v}" for p, v in sorted(problems.items()))
    )
    return Finding(not problems, description, {"problems": problems})


def every_pipeline_answered(
    statuses: Mapping[str, pa.Array | pa.ChunkedArray], units: str
) -> Finding:
    """Each pipeline's calls (a status per session or query, `units` naming which) include a
    completed one.

    A pipeline given nothing to answer has not failed: the checks on the sample say why it is empty.
    """
    counts = {
        pipeline_id: {
            units: len(column),
            "answered": int(pc.sum(pc.equal(column, COMPLETED)).as_py() or 0),
        }
        for pipeline_id, column in statuses.items()
    }
    failed = {p: c[units] for p, c in counts.items() if c[units] and not c["answered"]}
    description = (
        f"every pipeline answered at least one of its {units}"
        if not failed
        else f"failed on every one of its {units}, so not one of its rankings can be scored: "
        + ", ".join(f"{p} ({n} of {n} {units} failed)" for p, n in sorted(failed.items()))
    )
    return Finding(
        not failed, description, {"calls": counts, f"failed_on_every_one_of_its_{units}": failed}
    )


def replay_statuses(replays: pa.Table, retriever_ids: Sequence[str]) -> dict[str, pa.ChunkedArray]:
    """Each pipeline's replay statuses, one per session it replayed."""
    return {
        retriever_id: replays.filter(pc.equal(replays.column("retriever_id"), retriever_id)).column(
            "status"
        )
        for retriever_id in retriever_ids
    }


def baseline_agreement(sessions: pa.Table, replays: pa.Table, baseline_id: str) -> Finding:
    """The share of the logged top 10 that the baseline's replays keep in their own top 10."""
    rows = replays.filter(
        pc.and_(
            pc.equal(replays.column("retriever_id"), baseline_id),
            pc.equal(replays.column("status"), "completed"),
        )
    )
    index = pc.index_in(rows.column("execution_id"), value_set=sessions.column("execution_id"))
    logged = sessions.column("logged_documents").take(index)
    overlap = top_k_overlap(rows.column("ranking"), logged, 10)
    known = overlap[~np.isnan(overlap)]
    if not known.size:
        return Finding(True, "no completed baseline replay to compare with the logs", {})
    mean = float(known.mean())
    description = (
        f"{baseline_id} replayed today keeps {100 * mean:.0f}% of the logged top 10 on average"
        f" ({known.size} sessions; warning below {100 * MIN_BASELINE_AGREEMENT:.0f}%)"
    )
    metadata = {
        "mean_overlap_at_10": mean,
        "sessions_below_half": int((known < 0.5).sum()),
        "sessions": int(known.size),
    }
    return Finding(mean >= MIN_BASELINE_AGREEMENT, description, metadata)


def failure_rates(comparison: dict[str, Any]) -> Finding:
    """Each candidate's failure rate against the baseline's, with the tolerance that bars promotion."""
    rates = {item["candidate_retriever_id"]: item["failures"] for item in comparison["comparisons"]}
    over = {
        candidate: failures
        for candidate, failures in rates.items()
        if failures["candidate_rate"] - failures["baseline_rate"] > failures["tolerance"]
    }
    description = (
        "every candidate's failure rate is within the tolerance of the baseline's"
        if not over
        else "failing more often than the baseline beyond the tolerance (never promoted): "
        + ", ".join(
            f"{c} {100 * f['candidate_rate']:.1f}% vs {100 * f['baseline_rate']:.1f}%"
            for c, f in sorted(over.items())
        )
    )
    return Finding(not over, description, {"failure_rates": rates})


def query_clusters(comparison: dict[str, Any], minimum: int) -> Finding:
    """Enough queries (clusters) for each comparison's inference."""
    clusters = {
        item["candidate_retriever_id"]: item["inference"]["clusters"]
        for item in comparison["comparisons"]
    }
    short = {c: n for c, n in clusters.items() if n < minimum}
    description = (
        f"each comparison has at least {minimum} queries"
        if not short
        else f"fewer than {minimum} queries (not testable): "
        + ", ".join(f"{c} {n}" for c, n in sorted(short.items()))
    )
    return Finding(not short, description, {"clusters": clusters, "minimum": minimum})


def position_bias_corrected(comparison: dict[str, Any]) -> Finding:
    """The verdicts were reached with the counterfactual estimator, or the record says why not."""
    estimator = comparison["estimator"]
    corrected = estimator["used"] == "counterfactual"
    chosen = estimator["requested"] == "logged_order"
    description = (
        "candidates judged by what users would have done (counterfactual estimator)"
        if corrected
        else f"judged in the logged order, biased toward copying the logged page: {estimator['reason']}"
    )
    return Finding(corrected or chosen, description, {"estimator": estimator})


def candidate_coverage(comparison: dict[str, Any], minimum: float) -> Finding:
    """Each candidate's top 10 has evidence in the logs: below the minimum it is not testable."""
    seen = {
        item["candidate_retriever_id"]: item["coverage"]["candidate"]["ever_shown_at_10"]
        for item in comparison["comparisons"]
    }
    low = {c: share for c, share in seen.items() if share is not None and share < minimum}
    description = (
        f"every candidate's top 10 was at least {100 * minimum:g}% shown for these queries"
        if not low
        else "mostly never shown for these queries (not testable; run an evaluation with"
        " judgments): " + ", ".join(f"{c} {100 * v:.0f}%" for c, v in sorted(low.items()))
    )
    return Finding(not low, description, {"ever_shown_at_10": seen, "min_coverage": minimum})
