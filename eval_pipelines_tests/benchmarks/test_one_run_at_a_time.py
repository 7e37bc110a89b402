"""Two `benchmark rerun` of one id started at once: exactly one runs, the other says the benchmark
is running and exits 2 (issue 10.8). Real processes, a real loopback engine that counts its calls."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import yaml

from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.cli.conftest import CLI, run_cli
from eval_pipelines_tests.search_stub import search_stub

SESSIONS = 40
PAUSE_S = 0.05


def test_two_reruns_at_once_replay_once(world_copy: DataPaths) -> None:
    calls = 0
    lock = threading.Lock()

    def answer(text: str) -> list[tuple[str, float]]:
        nonlocal calls
        with lock:
            calls += 1
        time.sleep(PAUSE_S)
        return [("prod_000001", 1.0)]

    with search_stub(answer) as url:
        config = {"id": "slow", "kind": "http", "http": {"url": url, "concurrency": 1}}
        (world_copy.retrievers_dir / "slow.yaml").write_text(yaml.safe_dump(config))
        for round_ in range(2):
            created = run_cli(
                world_copy.root,
                "benchmark",
                "create",
                "--name",
                f"twice {round_}",
                "--baseline",
                "demo_prod",
                "--candidate",
                "slow",
                "--sessions",
                str(SESSIONS),
                "--min-coverage",
                "0",  # the stub serves documents the logs never showed: not what is tested here
            )
            assert created.returncode == 0, created.stderr
            benchmark_id = json.loads(created.stdout)["benchmark_id"]
            env = {**os.environ, "EVAL_PIPELINES_DATA": str(world_copy.root)}
            env.pop("DAGSTER_HOME", None)
            before = calls
            both = [
                subprocess.Popen(
                    [str(CLI), "benchmark", "rerun", benchmark_id],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(2)
            ]
            outcomes = sorted(
                (process.returncode, *output)
                for process, output in ((p, p.communicate(timeout=300)) for p in both)
            )
            (won, record_text, _), (lost, refused_out, refused) = outcomes
            assert (won, lost) == (0, 2), refused
            assert refused_out == ""
            assert f"benchmark {benchmark_id} is running" in refused or "still running" in refused
            assert json.loads(record_text)["status"] == "completed"
            assert calls - before == SESSIONS, "the sessions were replayed exactly once"
