"""A candidate's history against one baseline: every completed benchmark comparing them, oldest first.

A single benchmark answers "is it better today"; the history answers "is it still better, and did
something change". Each point holds the tested NDCG@10 delta as the verdict table reads it (the
primary test's estimate, with its interval and Holm-adjusted p), the estimator that produced it and
both pipeline hashes, so a changed configuration or estimator shows instead of passing for drift.
Records that cannot be read or lack what a point needs are counted with the reason, never dropped
silently.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from eval_pipelines.core.benchmarks.submit import benchmark_store
from eval_pipelines.core.json_input import JsonProblem, check_value, not_unicode
from eval_pipelines.core.paths import DataPaths, shown
from eval_pipelines.core.records import Status
from eval_pipelines.core.reports.summary import MISSING, aligned, delta_text, p_text
from eval_pipelines.core.reports.verdict_table import verdict_rows


@dataclass(frozen=True)
class HistoryPoint:
    benchmark_id: str
    benchmark_name: str | None
    completed_at: str | None
    estimator: str | None
    sessions: int | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    p_value_adjusted: float | None
    verdict: str | None
    baseline_pipeline_hash: str | None
    candidate_pipeline_hash: str | None


@dataclass(frozen=True)
class History:
    """The points, and one `benchmarks/<id>: reason` per record left out (unreadable, or not
    usable as a point), so a caller can say how many were skipped and why."""

    baseline_id: str
    candidate_id: str
    points: list[HistoryPoint] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # (baseline, candidate) of every completed, readable benchmark: what exists when a pair has none.
    pairs: list[tuple[str, str]] = field(default_factory=list)


class _Unusable(ValueError):
    """A completed record of the pair that lacks what a point needs."""


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise _Unusable(f"completed_at is {shown(value)}, expected an ISO 8601 time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Unusable(f"completed_at is {shown(value)}, not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise _Unusable(f"completed_at is {shown(value)}, without a UTC offset")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise _Unusable(f"completed_at is {shown(value)}, out of range in UTC") from None


def _pipeline_hashes(record: dict[str, Any]) -> dict[str, str | None]:
    results = record.get("results")
    if not isinstance(results, list):
        raise _Unusable(f"results is {shown(results)}, expected a list")
    hashes: dict[str, str | None] = {}
    for result in results:
        if isinstance(result, dict) and isinstance(result.get("retriever_id"), str):
            value = result.get("pipeline_hash")
            hashes[result["retriever_id"]] = value if isinstance(value, str) else None
    return hashes


def _comparison_item(record: dict[str, Any], candidate_id: str) -> dict[str, Any]:
    comparison = record.get("comparison")
    if not isinstance(comparison, dict) or not isinstance(comparison.get("comparisons"), list):
        raise _Unusable("comparison holds no comparisons")
    items = [
        item
        for item in comparison["comparisons"]
        if isinstance(item, dict) and item.get("candidate_retriever_id") == candidate_id
    ]
    if len(items) != 1:
        raise _Unusable(f"comparison holds {len(items)} comparisons of {candidate_id}, expected 1")
    return items[0]


def _tested_row(record: dict[str, Any], candidate_id: str) -> dict[str, Any]:
    """The candidate's NDCG@10 row of the verdict table: the numbers every view shows."""
    try:
        rows = verdict_rows(record)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise _Unusable(f"comparison cannot be read ({type(exc).__name__}: {exc})") from None
    tested = [r for r in rows if r["candidate_retriever_id"] == candidate_id and r["tested"]]
    if len(tested) != 1:
        raise _Unusable(f"comparison of {candidate_id} has no NDCG@10 delta")
    return tested[0]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _estimator(record: dict[str, Any], item: dict[str, Any]) -> str | None:
    """The comparison's own estimator; records older than that name it once for all."""
    if "estimator" in item:
        return _text(item["estimator"])
    shared = (record.get("comparison") or {}).get("estimator")
    return _text(shared.get("used")) if isinstance(shared, dict) else None


def _point(record: dict[str, Any], baseline_id: str, candidate_id: str) -> HistoryPoint:
    """The point of one completed record; _Unusable names what is missing."""
    completed_at = record.get("completed_at")
    _timestamp(completed_at)
    item = _comparison_item(record, candidate_id)
    row = _tested_row(record, candidate_id)
    hashes = _pipeline_hashes(record)
    sessions = item.get("paired_sessions")
    point = HistoryPoint(
        benchmark_id=record["benchmark_id"],
        benchmark_name=_text(record.get("benchmark_name")),
        completed_at=completed_at,
        estimator=_estimator(record, item),
        sessions=sessions if isinstance(sessions, int) and not isinstance(sessions, bool) else None,
        delta=row["delta"],
        ci_low=row["ci_low"],
        ci_high=row["ci_high"],
        p_value_adjusted=row["p_value_holm"],
        verdict=_text(row["verdict"]),
        baseline_pipeline_hash=hashes.get(baseline_id),
        candidate_pipeline_hash=hashes.get(candidate_id),
    )
    _check_point(point)
    return point


