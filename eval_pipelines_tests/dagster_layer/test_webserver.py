"""The Dagster UI door: the real webserver loads the code location and shows the demo assets."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from eval_pipelines_tests.conftest import free_port

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


def test_webserver_serves_the_demo_assets(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "EVAL_PIPELINES_DATA": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path),
    }
    webserver = Path(sys.executable).parent / "dagster-webserver"
    process = subprocess.Popen(
        [str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
