"""Rankings as the drill-down shows them: two top 10s side by side, each document marked with what
the user did to it (benchmarks) or its judged grade (evaluations)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from eval_pipelines.core.reports.html.page import text

TOP = 10


def ranking_list(
    side: str,
    documents: Sequence[str] | None,
    interactions: Mapping[str, Sequence[str]] | None = None,
    grades: Mapping[str, int] | None = None,
) -> str:
    """`<ol class="ranking" data-side>`: interacted documents carry `interacted` and the
    interaction types as classes; judged relevant ones carry `relevant` and data-grade."""
    items = []
    for document in list(documents or [])[:TOP]:
        classes: list[str] = []
        attributes = f' data-doc="{text(document)}"'
        done = (interactions or {}).get(document)
        if done:
            classes += ["interacted", *sorted(set(done))]
        grade = (grades or {}).get(document)
        if grade is not None:
            attributes += f' data-grade="{grade}"'
            if grade > 0:
                classes.append("relevant")
        label = text(document)
        if done:
            label += f" <small>({text(', '.join(sorted(set(done))))})</small>"
        if grade is not None:
            label += f" <small>[grade {grade}]</small>"
        class_attribute = f' class="{text(" ".join(classes))}"' if classes else ""
        items.append(f"<li{class_attribute}{attributes}>{label}</li>")
    if not items:
        items.append("<li>(no ranking: the call failed or returned nothing)</li>")
    return f'<ol class="ranking" data-side="{text(side)}">{"".join(items)}</ol>'


def pair(
    query: str,
    direction: str,
    delta: float,
    heading: str,
    sides: Sequence[tuple[str, str, str]],
    execution_id: str | None = None,
) -> str:
    """`<article class="query-pair">` holding (side, title, ranking html) side by side."""
    execution = f' data-execution="{text(execution_id)}"' if execution_id else ""
    columns = "".join(f"<div><h4>{text(title)}</h4>{html}</div>" for _, title, html in sides)
    return (
        f'<article class="query-pair" data-query="{text(query)}" data-direction="{direction}"'
        f' data-delta="{text(repr(delta))}"{execution}><h3>{text(heading)}</h3>'
        f'<div class="pair">{columns}</div></article>'
    )
