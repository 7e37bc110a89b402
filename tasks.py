#!/usr/bin/env python3
"""Set-up and entry points that need nothing but Python 3.11+ and pip.

python3 tasks.py demo   # create .venv, install, build the demo world and run the demo
python3 tasks.py test   # create .venv, install, make sure Chromium is there (the report tests open the
                        # reports in it), lint and run the whole test suite
python3 tasks.py ui     # create .venv, install, open the Dagster UI (dagster dev) on 127.0.0.1:3000
                        # (--port N for another port)
python3 tasks.py bench  # also install the peers (ranx), then run the benchmark suite (args: see --help)
python3 tasks.py screenshots  # the demo's benchmark and evaluation reports as PNGs under docs/screenshots/
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("EVAL_PIPELINES_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"
BENCH_STAMP = VENV / ".installed-bench"


def run(*command: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(c) for c in command), flush=True)
    result = subprocess.run([str(c) for c in command], cwd=ROOT, env=env)
    if result.returncode:
        sys.exit(result.returncode)


def setup() -> None:
    """(Re)install into the venv when pyproject.toml is newer than the last install."""
    if sys.version_info < (3, 11):  # noqa: UP036 - runs under the system Python, before the venv exists
        sys.exit(f"eval-pipelines needs Python >= 3.11 (this is {sys.version.split()[0]})")
    if not (BIN / "python").exists():
        print(f"creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.stat().st_mtime >= (ROOT / "pyproject.toml").stat().st_mtime:
        return
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[test,scale,k8s]")
    STAMP.touch()
    BENCH_STAMP.unlink(missing_ok=True)


def setup_bench() -> None:
    """The peers the benchmark suite measures against (ranx), installed once beside the test set."""
    if BENCH_STAMP.exists():
        return
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[test,scale,k8s,bench]")
    BENCH_STAMP.touch()


PARALLEL = ["-n", "2", "--dist", "loadfile"]
CHROMIUM_ENV = "EVAL_PIPELINES_CHROMIUM"
CHROMIUM_MISSING_ENV = "EVAL_PIPELINES_CHROMIUM_MISSING"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
APT_INSTALL = ("apt-get", "install", "-y", "--no-install-recommends")


def _apt(*command: str) -> str | None:
    """Run one apt-get command, its output shown; None on success, else the reason it failed."""
    print("+", " ".join(command), flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        result = subprocess.run(command, env=env, stdin=subprocess.DEVNULL)
    except OSError as error:
        return f"{command[0]} could not start: {error}"
    return f"`{' '.join(command)}` exited {result.returncode}" if result.returncode else None


def ensure_debian_packages(
    what: str, packages: tuple[str, ...], present: Callable[[], str | None]
) -> str | None:
    """Install Debian packages a test needs like any other dependency, when `present()` finds
    nothing and we may (root with apt-get). None once present, else why not: the tests that need
    them skip with that reason instead of failing."""
    found = present()
    if found:
        print(f"{what}: {found}", flush=True)
        return None
    command = (*APT_INSTALL, *packages)
    if shutil.which("apt-get") is None:
        return f"{what} is not on PATH and there is no apt-get to install it"
    if os.name != "posix" or os.geteuid() != 0:
        return f"{what} is not on PATH; install it with `{' '.join(command)}` as root"
    print(f"{what}: not on PATH, installing Debian's {' '.join(packages)}", flush=True)
    failure = _apt(*command)
    if failure:
        print(f"{what}: {failure}; updating the package lists and trying once more", flush=True)
        failure = _apt("apt-get", "update") or _apt(*command)
    found = present()
    if failure or found is None:
        return f"{what} could not be installed: {failure or 'apt-get put nothing usable on PATH'}"
    print(f"{what}: installed {found}", flush=True)
    return None


def ensure_chromium() -> str | None:
    """Chromium for the tests that open reports in a real browser (Debian's package).
    EVAL_PIPELINES_CHROMIUM names the executable to use, or `none` to install nothing and skip them."""
    override = os.environ.get(CHROMIUM_ENV)
    if override == "none":
        return f"{CHROMIUM_ENV}=none: no browser, on request"
    if override:
        if Path(override).is_file():
            print(f"chromium: {override} (from {CHROMIUM_ENV})", flush=True)
            return None
        return f"{CHROMIUM_ENV}={override} is not a file"
    return ensure_debian_packages(
        "chromium",
        ("chromium",),
        lambda: next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None),
    )


def _services_present() -> str | None:
    """Postgres (pg_ctl, off PATH under /usr/lib/postgresql on Debian) and redis-server, or None."""
    pg_ctl = shutil.which("pg_ctl") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))), None
    )
    redis = shutil.which("redis-server")
    return f"{pg_ctl}, {redis}" if pg_ctl and redis else None


def ensure_services() -> None:
    """Postgres and Redis for the deployment tests (services.py starts them on 127.0.0.1)."""
    missing = ensure_debian_packages(
        "postgres and redis", ("postgresql", "redis-server"), _services_present
    )
    if missing:
        print(f"postgres and redis: {missing}; the deployment tests will skip", flush=True)


def browser_env() -> dict[str, str]:
    """The environment for a command that needs Chromium, saying why it is missing when it is."""
    env = dict(os.environ)
    missing = ensure_chromium()
    if missing:
        print(f"chromium: {missing}; the browser tests will skip", flush=True)
        env[CHROMIUM_MISSING_ENV] = missing
    return env


def test(args: list[str]) -> None:
    env = browser_env()
    ensure_services()
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    # Two workers, one test file each at a time (module fixtures stay in one process): most tests
    # wait on subprocesses and servers, so this halves the suite's time on CI's 2 cores.
    parallel = [] if any(a.startswith("-n") for a in args) else PARALLEL
    # The slowest tests named in every run's log, so the suite's time budget is watched, not guessed.
    run(BIN / "python", "-m", "pytest", *parallel, "--durations=20", *args, env=env)


def screenshots(args: list[str]) -> None:
    """Screenshots of the demo's reports (eval_pipelines_tests/reports/screenshots.py) for the docs."""
    env = browser_env()
    if CHROMIUM_MISSING_ENV in env:
        sys.exit(f"screenshots need Chromium: {env[CHROMIUM_MISSING_ENV]}")
    run(BIN / "python", "-m", "eval_pipelines_tests.reports.screenshots", *args, env=env)


def bench(args: list[str]) -> None:
    setup_bench()
    run(BIN / "python", "-m", "perf", *(args or ["all"]))


def demo(args: list[str]) -> None:
    run(BIN / "eval-pipelines", "demo", *args)


def ui(args: list[str]) -> None:
    """dagster dev on 127.0.0.1; `--port N` (default 3000) and any other dagster dev arguments."""
    port = "3000"
    rest = list(args)
    for index, arg in enumerate(rest):
        if arg == "--port" and index + 1 < len(rest):
            port = rest[index + 1]
            del rest[index : index + 2]
            break
        if arg.startswith("--port="):
            port = arg.split("=", 1)[1]
            del rest[index]
            break
    if not port.isdigit() or not 0 < int(port) < 65536:
        sys.exit(f"--port: expected a TCP port number (1-65535), got {port!r}")
    env = dict(os.environ)
    code = "from eval_pipelines.core.paths import DataPaths; from eval_pipelines.instance import ensure_dagster_home; print(ensure_dagster_home(DataPaths.from_env()))"
    home = subprocess.run(
        [str(BIN / "python"), "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    env["DAGSTER_HOME"] = home
    print(f"DAGSTER_HOME={home}", flush=True)
    run(
        BIN / "dagster",
        "dev",
        "-w",
        "workspace.yaml",
        "-h",
        "127.0.0.1",
        "-p",
        port,
        *rest,
        env=env,
    )


COMMANDS = {
    "test": test,
    "demo": demo,
    "ui": ui,
    "bench": bench,
    "screenshots": screenshots,
    "setup": lambda args: None,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    setup()
    COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
