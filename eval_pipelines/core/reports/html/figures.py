"""A matplotlib figure made fit to sit inline in a report beside others.

matplotlib's SVG names the W3C namespaces and an RDF metadata block by http URL (a page must name
none), and every figure uses the same element ids (figure_1, axes_1, ...): ids are prefixed with the
plot's name so no `url(#...)` of one figure can resolve inside another.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from matplotlib.axes import Axes

from eval_pipelines.core.benchmarks.verdicts import BETTER, NO_DIFFERENCE, NOT_TESTABLE, WORSE
from eval_pipelines.core.reports.svg import figure_to_svg, svg_figure

_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
_NAMESPACES = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
VERDICT_COLOURS = {
    BETTER: "#1a7f37",
    WORSE: "#c62828",
    NO_DIFFERENCE: "#555555",
    NOT_TESTABLE: "#999999",
}


def inline_svg(svg: str, prefix: str) -> str:
    """The `<svg>` with no URL in it and its ids prefixed (inline SVG needs no xmlns in HTML)."""
    svg = _NAMESPACES.sub("", _METADATA.sub("", svg))
    svg = svg.replace(' id="', f' id="{prefix}-')
    svg = svg.replace("url(#", f"url(#{prefix}-").replace('href="#', f'href="#{prefix}-')
    return svg


def draw(
    name: str, drawer: Callable[[Axes], None], width_in: float = 6.4, height_in: float = 3.2
) -> str:
    """One plot drawn on a single axes, as inline SVG named `name`."""
    with svg_figure(width_in, height_in) as figure:
        drawer(figure.add_subplot())
        return inline_svg(figure_to_svg(figure), name)


def verdict_colour(verdict: str | None) -> str:
    return VERDICT_COLOURS.get(verdict or "", "#1f4e9c")
