"""Real Dagster processes for the tests of this package: `dagster dev` on loopback, always stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.conftest import free_port

PROJECT = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).parent / "dagster"


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM to the whole group (dagster dev's webserver, daemon and code servers), then SIGKILL."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def dagster_dev(paths: DataPaths, home: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`dagster dev` (webserver + daemon) on 127.0.0.1 over the data directory, in its own group."""
    env = {
        **os.environ,
        "EVAL_PIPELINES_DATA": str(paths.root),
        "DAGSTER_HOME": str(home or paths.root / "dagster_home"),
    }
    process = subprocess.Popen(
        [str(DAGSTER), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(free_port())],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        stop_process_group(process)
