"""Screenshots of the demo's reports for the README (`python3 tasks.py screenshots`).

Builds the demo world in a temporary data directory, runs the demo, writes the demo's benchmark report
and demo_better's evaluation report against demo_prod's with the real CLI, opens both in headless
Chromium (the browser tests' harness, so the same checks apply) and saves PNGs under docs/screenshots/:
the full page from the top down to the end of the first drill-down query (the whole drill-down runs to
tens of thousands of pixels), scaled down until each is under 1 MB so the repository stays small.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from eval_pipelines_tests.browser import LAUNCH_ARGS, ReportBrowser, chromium_executable

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "eval-pipelines"
MAX_BYTES = 1_000_000
SHRINK = 0.85
SHOTS = {"benchmark": "benchmark-report.png", "evaluation": "evaluation-report.png"}
# Where a shot ends: below the first query shown after the plots, or the whole page when none is.
SHOT_BOTTOM_JS = """
() => {
  const first = document.querySelector('section#plots ~ section article');
  const end = document.documentElement.scrollHeight;
  return first ? Math.min(end, first.getBoundingClientRect().bottom + window.scrollY + 24) : end;
}
"""


def cli(data_dir: Path, *args: str) -> str:
    """The real console script; its stderr passes through, so the demo's progress shows."""
    env = {**os.environ, "EVAL_PIPELINES_DATA": str(data_dir)}
    env.pop("DAGSTER_HOME", None)
    print("+ eval-pipelines", " ".join(args), flush=True)
    result = subprocess.run([str(CLI), *args], env=env, stdout=subprocess.PIPE, text=True)
    if result.returncode:
        sys.exit(f"eval-pipelines {' '.join(args)} exited {result.returncode}")
    return result.stdout


def _records(data_dir: Path, kind: str) -> list[dict]:
    documents = (json.loads(p.read_text()) for p in sorted((data_dir / kind).glob("*/record.json")))
    return [d.get("record", d) for d in documents]


def demo_reports(data_dir: Path, out: Path, small: bool) -> dict[str, Path]:
    """The demo run, then its benchmark's report and demo_better's evaluation against demo_prod's."""
    cli(data_dir, "demo", *(["--small"] if small else []))
    # The run just made is the newest (a kept data directory may hold earlier ones).
    benchmark = max(_records(data_dir, "benchmarks"), key=lambda r: r["created_at"])
    newest = sorted(_records(data_dir, "evaluations"), key=lambda r: r["created_at"])
    evaluations = {r["retriever_id"]: r["evaluation_id"] for r in newest}
    reports = {name: out / f"{name}.html" for name in SHOTS}
    cli(data_dir, "report", benchmark["benchmark_id"], "--output", str(reports["benchmark"]))
    cli(
        data_dir,
        "report",
        evaluations["demo_better"],
        "--against",
        evaluations["demo_prod"],
        "--output",
        str(reports["evaluation"]),
    )
    return reports


def small_png(png: bytes, limit: int = MAX_BYTES) -> bytes:
    """A 256-colour PNG (reports are flat colours and text), scaled down until it fits the limit."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    scale = 1.0
    while True:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        scaled = image if scale == 1.0 else image.resize(size, Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        scaled.quantize(colors=256).save(buffer, format="PNG", optimize=True)
        if buffer.tell() < limit:
            return buffer.getvalue()
        scale *= SHRINK


def shoot(browser: ReportBrowser, reports: dict[str, Path], target: Path) -> dict[str, Path]:
    """Each report opened and shot; what the browser tests would flag is printed as a warning."""
    target.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, report in reports.items():
        opened = browser.open(report)
        for problem in opened.problems():
            print(f"warning: {report.name}: {problem}", file=sys.stderr)
        bottom = opened.evaluate(SHOT_BOTTOM_JS)
        width = opened.evaluate("() => document.documentElement.scrollWidth")
        clip = {"x": 0, "y": 0, "width": width, "height": bottom}
        png = small_png(opened.page.screenshot(full_page=True, clip=clip))
        path = written[name] = target / SHOTS[name]
        path.write_bytes(png)
        width, height = Image.open(io.BytesIO(png)).size
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"{shown}: {width}x{height}, {len(png):,} bytes", flush=True)
    return written


def screenshot(reports: dict[str, Path], target: Path) -> None:
    executable, why = chromium_executable()
    if executable is None:
        sys.exit(f"screenshots need Chromium: {why}")
    with sync_playwright() as playwright:
        browser = ReportBrowser(
            playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        )
        try:
            shoot(browser, reports, target)
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="tasks.py screenshots", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--output-dir", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--small", action="store_true", help="the small demo world (a quick look)")
    parser.add_argument(
        "--keep",
        type=Path,
        help="use and keep this data directory (the demo world is built only once)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="eval-pipelines-screenshots-") as scratch:
        data_dir = args.keep or Path(scratch) / "data"
        reports = demo_reports(data_dir, Path(scratch), args.small)
        screenshot(reports, args.output_dir)


if __name__ == "__main__":
    main()
