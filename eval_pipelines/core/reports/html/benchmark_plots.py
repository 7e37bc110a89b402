"""A benchmark report's plots, each from the record's own numbers (or the partition's tables where
a distribution is drawn); None when there is nothing to draw, so no figure is ever empty.

Distributions are histograms or box plots, never one mark per session, so a report of 10,000
sessions weighs what a report of 100 does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from eval_pipelines.core.reports.html.figures import draw, verdict_colour

HISTOGRAM_BINS = 41


def forest(rows: Sequence[dict[str, Any]]) -> str | None:
    """The tested NDCG@10 delta with its interval per candidate (verdict-table rows)."""
    tested = [r for r in rows if r["tested"] and r["delta"] is not None]
    if not tested:
        return None

    def plot(axes: Axes) -> None:
        for y, row in enumerate(reversed(tested)):
            low, high = row["ci_low"], row["ci_high"]
            colour = verdict_colour(row["verdict"])
            if low is not None and high is not None:
                axes.plot([low, high], [y, y], color=colour, linewidth=2)
            axes.plot([row["delta"]], [y], "o", color=colour)
            axes.annotate(
                row["verdict"] or "",
                (row["delta"], y),
                xytext=(0, 6),
                textcoords="offset points",
                ha="center",
                fontsize=7,
                color=colour,
            )
        axes.axvline(0, color="#333", linewidth=0.8)
        axes.set_yticks(range(len(tested)))
        axes.set_yticklabels([r["candidate_retriever_id"] for r in reversed(tested)])
        axes.set_xlabel("NDCG@10 delta vs baseline (95% CI)")

    return draw("forest", plot, height_in=max(1.6, 0.5 * len(tested) + 1))


def delta_distribution(deltas: Mapping[str, np.ndarray]) -> str | None:
    """Per-session NDCG@10 deltas per candidate, as step histograms on shared bins."""
    present = {name: values for name, values in deltas.items() if values.size}
    if not present:
        return None
    everything = np.concatenate(list(present.values()))
    low, high = float(everything.min()), float(everything.max())
    bins = np.linspace(min(low, -1e-3), max(high, 1e-3), HISTOGRAM_BINS)

    def plot(axes: Axes) -> None:
        for name, values in present.items():
            axes.hist(values, bins=bins, histtype="step", linewidth=1.2, label=name)
        axes.axvline(0, color="#333", linewidth=0.8)
        axes.set_yscale("log")
        axes.set_xlabel("per-session NDCG@10 delta (candidate - baseline)")
        axes.set_ylabel("sessions")
        axes.legend(fontsize=7)

    return draw("delta-distribution", plot)


def _node_ndcg(result: dict[str, Any]) -> dict[str, float | None]:
    """A result's NDCG@10 per taxonomy node."""
    return {
        node: (values.get("ndcg_at_k") or {}).get("10")
        for node, values in (result.get("taxonomy_deltas") or {}).items()
    }


def _node_mark(item: dict[str, Any], node: str) -> str | None:
    """What the comparison says of a node: a significant win or loss, too few sessions, or none."""
    if node in (item.get("taxonomy_wins") or []):
        return "win"
    if node in (item.get("taxonomy_losses") or []):
        return "loss"
    return "untested" if node in (item.get("taxonomy_untested") or {}) else None


def taxonomy_grid(
    record: dict[str, Any],
) -> tuple[list[str], list[str], np.ndarray, dict[tuple[int, int], str]]:
    """Nodes x candidates of per-node NDCG@10 deltas, and each cell's mark: win, loss, untested."""
    comparison = record.get("comparison") or {}
    results = {r["retriever_id"]: r for r in record.get("results") or []}
    base = _node_ndcg(results.get(comparison.get("baseline_retriever_id") or "", {}))
    items = comparison.get("comparisons") or []
    nodes = sorted(base)
    grid = np.full((len(nodes), len(items)), np.nan)
    marks: dict[tuple[int, int], str] = {}
    for column, item in enumerate(items):
        mine = _node_ndcg(results.get(item["candidate_retriever_id"], {}))
        for row, node in enumerate(nodes):
            if mine.get(node) is not None and base[node] is not None:
                grid[row, column] = mine[node] - base[node]
            mark = _node_mark(item, node)
            if mark is not None:
                marks[row, column] = mark
    return nodes, [item["candidate_retriever_id"] for item in items], grid, marks


MARK_TEXT = {"win": "▲", "loss": "▼", "untested": "·"}


