"""Human summaries of benchmark and evaluation records, for a terminal.

They print the verdict table's rows (verdict_table.py), rounded for reading: values, deltas,
intervals, effect sizes and MDEs to 4 decimals, p-values to 3 significant digits, failure rates as
percentages, latency in ms to 2 decimals. "-" marks a number the record does not hold. Scripts read
the JSON record instead; nothing here is meant to be parsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eval_pipelines.core.reports.verdict_table import evaluation_rows, verdict_rows

MISSING = "-"


def value_text(value: float | None) -> str:
    return MISSING if value is None else f"{value:.4f}"


def delta_text(value: float | None) -> str:
    return MISSING if value is None else f"{value:+.4f}"


def p_text(value: float | None) -> str:
    return MISSING if value is None else f"{value:.3g}"


def percent_text(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f}%"


def ms_text(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}"


def aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, a rule under the header."""
    cells = [list(header), *[list(row) for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def evaluation_name(record: dict[str, Any]) -> str:
    """Evaluations carry no name of their own: what was evaluated on what names them."""
    return f"{record.get('retriever_id')} on {record.get('dataset_name')}"


BENCHMARK_HEADER = (
    "candidate",
    "metric",
    "baseline",
    "candidate value",
    "delta",
    "95% CI",
    "p",
    "p (Holm)",
    "effect size",
    "MDE",
    "verdict",
    "failed",
    "p50 ms",
)


def _interval(row: dict[str, Any]) -> str:
    if row["ci_low"] is None or row["ci_high"] is None:
        return MISSING
    return f"[{delta_text(row['ci_low'])}, {delta_text(row['ci_high'])}]"


def _benchmark_row(row: dict[str, Any]) -> list[str]:
    """The candidate's verdict, failures and latency once, on its tested row."""
    tested = row["tested"]
    return [
        row["candidate_retriever_id"],
        f"{'NDCG' if row['metric'] == 'ndcg' else row['metric']}@{row['k']}",
        value_text(row["baseline_value"]),
        value_text(row["candidate_value"]),
        delta_text(row["delta"]),
        _interval(row),
        p_text(row["p_value"]),
        p_text(row["p_value_holm"]),
        value_text(row["effect_size"]),
        value_text(row["mde"]),
        (row["verdict"] or MISSING) if tested else "",
        percent_text(row["failure_rate"]) if tested else "",
        ms_text(row["latency_p50_ms"]) if tested else "",
    ]


def _heading(kind: str, name: str, record_id: str, status: str) -> list[str]:
    return [f"{kind} {name!r} ({record_id}): {status}"]


def _status_lines(record: dict[str, Any]) -> list[str]:
    lines = [f"created {record.get('created_at')}, completed {record.get('completed_at') or '-'}"]
    if record.get("error_message"):
        lines.append(f"error: {record['error_message']}")
    return lines


def _warning_lines(record: dict[str, Any]) -> list[str]:
    warnings = record.get("warnings") or []
    return ["", f"Warnings ({len(warnings)})", *[f"- {w}" for w in warnings]] if warnings else []


def benchmark_summary(record: dict[str, Any]) -> str:
    """Name, status, the verdict table, each candidate's reasons, the recommendation, warnings."""
    lines = _heading(
        "Benchmark", record.get("benchmark_name") or "", record["benchmark_id"], record["status"]
    )
    estimator = ((record.get("comparison") or {}).get("estimator") or {}).get("used")
    lines.append(
        f"baseline {record.get('baseline_retriever_id')}, candidates"
        f" {', '.join(record.get('candidate_retriever_ids') or [])}, {record.get('session_count')}"
        f" sessions{', estimator ' + estimator if estimator else ''}"
    )
    lines += _status_lines(record)
    rows = verdict_rows(record)
    if rows:
        lines += ["", aligned(BENCHMARK_HEADER, [_benchmark_row(row) for row in rows]), ""]
        lines.append("Reasons (each candidate is tested on NDCG@10):")
        lines += [
            f"- {r['candidate_retriever_id']}: {r['reasons'] or MISSING}"
            for r in rows
            if r["tested"]
        ]
    recommendation = (record.get("comparison") or {}).get("recommendation")
    if recommendation:
        lines += ["", recommendation]
    lines += _warning_lines(record)
    return "\n".join(lines)


def evaluation_summary(record: dict[str, Any]) -> str:
    """Name, status, query counts, each measure at each k, warnings."""
    lines = _heading(
        "Evaluation", evaluation_name(record), record["evaluation_id"], record["status"]
    )
    lines += _status_lines(record)
    rows = evaluation_rows(record)
    if rows:
        lines.append(
            f"evaluated {record.get('evaluated_queries')}/{record.get('total_queries')} queries"
            f", skipped {record.get('skipped_queries') or 0}"
            + "".join(
                f"; {reason} {n}" for reason, n in (record.get("skipped_reasons") or {}).items()
            )
        )
        ks = sorted({row["k"] for row in rows})
        measures = list(dict.fromkeys(row["measure"] for row in rows))
        values = {(row["measure"], row["k"]): row["value"] for row in rows}
        table = [[m, *[value_text(values.get((m, k))) for k in ks]] for m in measures]
        lines += ["", aligned(["measure", *[f"@{k}" for k in ks]], table)]
    lines += _warning_lines(record)
    return "\n".join(lines)
