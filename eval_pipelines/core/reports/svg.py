"""Matplotlib figures as inline SVG text: one way to draw a plot that a report embeds with no script,
no network and the same bytes for the same data."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

STYLE = {
    "svg.hashsalt": "eval-pipelines",
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


@contextmanager
def svg_figure(width_in: float = 6.4, height_in: float = 3.2) -> Iterator[Figure]:
    """A figure in the house style, closed on exit so a long report run does not keep figures alive."""
    with matplotlib.rc_context(STYLE):
        figure = plt.figure(figsize=(width_in, height_in), layout="constrained")
        try:
            yield figure
        finally:
            plt.close(figure)


def figure_to_svg(figure: Figure) -> str:
    """The figure as an `<svg>` element (no XML prolog, no date), ready to inline in HTML."""
    buffer = io.StringIO()
    with matplotlib.rc_context(STYLE):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]
