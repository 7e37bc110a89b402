"""HTML building blocks of a report: every value escaped on the way in, one inline stylesheet, no
script and no external URL, so a report opens the same anywhere (browser, mail, an archive)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from eval_pipelines.core.reports.verdict_table import Column

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:72em;
color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
div.wide{overflow-x:auto}td[data-column="reasons"]{min-width:28em;font-size:.8em}
figure.plot{margin:1em 0}figure.plot svg{max-width:100%;height:auto}
figcaption{font-size:.85em;color:#555}
.pair{display:flex;gap:2em;flex-wrap:wrap}
ol.ranking{font-family:ui-monospace,monospace;font-size:.8em;min-width:18em}
li.interacted{background:#fff3c4;font-weight:bold}li.relevant{background:#dff3df}
.note{color:#555;font-style:italic}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:.8em}
dt{font-weight:bold}dd{margin:0 0 .4em 1em;font-family:ui-monospace,monospace;font-size:.85em}
"""


def text(value: Any) -> str:
    """Any value as escaped text (attributes and element content alike)."""
    return escape("" if value is None else str(value), quote=True)


def raw_value(value: Any) -> str:
    """What a cell's data-value holds: the repr of the raw value, empty for None."""
    return "" if value is None else repr(value)


def shown_value(value: Any, column_type: str) -> str:
    """A value rounded for reading."""
    if value is None:
        return "–"
    if column_type == "float":
        return f"{value:.4f}"
    return str(value)


def data_table(
    table_id: str, columns: Sequence[Column], rows: Iterable[dict[str, Any]], row_key: Sequence[str]
) -> str:
    """A table with one `<tr data-row>` per row and one `<td data-column data-value>` per cell."""
    head = "".join(f'<th title="{text(c.description)}">{text(c.name)}</th>' for c in columns)
    body = []
    for row in rows:
        key = "|".join(str(row[name]) for name in row_key)
        cells = "".join(
            f'<td data-column="{text(c.name)}" data-value="{text(raw_value(row[c.name]))}"'
            f"{' class=num' if c.type in ('float', 'int') else ''}>"
            f"{text(shown_value(row[c.name], c.type))}</td>"
            for c in columns
        )
        body.append(f'<tr data-row="{text(key)}">{cells}</tr>')
    return (
        f'<div class="wide"><table id="{text(table_id)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def pivot_table(
    rows: Sequence[dict[str, Any]], row_field: str, column_field: str, value_field: str
) -> str:
    """A long table read at a glance: one row per `row_field`, one column per `column_field`."""
    row_names = list(dict.fromkeys(row[row_field] for row in rows))
    column_names = sorted({row[column_field] for row in rows})
    values = {(row[row_field], row[column_field]): row[value_field] for row in rows}
    return simple_table(
        [row_field, *(f"@{name}" for name in column_names)],
        (
            [name, *(shown_value(values.get((name, column)), "float") for column in column_names)]
            for name in row_names
        ),
    )


def simple_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{text(name)}</th>" for name in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{text(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _plain(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return value


def definitions(items: Iterable[tuple[str, Any]]) -> str:
    return (
        "<dl>"
        + "".join(f"<dt>{text(k)}</dt><dd>{text(_plain(v))}</dd>" for k, v in items)
        + "</dl>"
    )


def pretty_json(value: Any) -> str:
    return f"<pre>{text(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))}</pre>"


def note(sentence: str) -> str:
    return f'<p class="note">{text(sentence)}</p>'


@dataclass
class Page:
    """A report being assembled: its sections in order and the plots it holds."""

    kind: str
    record_id: str
    title: str
    sections: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    omitted: dict[str, str] = field(default_factory=dict)

    def section(self, section_id: str, heading: str, *parts: str) -> None:
        self.sections.append(
            f'<section id="{text(section_id)}"><h2>{text(heading)}</h2>{"".join(parts)}</section>'
        )

    def plot(self, name: str, svg: str | None, caption: str, why_not: str) -> str:
        """The figure, or (no data) a sentence saying why it is left out."""
        if svg is None:
            self.omitted[name] = why_not
            return note(f"No {name} plot: {why_not}")
        self.plots.append(name)
        return (
            f'<figure class="plot" data-plot="{text(name)}">{svg}'
            f"<figcaption>{text(caption)}</figcaption></figure>"
        )

    def html(self) -> str:
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{text(self.title)}</title><style>{STYLE}</style></head>"
            f'<body data-report-kind="{text(self.kind)}" data-record-id="{text(self.record_id)}">'
            f"<h1>{text(self.title)}</h1>{''.join(self.sections)}</body></html>\n"
        )