def taxonomy_deltas(record: dict[str, Any]) -> str | None:
    nodes, candidates, grid, marks = taxonomy_grid(record)
    if not nodes or not candidates or np.isnan(grid).all():
        return None
    limit = float(np.nanmax(np.abs(grid))) or 1.0

    def plot(axes: Axes) -> None:
        image = axes.imshow(grid, cmap="RdYlGn", vmin=-limit, vmax=limit, aspect="auto")
        for (row, column), mark in sorted(marks.items()):
            axes.text(column, row, MARK_TEXT[mark], ha="center", va="center", fontsize=7)
        axes.set_xticks(range(len(candidates)))
        axes.set_xticklabels(candidates, rotation=20, ha="right")
        axes.set_yticks(range(len(nodes)))
        axes.set_yticklabels(nodes, fontsize=6)
        axes.grid(False)
        axes.figure.colorbar(image, ax=axes, label="NDCG@10 delta")

    return draw("taxonomy-deltas", plot, height_in=max(2.4, 0.16 * len(nodes) + 1))


def latency(latencies: Mapping[str, np.ndarray]) -> str | None:
    """Per-query latency per pipeline as box plots (whiskers 5-95%, no outlier marks)."""
    present = {name: values for name, values in latencies.items() if values.size}
    if not present:
        return None

    def plot(axes: Axes) -> None:
        names = list(present)
        axes.boxplot(
            [present[n] for n in names], orientation="horizontal", whis=(5, 95), showfliers=False
        )
        axes.set_yticks(range(1, len(names) + 1))
        axes.set_yticklabels(names)
        values = np.concatenate([present[n] for n in names])
        positive = values[values > 0]
        if positive.size and positive.max() > 20 * positive.min():
            axes.set_xscale("log")
        axes.invert_yaxis()
        axes.set_xlabel("latency per query, ms\n(box: quartiles, whiskers: 5th-95th percentile)")

    return draw("latency", plot, height_in=max(1.6, 0.45 * len(present) + 1))


def coverage(record: dict[str, Any]) -> str | None:
    """Share of each top 10 the logs ever showed users, per candidate, against min_coverage."""
    comparison = record.get("comparison") or {}
    bars = [
        (item["candidate_retriever_id"], ((item.get("coverage") or {}).get("candidate") or {}))
        for item in comparison.get("comparisons") or []
    ]
    bars = [(name, c) for name, c in bars if c.get("shown_to_user_at_10") is not None]
    if not bars:
        return None
    minimum = (comparison.get("estimator") or {}).get("min_coverage")

    def plot(axes: Axes) -> None:
        y = np.arange(len(bars))
        axes.barh(y - 0.2, [c["shown_to_user_at_10"] for _, c in bars], 0.4, label="shown to user")
        axes.barh(
            y + 0.2, [c.get("ever_shown_at_10") or 0 for _, c in bars], 0.4, label="ever shown"
        )
        if minimum is not None:
            axes.axvline(minimum, color="#c62828", linestyle="--", label="min_coverage")
        axes.set_yticks(y)
        axes.set_yticklabels([name for name, _ in bars])
        axes.set_xlim(0, 1)
        axes.invert_yaxis()
        axes.set_xlabel("share of the candidate's top 10 with logged evidence")
        axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))

    return draw("coverage", plot, height_in=max(1.6, 0.5 * len(bars) + 1))


def position_bias(curve: Sequence[dict[str, Any]]) -> str | None:
    """The click model's examination propensity per position, with its interval and the
    randomized-traffic estimate where there is one."""
    points = [p for p in curve if p.get("propensity") is not None]
    if not points:
        return None

    def plot(axes: Axes) -> None:
        positions = [p["position"] for p in points]
        axes.plot(positions, [p["propensity"] for p in points], "o-", label="fitted (PBM)")
        low = [p.get("ci_low") if p.get("ci_low") is not None else np.nan for p in points]
        high = [p.get("ci_high") if p.get("ci_high") is not None else np.nan for p in points]
        axes.fill_between(positions, low, high, alpha=0.2, label="95% CI")
        randomized = [
            (p["position"], p["randomized_propensity"])
            for p in points
            if p.get("randomized_propensity") is not None
        ]
        if randomized:
            axes.plot(*zip(*randomized, strict=True), "x", label="randomized traffic")
        axes.set_xlabel("position")
        axes.set_ylabel("examination relative to position 1")
        axes.legend(fontsize=7)

    return draw("position-bias", plot)
