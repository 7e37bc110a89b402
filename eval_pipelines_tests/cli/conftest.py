import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CliResult]:
    """A small demo world built once by `eval-pipelines demo --small`, and that run's output."""
    data_dir = tmp_path_factory.mktemp("small-demo") / "data"
    result = run_cli(data_dir, "demo", "--small")
    assert result.returncode == 0, result.stderr[-4000:]
    return data_dir, result