def _check_point(point: HistoryPoint) -> None:
    """A point no terminal, JSON or plot can show (NaN, a lone surrogate) is unusable, not a crash."""
    values = asdict(point)
    try:
        check_value(values)
    except JsonProblem as exc:
        raise _Unusable(str(exc)) from None
    for name, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise _Unusable(f"{name} is {value}, expected a finite number")


# What every record must hold to be looked at (its pair and status).
_LISTED = {
    "benchmark_id": str,
    "baseline_retriever_id": str,
    "candidate_retriever_ids": list[str],
    "status": str,
}


def benchmark_history(paths: DataPaths, baseline_id: str, candidate_id: str) -> History:
    """Every completed benchmark of baseline_id with candidate_id among its candidates, oldest
    first by completed_at (then id); the records left out, each with its reason."""
    listing = benchmark_store(paths).listing(_LISTED)
    skipped = list(listing.problems)
    dated: list[tuple[datetime, str, HistoryPoint]] = []
    pairs: set[tuple[str, str]] = set()
    for record in listing.records:
        ours = (
            record["baseline_retriever_id"] == baseline_id
            and candidate_id in record["candidate_retriever_ids"]
        )
        if record["status"] != Status.COMPLETED:
            if ours:
                skipped.append(
                    f"benchmarks/{record['benchmark_id']}: not completed (status"
                    f" {record['status']})"
                )
            continue
        pairs.update(
            (record["baseline_retriever_id"], c)
            for c in record["candidate_retriever_ids"]
            if not not_unicode(record["baseline_retriever_id"] + c)
        )
        if not ours:
            continue
        try:
            point = _point(record, baseline_id, candidate_id)
        except _Unusable as exc:
            skipped.append(f"benchmarks/{record['benchmark_id']}: record.json: {exc}")
            continue
        dated.append((_timestamp(point.completed_at), point.benchmark_id, point))
    dated.sort(key=lambda entry: (entry[0], entry[1]))
    return History(baseline_id, candidate_id, [p for _, _, p in dated], skipped, sorted(pairs))


def candidate_history(paths: DataPaths, baseline_id: str, candidate_id: str) -> list[HistoryPoint]:
    """Completed benchmarks with this baseline and candidate, oldest first (benchmark_history also
    says which records were skipped and why)."""
    return benchmark_history(paths, baseline_id, candidate_id).points


def hash_changes(points: Sequence[HistoryPoint]) -> list[tuple[bool, bool]]:
    """(baseline changed, candidate changed) at each point against the last point before it that
    held that hash; a hash a record does not hold never counts as a change."""
    changes = []
    last: list[str | None] = [None, None]
    for point in points:
        flags = []
        for side, value in enumerate((point.baseline_pipeline_hash, point.candidate_pipeline_hash)):
            flags.append(value is not None and last[side] is not None and value != last[side])
            last[side] = value if value is not None else last[side]
        changes.append((flags[0], flags[1]))
    return changes


def change_text(baseline_changed: bool, candidate_changed: bool) -> str:
    """The change mark a table and the plot show."""
    names = [n for n, c in (("baseline", baseline_changed), ("candidate", candidate_changed)) if c]
    return " + ".join(names) + " changed" if names else ""


def estimator_note(points: Sequence[HistoryPoint]) -> str | None:
    """A sentence when the points' estimators differ: their deltas are not the same quantity."""
    counts = Counter(p.estimator or "unknown" for p in points)
    if len(counts) < 2:
        return None
    listed = ", ".join(f"{name} ({n})" for name, n in sorted(counts.items()))
    return f"estimators differ: {listed}; deltas of different estimators are not the same quantity"


HISTORY_HEADER = (
    "completed (UTC)",
    "benchmark_id",
    "name",
    "estimator",
    "sessions",
    "delta",
    "95% CI",
    "p (Holm)",
    "verdict",
    "changed",
)


def _utc_text(completed_at: str | None) -> str:
    if completed_at is None:
        return MISSING
    return _timestamp(completed_at).strftime("%Y-%m-%d %H:%M:%S")


def history_table(points: Sequence[HistoryPoint]) -> str:
    """The points as an aligned table for a terminal, rounded as summary.py rounds."""
    rows = []
    for point, (base, cand) in zip(points, hash_changes(points), strict=True):
        interval = (
            MISSING
            if point.ci_low is None or point.ci_high is None
            else f"[{delta_text(point.ci_low)}, {delta_text(point.ci_high)}]"
        )
        rows.append(
            [
                _utc_text(point.completed_at),
                point.benchmark_id,
                point.benchmark_name or MISSING,
                point.estimator or MISSING,
                MISSING if point.sessions is None else str(point.sessions),
                delta_text(point.delta),
                interval,
                p_text(point.p_value_adjusted),
                point.verdict or MISSING,
                change_text(base, cand),
            ]
        )
    return aligned(HISTORY_HEADER, rows)


