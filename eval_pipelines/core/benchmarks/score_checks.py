"""Checks on a benchmark's session scores and comparison: values in range, pairs counted right."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.findings import Finding

UNIT_INTERVAL_PREFIXES = ("ndcg_at_", "recall_at_", "logged_ndcg_at_")
COUNT_COLUMNS = ("interacted_count", "clicked_count", "purchased_count", "promoted", "demoted")


def out_of_range(scores: pa.Table) -> Finding:
    """NDCG and recall lie in [0, 1], counts are >= 0: the number of values outside, per column."""
    problems = {}
    for name in scores.column_names:
        column = scores.column(name)
        if name.startswith(UNIT_INTERVAL_PREFIXES):
            outside = pc.or_(pc.less(column, 0.0), pc.greater(column, 1.0 + 1e-9))
        elif name in COUNT_COLUMNS:
            outside = pc.less(column, 0)
        else:
            continue
        if bad := pc.sum(outside).as_py() or 0:
            problems[name] = bad
    return Finding(
        passed=not problems,
        description="every metric within its range"
        if not problems
        else f"values out of range in {', '.join(sorted(problems))}",
        metadata={"out_of_range": problems},
    )


def paired_counts(
    scores: pa.Table, retriever_ids: tuple[str, ...], comparison: dict[str, Any]
) -> Finding:
    """Each candidate's paired sessions = sessions both it and the baseline replayed successfully."""
    completed = scores.filter(pc.equal(scores.column("status"), "completed"))
    replayed = {
        retriever_id: set(
            completed.filter(pc.equal(completed.column("retriever_id"), retriever_id))
            .column("execution_id")
            .to_pylist()
        )
        for retriever_id in retriever_ids
    }
    baseline = replayed[retriever_ids[0]]
    counts = {
        item["candidate_retriever_id"]: {
            "expected": len(baseline & replayed[item["candidate_retriever_id"]]),
            "reported": item["paired_sessions"],
        }
        for item in comparison["comparisons"]
    }
    consistent = all(c["expected"] == c["reported"] for c in counts.values())
    return Finding(
        passed=consistent,
        description="paired sessions counted right"
        if consistent
        else "a candidate's paired sessions differ from the sessions both replayed",
        metadata={"paired_sessions": counts},
    )
