"""`benchmark plan` in a terminal: its settings from the flags, and the plan as a table."""

from __future__ import annotations

import argparse
from typing import Any

from eval_pipelines.cli.output import format_table
from eval_pipelines.core.benchmarks.plan_settings import PlanSettings, PlanSettingsError

# Plan settings as their flags name them, for error messages.
PLAN_FLAGS = {
    "alpha": "--alpha",
    "power": "--power",
    "deltas": "--delta",
    "pilot_sessions": "--pilot-sessions",
    "sd": "--sd",
    "icc": "--icc",
}


def plan_settings(args: argparse.Namespace) -> PlanSettings:
    """The settings the flags give; each problem names its flag."""
    given = {name: getattr(args, name) for name in PLAN_FLAGS if getattr(args, name) is not None}
    if "deltas" in given:
        given["deltas"] = tuple(given["deltas"])
    try:
        return PlanSettings(**given)
    except PlanSettingsError as exc:
        raise PlanSettingsError([_flagged(problem) for problem in exc.problems]) from None


def _flagged(problem: str) -> str:
    field, _, rest = problem.partition(":")
    name = field.split("[", 1)[0]
    return f"{PLAN_FLAGS[name]}{field[len(name) :]}:{rest}" if name in PLAN_FLAGS else problem


def _sessions(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def format_plan(plan: dict[str, Any]) -> str:
    """The plan as a reader scans it: one block per candidate (or the assumed spread)."""
    settings, population = plan["settings"], plan["population"]
    family = settings["family_size"]
    lines = [
        f"Plan against {plan['baseline_retriever_id']}: alpha {settings['alpha']:g}"
        + (f" over {family} candidates (Holm)" if family > 1 else "")
        + f", power {settings['power']:g}, inference by {settings['inference_unit']}",
        f"Population: {population['sessions']:,} sessions match the filter, "
        f"{population['queries']:,} queries, S = sum of squared query shares "
        f"{population['concentration']:.4f}"
        f" (largest query {population['largest_query_share']:.1%})",
    ]
    if plan["pilot"] is not None:
        pilot = plan["pilot"]
        failed = ", ".join(f"{p} {n}" for p, n in pilot["failed_sessions"].items() if n)
        lines.append(
            f"Pilot: {pilot['sampled']:,} sessions of {pilot['queries']:,} queries, replayed here"
            f" and not stored; failed replays: {failed or 'none'}"
        )
    for item in plan["plans"]:
        lines.append("")
        lines += _plan_block(item)
    lines += ["", f"Assumptions: {plan['assumptions']}"]
    return "\n".join(lines)


def _plan_block(item: dict[str, Any]) -> list[str]:
    """One candidate's plan: its spread, then sessions per target delta, then MDE per size."""
    name = item["candidate_retriever_id"] or "assumed spread"
    if item["problem"]:
        return [f"{name}: no plan: {item['problem']}"]
    ranged = any(target["sessions_range"] for target in item["targets"])
    header = ["target delta", "sessions needed"]
    header += ["80% range"] if ranged else []
    header += ["expected queries", "note"]
    targets = format_table(header, [_target_cells(t, ranged) for t in item["targets"]])
    header = ["sessions", "expected queries", "design effect", "MDE"]
    header += ["80% range"] if ranged else []
    sizes = format_table(header, [_mde_cells(size, ranged) for size in item["mde"]])
    return [
        *_spread_lines(name, item),
        *("  " + line for line in targets.splitlines()),
        "",
        *("  " + line for line in sizes.splitlines()),
    ]


def _spread_lines(name: str, item: dict[str, Any]) -> list[str]:
    """The spread planned with, what the pilot measured, and the floor no size gets under."""
    head = f"{name}: sd {item['sd']:.4f}, icc {item['icc']:.4f}"
    if item["icc_used"] != item["icc"]:
        head += f" (used {item['icc_used']:g})"
    lines = [head]
    pilot = item["pilot"]
    if pilot is not None:
        interval = pilot["confidence_interval"]
        shown_interval = f" [{interval[0]:+.4f}, {interval[1]:+.4f}]" if interval else ""
        measured = pilot["design_effect"]["measured"]
        lines.append(
            f"  pilot: delta {pilot['delta']:+.4f}{shown_interval} ({pilot['verdict']}),"
            f" design effect {'-' if measured is None else f'{measured:.2f}'} measured (CR2)"
            f" vs {pilot['design_effect']['model']:.2f} by the icc"
        )
    floor = (
        f"no benchmark of this traffic detects less than {item['mde_floor']:.4f}"
        if item["mde_floor"] > 0
        else "with icc 0 the MDE keeps falling as sessions grow"
    )
    lines.append(f"  design effect at 1,000 sessions {item['design_effect_at_1000']:.2f}; {floor}")
    return lines


def _target_cells(target: dict[str, Any], ranged: bool) -> list[str]:
    row = [
        f"{target['delta']:.4f}" + (" (pilot)" if target["origin"] == "pilot" else ""),
        _sessions(target["sessions_needed"]) if target["sessions_needed"] else "unreachable",
    ]
    if ranged:
        low, high = target["sessions_range"] or (None, None)
        row.append(
            "unreachable"
            if low is None
            else f"{_sessions(low)} - {_sessions(high) if high else 'unreachable'}"
        )
    queries = target["expected_queries"]
    return [*row, "-" if queries is None else f"{queries:,.0f}", target["limit"] or ""]


def _mde_cells(size: dict[str, Any], ranged: bool) -> list[str]:
    row = [
        f"{size['sessions']:,}" + ("" if size["testable"] else " (too few queries)"),
        f"{size['expected_queries']:,.0f}",
        f"{size['design_effect']:.2f}",
        f"{size['mde']:.4f}",
    ]
    if ranged and size["mde_range"]:
        low, high = size["mde_range"]
        row.append(f"{low:.4f} - {high:.4f}")
    elif ranged:
        row.append("-")
    return row
