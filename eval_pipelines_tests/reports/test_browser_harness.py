"""The browser harness itself sees what the report tests rely on it to see: a request leaving the
machine (aborted: a real loopback server never gets it), console errors and warnings, page errors, and
a plot with nothing drawn. Also the skip when there is no Chromium, and tasks.py finding it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import ClassVar

from eval_pipelines.core.reports.svg import figure_to_svg, svg_figure
from eval_pipelines_tests.browser import (  # noqa: F401
    CHROMIUM_ENV,
    CHROMIUM_MISSING_ENV,
    ReportBrowser,
    chromium_executable,
    report_browser,
)
from eval_pipelines_tests.loopback import LoopbackServer, QuietHandler, serving

ROOT = Path(__file__).resolve().parents[2]


class _Counting(QuietHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Counting.hits.append(self.path)
        self.reply(200, "body { color: red }", content_type="text/css")


def _plot(draw: bool) -> str:
    with svg_figure(4, 2) as figure:
        axes = figure.add_subplot()
        axes.set_xlim(-1, 1)
        if draw:
            axes.errorbar([0.1, -0.05], [0, 1], xerr=[[0.02, 0.03], [0.04, 0.05]], fmt="o")
            axes.axvline(0, color="black")
        return figure_to_svg(figure)


def _prefixed(svg: str, prefix: str) -> str:
    """Matplotlib's ids prefixed, as a report does to keep them unique across the plots of a page."""
    for before in (' id="', "url(#", 'href="#'):
        svg = svg.replace(before, before + prefix)
    return svg


def test_a_request_off_the_machine_is_aborted_and_reported_with_console_and_page_errors(
    report_browser: ReportBrowser,  # noqa: F811
    tmp_path: Path,
) -> None:
    _Counting.hits = []
    with serving(LoopbackServer(_Counting)) as server:
        url = f"http://127.0.0.1:{server.server_port}/style.css"
        socket = f"ws://127.0.0.1:{server.server_port}/live"
        page = tmp_path / "leaky.html"
        page.write_text(
            f'<!doctype html><html><head><link rel="stylesheet" href="{url}"></head><body>'
            '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="">'
            f"<script>new WebSocket('{socket}'); console.warn('careful'); console.error('broken');"
            " throw new Error('boom')</script>"
            "</body></html>"
        )
        opened = report_browser.open(page)
    assert _Counting.hits == []
    opened.page.wait_for_timeout(200)
    assert sorted(opened.blocked) == sorted([url, socket])
    problems = opened.problems()
    assert f"network request blocked: {url}" in problems
    assert "console warning: careful" in problems
    assert "console error: broken" in problems
    assert any(p.startswith("page error:") and "boom" in p for p in problems), problems


def test_a_sibling_file_counts_as_a_request_other_than_the_file(
    report_browser: ReportBrowser,  # noqa: F811
    tmp_path: Path,
) -> None:
    (tmp_path / "style.css").write_text("body { color: red }")
    page = tmp_path / "sibling.html"
    page.write_text('<!doctype html><link rel="stylesheet" href="style.css"><p>hi</p>')
    opened = report_browser.open(page)
    assert opened.problems() == [
        f"request other than the file: {(tmp_path / 'style.css').as_uri()}"
    ]


def test_drawn_marks_are_counted_and_an_empty_plot_has_none(
    report_browser: ReportBrowser,  # noqa: F811
    tmp_path: Path,
) -> None:
    page = tmp_path / "plots.html"
    page.write_text(
        "<!doctype html><html><head><title>t</title></head><body>"
        f'<figure class="plot" data-plot="drawn">{_plot(True)}<figcaption>drawn</figcaption></figure>'
        f'<figure class="plot" data-plot="empty">{_prefixed(_plot(False), "e-")}'
        "<figcaption>empty</figcaption></figure>"
        "</body></html>"
    )
    opened = report_browser.open(page)
    assert opened.problems() == []
    drawn, empty = opened.figures()
    assert (drawn.name, drawn.svgs, drawn.caption) == ("drawn", 1, "drawn")
    assert drawn.width > 0 and drawn.height > 0
    # two points with their error bars, and the zero line
    assert drawn.marks >= 3
    assert (empty.name, empty.marks) == ("empty", 0)
    assert empty.width > 0


def test_without_chromium_the_browser_tests_skip_saying_why(tmp_path: Path) -> None:
    (tmp_path / "test_needs_browser.py").write_text(
        "from eval_pipelines_tests.browser import report_browser  # noqa: F401\n\n"
        "def test_opens(report_browser):\n"
        "    raise AssertionError('ran without a browser')\n"
    )
    env = {
        **os.environ,
        CHROMIUM_ENV: "",
        "PATH": str(Path(sys.executable).parent),
        "PYTHONPATH": str(ROOT),
        CHROMIUM_MISSING_ENV: "chromium could not be installed: `apt-get update` exited 100",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "no Chromium executable on PATH" in result.stdout
    assert "`apt-get update` exited 100" in result.stdout


def _tasks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tasks", ROOT / "tasks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tasks_finds_chromium_or_says_why_the_browser_tests_skip(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    tasks = _tasks()
    monkeypatch.setenv(CHROMIUM_ENV, "none")
    assert (
        tasks.browser_env()[CHROMIUM_MISSING_ENV] == f"{CHROMIUM_ENV}=none: no browser, on request"
    )
    assert chromium_executable() == (None, f"{CHROMIUM_ENV}=none: no browser, on request")

    monkeypatch.setenv(CHROMIUM_ENV, str(tmp_path / "no-such-chromium"))
    env = tasks.browser_env()
    assert (
        env[CHROMIUM_MISSING_ENV] == f"{CHROMIUM_ENV}={tmp_path / 'no-such-chromium'} is not a file"
    )
    assert "the browser tests will skip" in capsys.readouterr().out

    executable = tmp_path / "bin" / "chromium"
    executable.parent.mkdir()
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    monkeypatch.delenv(CHROMIUM_ENV)
    monkeypatch.setenv("PATH", str(executable.parent))
    env = tasks.browser_env()
    assert CHROMIUM_MISSING_ENV not in env
    assert f"chromium: {executable}" in capsys.readouterr().out
