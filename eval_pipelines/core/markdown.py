"""Markdown tables for asset metadata: the per-retriever and per-k summaries the UI shows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pyarrow as pa


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def replays_table(replays: pa.Table) -> str:
    """Calls, and their mean latency, per retriever and status."""
    grouped = replays.group_by(["retriever_id", "status"]).aggregate(
        [("latency_ms", "mean"), ("latency_ms", "count")]
    )
    rows = sorted(grouped.to_pylist(), key=lambda r: (r["retriever_id"], r["status"]))
    return markdown_table(
        ["retriever", "status", "calls", "mean ms"],
        [
            (r["retriever_id"], r["status"], r["latency_ms_count"], f"{r['latency_ms_mean']:.2f}")
            for r in rows
        ],
    )


def results_table(results: list[dict[str, Any]]) -> str:
    """NDCG@10, recall@10, failures and median latency per retriever of a benchmark."""
    return markdown_table(
        ["retriever", "NDCG@10", "recall@10", "failed", "p50 ms"],
        [
            (
                result["retriever_id"],
                f"{result['metrics']['ndcg_at_k'].get('10', math.nan):.4f}",
                f"{result['metrics']['recall_at_k'].get('10', math.nan):.4f}",
                result["failed_sessions"],
                f"{result['latency']['p50_ms']:.2f}",
            )
            for result in results
        ],
    )


def metrics_by_k_table(summary: dict[str, Any], metrics: Sequence[str]) -> str:
    """An evaluation's means per k, then uncut ("all"); "-" where a metric has no value."""
    by_k = [*summary["metrics_by_k"].items(), ("all", summary["overall_metrics"])]
    return markdown_table(
        ["k", *metrics],
        [(k, *(_cell(values.get(m)) for m in metrics)) for k, values in by_k],
    )


def _cell(value: float | None) -> str:
    """A mean, or "-" for a metric with no value at that k (judged@k has no uncut value)."""
    return "-" if value is None else f"{value:.4f}"
