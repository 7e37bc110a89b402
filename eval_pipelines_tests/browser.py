"""A real headless Chromium for tests that open a local file (the HTML reports): one browser per test
module, every request recorded, anything but file: and data: aborted and reported, console messages and
page errors collected. Debian's chromium, not Playwright's download (there is no internet to fetch it):
`tasks.py test` installs it; where it cannot, the tests skip saying why."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Request,
    Route,
    WebSocketRoute,
    sync_playwright,
)

CHROMIUM_ENV = "EVAL_PIPELINES_CHROMIUM"
# Set by tasks.py when it could not install Chromium: the reason the browser tests skip with.
CHROMIUM_MISSING_ENV = "EVAL_PIPELINES_CHROMIUM_MISSING"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 900}
LOCAL_SCHEMES = ("file:", "data:")

# Per <figure class="plot">: its <svg>s, the first one's box, and how many drawn marks it holds. A mark
# is a shape with a non-zero box that matplotlib clipped to the axes (data artists are clipped; the
# figure and axes backgrounds, spines and tick labels are not), outside the axis and legend groups
# (gridlines and tick marks; a report may prefix matplotlib's ids) and outside <defs> (marker templates).
FIGURES_JS = """
() => {
const SHAPES = 'path, line, rect, use, polyline, polygon, circle, ellipse, image';
return Array.from(document.querySelectorAll('figure.plot')).map((figure) => {
  const svgs = figure.querySelectorAll('svg');
  const svg = svgs[0];
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  let marks = 0;
  if (svg) {
    for (const shape of svg.querySelectorAll(SHAPES)) {
      if (shape.closest('defs, clipPath, [id*="matplotlib.axis"], [id*="legend"]')) continue;
      if (!shape.closest('[clip-path]')) continue;
      const shapeBox = shape.getBoundingClientRect();
      if (shapeBox.width > 0 || shapeBox.height > 0) marks += 1;
    }
  }
  const caption = figure.querySelector('figcaption');
  return {
    name: figure.dataset.plot ?? null,
    svgs: svgs.length,
    width: box.width,
    height: box.height,
    marks: marks,
    caption: caption ? caption.textContent.trim() : null,
  };
});
}
"""


def chromium_executable() -> tuple[str | None, str]:
    """The Chromium to launch, or None and why there is none (the skip reason). EVAL_PIPELINES_CHROMIUM
    names the executable, or is `none` to skip the browser tests."""
    override = os.environ.get(CHROMIUM_ENV)
    if override == "none":
        return None, f"{CHROMIUM_ENV}=none: no browser, on request"
    if override:
        if Path(override).is_file():
            return override, ""
        return None, f"{CHROMIUM_ENV}={override} is not a file"
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found, ""
    why = os.environ.get(CHROMIUM_MISSING_ENV) or (
        "run `python3 tasks.py test`, which installs Debian's chromium package, "
        f"or set {CHROMIUM_ENV} to a Chromium executable"
    )
    return None, f"no Chromium executable on PATH ({', '.join(CHROMIUM_NAMES)}): {why}"


@dataclass(frozen=True)
class Figure:
    """One rendered `<figure class="plot">`: what the browser laid out, not what the HTML says."""

    name: str | None
    svgs: int
    width: float
    height: float
    marks: int
    caption: str | None


@dataclass
class OpenedPage:
    """A page opened from a local file and everything it did while loading."""

    page: Page
    url: str
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    console: list[tuple[str, str]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Console errors and warnings, page errors, and any request but the file itself."""
        found = [
            f"console {kind}: {text}" for kind, text in self.console if kind in ("error", "warning")
        ]
        found += [f"page error: {error}" for error in self.page_errors]
        found += [f"network request blocked: {url}" for url in self.blocked]
        found += [
            f"request other than the file: {url}"
            for url in self.requests
            if url != self.url and not url.startswith("data:") and url not in self.blocked
        ]
        return found

    def figures(self) -> list[Figure]:
        return [Figure(**item) for item in self.page.evaluate(FIGURES_JS)]

    def evaluate(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)


class ReportBrowser:
    """One headless Chromium; each open() is a fresh context, so pages never share state."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self._opened: list[OpenedPage] = []

    def open(self, path: Path) -> OpenedPage:
        context = self.browser.new_context(viewport=VIEWPORT, service_workers="block")
        page = context.new_page()
        opened = OpenedPage(page=page, url=Path(path).resolve().as_uri())

        def route(route: Route) -> None:
            if route.request.url.startswith(LOCAL_SCHEMES):
                route.continue_()
            else:
                opened.blocked.append(route.request.url)
                route.abort()

        def on_console(message: ConsoleMessage) -> None:
            opened.console.append((message.type, message.text))

        def on_request(request: Request) -> None:
            opened.requests.append(request.url)

        def route_socket(socket: WebSocketRoute) -> None:
            opened.blocked.append(socket.url)
            socket.close()

        context.route("**/*", route)
        context.route_web_socket("**/*", route_socket)
        page.on("console", on_console)
        page.on("pageerror", lambda error: opened.page_errors.append(str(error)))
        page.on("request", on_request)
        page.goto(opened.url, wait_until="load")
        self._opened.append(opened)
        return opened

    def close(self) -> None:
        for opened in self._opened:
            opened.page.context.close()
        self.browser.close()


@pytest.fixture(scope="module")
def report_browser() -> Iterator[ReportBrowser]:
    """A headless Chromium for the test module (a launch costs about half a second)."""
    executable, why = chromium_executable()
    if executable is None:
        pytest.skip(why)
    with sync_playwright() as playwright:
        browser = ReportBrowser(
            playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        )
        try:
            yield browser
        finally:
            browser.close()
