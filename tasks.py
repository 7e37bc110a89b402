#!/usr/bin/env python3
"""Set-up and entry points that need nothing but Python 3.11+ and pip.

python3 tasks.py demo   # create .venv, install, build the demo world and run the demo
python3 tasks.py test   # create .venv, install, lint and run the whole test suite
python3 tasks.py ui     # create .venv, install, open the Dagster UI (dagster dev) on 127.0.0.1:3000
                        # (--port N for another port)
python3 tasks.py bench  # also install the peers (ranx), then run the benchmark suite (args: see --help)
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
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
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[test]")
    STAMP.touch()
    BENCH_STAMP.unlink(missing_ok=True)


def setup_bench() -> None:
    """The peers the benchmark suite measures against (ranx), installed once beside the test set."""
    if BENCH_STAMP.exists():
        return
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[test,bench]")
    BENCH_STAMP.touch()


def test(args: list[str]) -> None:
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    run(BIN / "python", "-m", "pytest", *args)


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


COMMANDS = {"test": test, "demo": demo, "ui": ui, "bench": bench, "setup": lambda args: None}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    setup()
    COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
