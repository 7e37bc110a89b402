"""A report's preview for the Dagster UI's markdown metadata: a small PNG as a data: URI (the UI
renders markdown images given that way, as Dagster's own tutorial does) and, under it, the same
numbers as a table with text bars, readable wherever markdown images are not."""

from __future__ import annotations

import base64
import io
from typing import Any

from eval_pipelines.core.reports.svg import svg_figure
from eval_pipelines.core.reports.verdict_table import evaluation_rows, verdict_rows

BAR_WIDTH = 20


def _bar(value: float | None, scale: float) -> str:
    if value is None or scale <= 0:
        return ""
    length = round(abs(value) / scale * BAR_WIDTH)
    return ("+" if value >= 0 else "-") * max(length, 1 if value else 0)


def _png(rows: list[dict[str, Any]]) -> str | None:
    """The forest plot as a small PNG data URI (rows: verdict-table rows)."""
    tested = [r for r in rows if r["tested"] and r["delta"] is not None]
    if not tested:
        return None
    with svg_figure(4.0, max(1.2, 0.35 * len(tested) + 0.8)) as figure:
        axes = figure.add_subplot()
        for y, row in enumerate(reversed(tested)):
            if row["ci_low"] is not None and row["ci_high"] is not None:
                axes.plot([row["ci_low"], row["ci_high"]], [y, y], linewidth=2)
            axes.plot([row["delta"]], [y], "ko")
        axes.axvline(0, color="#333", linewidth=0.8)
        axes.set_yticks(range(len(tested)))
        axes.set_yticklabels([r["candidate_retriever_id"] for r in reversed(tested)])
        axes.set_xlabel("NDCG@10 delta (95% CI)")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=72)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def benchmark_preview(record: dict[str, Any]) -> str:
    rows = [r for r in verdict_rows(record) if r["tested"]]
    scale = max((abs(r["delta"]) for r in rows if r["delta"] is not None), default=0.0)
    lines = ["| candidate | NDCG@10 delta | 95% CI | verdict | |", "|---|---:|---|---|---|"]
    for r in rows:
        delta = "–" if r["delta"] is None else f"{r['delta']:+.4f}"
        interval = (
            "–"
            if r["ci_low"] is None or r["ci_high"] is None
            else f"[{r['ci_low']:.4f}, {r['ci_high']:.4f}]"
        )
        lines.append(
            f"| {r['candidate_retriever_id']} | {delta} | {interval} | {r['verdict']} |"
            f" `{_bar(r['delta'], scale)}` |"
        )
    image = _png(verdict_rows(record))
    head = [f"![NDCG@10 delta per candidate]({image})", ""] if image else []
    return "\n".join([*head, *lines]) + "\n"


def evaluation_preview(record: dict[str, Any]) -> str:
    rows = [r for r in evaluation_rows(record) if r["measure"] == "ndcg"]
    lines = ["| k | NDCG | |", "|---:|---:|---|"]
    for r in rows:
        value = "–" if r["value"] is None else f"{r['value']:.4f}"
        lines.append(f"| {r['k']} | {value} | `{_bar(r['value'], 1.0)}` |")
    return "\n".join(lines) + "\n"
