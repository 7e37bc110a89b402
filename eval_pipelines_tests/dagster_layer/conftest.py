"""Real Dagster processes for the tests of this package: `dagster dev` on loopback, always stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.loopback import free_port

PROJECT = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).parent / "dagster"
STARTUP_DEADLINE_S = 120


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


def wait_until_serving(process: subprocess.Popen, port: int) -> None:
    """Until the webserver answers (its instance storage is then initialized), or fail."""
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "dagster dev exited while starting"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise AssertionError(f"dagster dev did not serve 127.0.0.1:{port} in {STARTUP_DEADLINE_S} s")


@contextmanager
def dagster_dev(paths: DataPaths, home: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`dagster dev` (webserver + daemon) on 127.0.0.1 over the data directory, in its own group,
    yielded once its webserver answers, as a user waits for the UI before using it."""
    env = {
        **os.environ,
        "EVAL_PIPELINES_DATA": str(paths.root),
        "DAGSTER_HOME": str(home or paths.root / "dagster_home"),
    }
    port = free_port()
    process = subprocess.Popen(
        [str(DAGSTER), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_serving(process, port)
        yield process
    finally:
        stop_process_group(process)
