"""A data root given as a URL (s3://...) is refused, naming where it came from: before, it became a
local folder named 's3:' under the working directory and everything was written there silently."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import local_data_root
from eval_pipelines.resources import DataDirResource
from eval_pipelines_tests.cli.conftest import CLI

URL = "s3://team-bucket/eval"


def _run(cwd: Path, env_root: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("EVAL_PIPELINES_DATA", "DAGSTER_HOME")}
    if env_root is not None:
        env["EVAL_PIPELINES_DATA"] = env_root
    return subprocess.run(
        [str(CLI), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("env_root", "args", "source"),
    [
        (URL, ["retrievers", "list"], "EVAL_PIPELINES_DATA"),
        (None, ["--data-dir", URL, "retrievers", "list"], "--data-dir"),
    ],
    ids=["environment", "flag"],
)
def test_a_url_data_root_exits_2_naming_its_source_and_writes_nothing(
    tmp_path: Path, env_root: str | None, args: list[str], source: str
) -> None:
    result = _run(tmp_path, env_root, *args)
    assert result.returncode == 2, result.stderr
    assert f"error: {source}: '{URL}' is a URL" in result.stderr
    assert "not supported yet" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_resource_and_a_plain_path_follow_the_same_rule(tmp_path: Path) -> None:
    with pytest.raises(
        InvalidInputError, match=r"data_dir\.path: 's3://team-bucket/eval' is a URL"
    ):
        _ = DataDirResource(path=URL).paths
    assert local_data_root(str(tmp_path / "data"), "x") == tmp_path / "data"
    assert DataDirResource(path=str(tmp_path)).paths.root == tmp_path
