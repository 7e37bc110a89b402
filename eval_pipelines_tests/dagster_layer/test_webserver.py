"""The Dagster UI door: `tasks.py ui` starts the real webserver, which shows the demo assets."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from eval_pipelines_tests.dagster_layer.conftest import stop_process_group
from eval_pipelines_tests.loopback import free_port

PROJECT = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE_S = 120


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_tasks_ui_serves_the_demo_assets_on_the_port_asked(tmp_path: Path) -> None:
    """`python3 tasks.py ui --port N`, as the README shows it: the UI on 127.0.0.1:N, its instance
    under the data directory with run monitoring on."""
    port = free_port()
    data = tmp_path / "data"
    env = {
        **os.environ,
        "EVAL_PIPELINES_DATA": str(data),
        "EVAL_PIPELINES_VENV": str(Path(sys.executable).parent.parent),
    }
    env.pop("DAGSTER_HOME", None)
    process = subprocess.Popen(
        [sys.executable, "tasks.py", "ui", "--port", str(port)],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        nodes = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                answer = graphql(port, "{ assetNodes { assetKey { path } groupName } }")
                nodes = answer["data"]["assetNodes"]
                if nodes:
                    break
            except (urllib.error.URLError, ConnectionError, KeyError, TypeError):
                pass
            time.sleep(0.5)
        assert nodes, "the webserver did not serve the asset graph in time"
        assert {(n["assetKey"]["path"][0], n["groupName"]) for n in nodes} >= {
            ("demo_catalog", "demo"),
            ("demo_logs", "demo"),
            ("demo_judgments", "demo"),
        }
        config = yaml.safe_load((data / "dagster_home" / "dagster.yaml").read_text())
        assert config["run_monitoring"]["enabled"] is True
    finally:
        stop_process_group(process)


def test_tasks_ui_refuses_a_port_that_is_not_one() -> None:
    result = subprocess.run(
        [sys.executable, "tasks.py", "ui", "--port", "http"],
        cwd=PROJECT,
        env={**os.environ, "EVAL_PIPELINES_VENV": str(Path(sys.executable).parent.parent)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "--port: expected a TCP port number (1-65535), got 'http'" in result.stderr
