import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CLI = Path(sys.executable).parent / "eval-pipelines"


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(data_dir: Path, *args: str, timeout: float = 300) -> CliResult:
    """Run the real console script in a subprocess against one data directory."""
    env = {**os.environ, "EVAL_PIPELINES_DATA": str(data_dir)}
    env.pop("DAGSTER_HOME", None)
    result = subprocess.run(
        [str(CLI), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    return CliResult(result.returncode, result.stdout, result.stderr)


def run_cli_at_once(data_dir: Path, cases: dict[str, list[str]]) -> dict[str, CliResult]:
    """Several CLI calls at once (each mostly waits on its imports), their results by case name."""
    env = {**os.environ, "EVAL_PIPELINES_DATA": str(data_dir)}
    env.pop("DAGSTER_HOME", None)
    running = {
        name: subprocess.Popen(
            [str(CLI), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, args in cases.items()
    }
    results = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=120)
        results[name] = CliResult(process.returncode, stdout, stderr)
    return results
