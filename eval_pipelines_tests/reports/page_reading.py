"""What the report tests read off a page in the browser (tables, drill-downs, sections, as laid out
and shown), and whether a shown number is the record's, rounded."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from eval_pipelines.core.reports.verdict_table import Column

NONE_SHOWN = {"", "-", "–", "—"}
BOOL_SHOWN = {True: {"True", "true", "yes", "✓"}, False: {"False", "false", "no", ""}}
TABLE_JS = """
(tableId) => {
  const table = document.getElementById(tableId);
  if (!table) return null;
  const box = table.getBoundingClientRect();
  return {
    width: box.width,
    height: box.height,
    rows: Array.from(table.querySelectorAll('tbody tr[data-row]')).map((row) => ({
      key: row.dataset.row,
      cells: Array.from(row.querySelectorAll('td[data-column]')).map((cell) => ({
        column: cell.dataset.column,
        value: cell.dataset.value,
        shown: cell.innerText.trim(),
      })),
    })),
  };
}
"""

DRILL_JS = """
(markClass) => {
  const section = document.getElementById('drill-down');
  if (!section) return null;
  const style = (element) => {
    const s = getComputedStyle(element);
    return [s.backgroundColor, s.fontWeight, s.color, s.borderLeftStyle, s.textDecorationLine].join(' ');
  };
  return Array.from(section.querySelectorAll('div.drill')).map((drill) => ({
    candidate: drill.dataset.candidate,
    pairs: Array.from(drill.querySelectorAll('article.query-pair')).map((pair) => ({
      query: pair.dataset.query,
      direction: pair.dataset.direction,
      delta: pair.dataset.delta,
      rankings: Array.from(pair.querySelectorAll('ol.ranking')).map((ranking) => {
        const box = ranking.getBoundingClientRect();
        const items = Array.from(ranking.querySelectorAll('li[data-doc]'));
        const plain = items.find((item) => !item.classList.contains(markClass));
        return {
          side: ranking.dataset.side,
          left: box.left, right: box.right, top: box.top, width: box.width, height: box.height,
          docs: items.length,
          plainStyle: plain ? style(plain) : null,
          marked: items.filter((item) => item.classList.contains(markClass)).map((item) => ({
            doc: item.dataset.doc,
            grade: item.dataset.grade ?? null,
            classes: Array.from(item.classList),
            style: style(item),
          })),
        };
      }),
    })),
  }));
}
"""

SECTION_TEXT_JS = """
(id) => { const s = document.getElementById(id); return s ? s.innerText : null; }
"""


def shown_is_a_rounding(raw: Any, shown: str, column: Column) -> bool:
    """Whether the text a reader sees is the raw value, rounded to the digits it shows."""
    if raw is None:
        return shown in NONE_SHOWN
    if column.type == "bool":
        return shown in BOOL_SHOWN[raw]
    if column.type == "str":
        return shown == raw
    text = shown.replace(",", "").replace("−", "-").replace("\u2009", "")
    if text.startswith("<"):
        return raw < float(text[1:])
    scale = 1.0
    if text.endswith("%"):
        text, scale = text[:-1], 100.0
    try:
        number = Decimal(text)
    except InvalidOperation:
        return False
    half_step = Decimal(10) ** number.as_tuple().exponent / 2
    return abs(Decimal(repr(raw * scale)) - number) <= half_step * Decimal("1.000001")
