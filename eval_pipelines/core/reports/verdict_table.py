"""The verdict table of a benchmark record and the value table of an evaluation record.

One definition of rows and typed columns serves every view (the CLI summary, the Dagster table
metadata, reports), so they cannot disagree about which numbers a record holds. Rows carry the
record's numbers unrounded; a view rounds them for reading.

A benchmark tests each candidate once, on NDCG@10 (the primary test): its interval, p-values, effect
size and MDE sit on that row (`tested` true) and are None on the other metric x k rows, which hold
mean paired deltas only. The verdict, its reasons, the failure rate and latency describe the
candidate, so every row of the candidate carries them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PRIMARY_METRIC = "ndcg"
PRIMARY_K = 10
BENCHMARK_METRICS = (("ndcg", "ndcg_at_k", "ndcg_delta"), ("recall", "recall_at_k", "recall_delta"))


@dataclass(frozen=True)
class Column:
    """A column: name, type ("str", "int", "float" or "bool": Python's names, which the Dagster
    layer maps to its TableColumn types) and what it means."""

    name: str
    type: str
    description: str


VERDICT_COLUMNS: tuple[Column, ...] = (
    Column("candidate_retriever_id", "str", "the candidate compared with the baseline"),
    Column("metric", "str", "the metric of this row (ndcg or recall)"),
    Column("k", "int", "the cutoff of the metric"),
    Column("baseline_value", "float", "the baseline's metric@k over its scored sessions"),
    Column("candidate_value", "float", "the candidate's metric@k over its scored sessions"),
    Column(
        "delta",
        "float",
        "candidate - baseline: on the tested row the tested estimate (failures count as 0), on"
        " the others the mean paired difference over sessions both scored",
    ),
    Column("tested", "bool", "true on the row the candidate was tested on (NDCG@10)"),
    Column("ci_low", "float", "lower end of the tested delta's confidence interval"),
    Column("ci_high", "float", "upper end of the tested delta's confidence interval"),
    Column("p_value", "float", "raw p-value of the tested delta"),
    Column("p_value_holm", "float", "p-value after Holm correction across the candidates"),
    Column("effect_size", "float", "standardized effect: the tested delta over its spread"),
    Column("mde", "float", "minimum detectable effect at the record's power and alpha"),
    Column("verdict", "str", "the candidate's verdict (better, worse, not_testable, ...)"),
    Column("reasons", "str", "why that verdict, the record's reasons joined by '; '"),
    Column("failure_rate", "float", "share of the candidate's sessions whose replay failed"),
    Column("latency_p50_ms", "float", "the candidate's median latency per query, ms"),
)

EVALUATION_COLUMNS: tuple[Column, ...] = (
    Column("retriever_id", "str", "the evaluated retriever"),
    Column("measure", "str", "the trec_eval measure (precision, recall, f1, map, ndcg, mrr, ...)"),
    Column("k", "int", "the cutoff of the measure"),
    Column("value", "float", "the measure@k averaged over the evaluated queries"),
)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _by_k(values: dict[str, Any] | None, k: str) -> float | None:
    return _number((values or {}).get(k))


def _cutoffs(*mappings: dict[str, Any] | None) -> list[str]:
    keys = {key for mapping in mappings for key in (mapping or {})}
    return sorted(keys, key=int)


TESTED_FIELDS = ("ci_low", "ci_high", "p_value", "p_value_holm", "effect_size", "mde")


def _test_fields(item: dict[str, Any]) -> dict[str, float | None]:
    """The candidate's primary test as the record holds it (None for what an older record lacks)."""
    effect = item.get("effect") or {}
    interval = item.get("confidence_interval") or [None, None]
    return {
        "ci_low": _number(interval[0]),
        "ci_high": _number(interval[1]),
        "p_value": _number(item.get("p_value")),
        "p_value_holm": _number(item.get("p_value_adjusted")),
        "effect_size": _number(effect.get("standardized")),
        "mde": _number(effect.get("minimum_detectable_effect")),
    }


def _candidate_rows(
    item: dict[str, Any], baseline: dict[str, Any], candidate: dict[str, Any]
) -> list[dict[str, Any]]:
    tests = _test_fields(item)
    untested = dict.fromkeys(TESTED_FIELDS)
    tested_delta = (item.get("effect") or {}).get("delta")
    shared = {
        "verdict": item.get("verdict"),
        "reasons": "; ".join(item.get("verdict_reasons") or []),
        "failure_rate": _number((item.get("failures") or {}).get("candidate_rate")),
        "latency_p50_ms": _number((candidate.get("latency") or {}).get("p50_ms")),
    }
    rows = []
    for metric, values_key, delta_key in BENCHMARK_METRICS:
        baseline_values = (baseline.get("metrics") or {}).get(values_key)
        candidate_values = (candidate.get("metrics") or {}).get(values_key)
        deltas = item.get(delta_key)
        for k in _cutoffs(deltas, candidate_values):
            tested = metric == PRIMARY_METRIC and int(k) == PRIMARY_K
            delta = _by_k(deltas, k)
            if tested and tested_delta is not None:
                delta = float(tested_delta)
            rows.append(
                {
                    "candidate_retriever_id": item["candidate_retriever_id"],
                    "metric": metric,
                    "k": int(k),
                    "baseline_value": _by_k(baseline_values, k),
                    "candidate_value": _by_k(candidate_values, k),
                    "delta": delta,
                    "tested": tested,
                    **(tests if tested else untested),
                    **shared,
                }
            )
    return rows


def verdict_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per candidate x metric x k the record compares; none before the record completes."""
    comparison = record.get("comparison") or {}
    results = {result["retriever_id"]: result for result in record.get("results") or []}
    baseline = results.get(comparison.get("baseline_retriever_id") or "", {})
    return [
        row
        for item in comparison.get("comparisons") or []
        for row in _candidate_rows(item, baseline, results.get(item["candidate_retriever_id"], {}))
    ]


def evaluation_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per measure x k of the record's `metrics_by_k`; none before it completes."""
    by_k = record.get("metrics_by_k") or {}
    return [
        {
            "retriever_id": record.get("retriever_id"),
            "measure": measure,
            "k": int(k),
            "value": _number(value),
        }
        for k in sorted(by_k, key=int)
        for measure, value in by_k[k].items()
    ]