def history_json(points: Sequence[HistoryPoint]) -> list[dict[str, Any]]:
    """The points unrounded, each with whether a pipeline hash changed since the point before."""
    return [
        {**asdict(point), "baseline_changed": base, "candidate_changed": cand}
        for point, (base, cand) in zip(points, hash_changes(points), strict=True)
    ]


def _names(values: Sequence[str], limit: int = 10) -> str:
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return ", ".join(values[:limit]) + more


def no_history_message(history: History) -> str:
    """Why the history is empty, naming the pairs that do have completed benchmarks."""
    head = (
        f"no completed benchmark has baseline {history.baseline_id!r} and candidate"
        f" {history.candidate_id!r}"
    )
    candidates = [c for b, c in history.pairs if b == history.baseline_id]
    if candidates:
        return f"{head}; completed benchmarks of that baseline compare: {_names(candidates)}"
    baselines = sorted({b for b, _ in history.pairs})
    if baselines:
        return f"{head}; baselines of completed benchmarks: {_names(baselines)}"
    return f"{head}; there is no completed benchmark"


VERDICT_STYLES = {
    "better": ("^", "#1a7f37"),
    "worse": ("v", "#cf222e"),
    "no_detectable_difference": ("o", "#57606a"),
    "not_testable": ("s", "#bf8700"),
}
OTHER_STYLE = ("D", "#8250df")


def _label(point: HistoryPoint, with_estimator: bool) -> str:
    label = _utc_text(point.completed_at)[:16].replace(" ", "\n")
    return f"{label}\n{point.estimator or 'unknown'}" if with_estimator else label


def _draw_points(axes: Any, points: Sequence[HistoryPoint]) -> None:
    """Each CI as a vertical bar, each delta as its verdict's marker (one group per verdict)."""
    for index, point in enumerate(points):
        if point.delta is not None and point.ci_low is not None and point.ci_high is not None:
            axes.plot([index, index], [point.ci_low, point.ci_high], color="#57606a", linewidth=1.2)
    for verdict in sorted({p.verdict or "none" for p in points}):
        marker, colour = VERDICT_STYLES.get(verdict, OTHER_STYLE)
        chosen = [
            (i, p.delta)
            for i, p in enumerate(points)
            if (p.verdict or "none") == verdict and p.delta is not None
        ]
        if chosen:
            axes.plot(
                [i for i, _ in chosen],
                [d for _, d in chosen],
                linestyle="none",
                marker=marker,
                markersize=7,
                color=colour,
                label=verdict,
                gid=f"history-verdict-{verdict}",
            )


def _draw_changes(axes: Any, points: Sequence[HistoryPoint]) -> None:
    """A dashed line, named, just before each point whose pipeline hash changed."""
    for index, (base, cand) in enumerate(hash_changes(points)):
        if base or cand:
            axes.axvline(index - 0.5, color="#bf8700", linestyle="--", linewidth=1)
            axes.annotate(
                change_text(base, cand),
                (index - 0.5, 1.0),
                xycoords=("data", "axes fraction"),
                rotation=90,
                ha="right",
                va="top",
                fontsize=7,
                color="#9a6700",
            )


def history_svg(points: Sequence[HistoryPoint], baseline_id: str, candidate_id: str) -> str:
    """Delta with CI over time, one marker per benchmark in order (x = ordinal, completion time as
    its label), verdict by marker and colour, a zero line, a dashed line where a pipeline hash
    changed, and a note when estimators differ. Deterministic for the same points."""
    if not points:
        raise ValueError("history_svg: no points to draw")
    from eval_pipelines.core.reports.svg import figure_to_svg, svg_figure  # matplotlib: ~0.4 s

    note = estimator_note(points)
    with svg_figure(6.4, 3.4) as figure:
        axes = figure.add_subplot()
        axes.axhline(0.0, color="black", linewidth=0.8, gid="history-zero")
        _draw_points(axes, points)
        _draw_changes(axes, points)
        axes.set_xticks(
            range(len(points)), [_label(p, note is not None) for p in points], fontsize=7
        )
        axes.set_xlim(-0.7, len(points) - 0.3)
        axes.set_ylabel("NDCG@10 delta (95% CI)")
        axes.set_title(f"{candidate_id} vs {baseline_id}", fontsize=9)
        axes.legend(
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=7,
            title="verdict",
            title_fontsize=7,
            frameon=False,
        )
        if note:
            figure.supxlabel(note, fontsize=7, color="#cf222e")
        return figure_to_svg(figure)
