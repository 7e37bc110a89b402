"""What both kinds of report show the same way: the record's title facts, and the closing sections
(request, settings, provenance, warnings)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eval_pipelines.core.reports.html.page import Page, definitions, pretty_json, text
from eval_pipelines.core.reports.html.sources import Partition

TIMES = ("created_at", "started_at", "completed_at")


def title_facts(record: dict[str, Any], facts: Sequence[tuple[str, Any]]) -> str:
    """The record's status and its own timestamps (never the time the report was made)."""
    times = [(name, record.get(name)) for name in TIMES if record.get(name)]
    return definitions([("status", record.get("status")), *facts, *times])


def warnings_list(warnings: Sequence[Any]) -> str:
    if not warnings:
        return "<ul><li>none</li></ul>"
    return "<ul>" + "".join(f"<li>{text(w)}</li>" for w in warnings) + "</ul>"


def closing_sections(
    page: Page, partition: Partition, provenance: Sequence[tuple[str, Any]]
) -> None:
    record = partition.record
    page.section("request", "Request", pretty_json(partition.request))
    settings = record.get("settings") or {}
    page.section(
        "settings", "Settings", definitions(sorted(settings.items())) if settings else "<p>none</p>"
    )
    page.section("provenance", "Provenance", definitions(provenance))
    page.section("warnings", "Warnings", warnings_list(record.get("warnings") or []))
