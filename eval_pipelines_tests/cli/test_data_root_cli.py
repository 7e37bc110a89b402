"""Where a data root comes from (EVAL_PIPELINES_DATA, --data-dir, the data_dir resource) and what it
may be: a path or s3://bucket/prefix. Any other URL, or a bucket that is not there, exits 2 naming the
source, before anything is written (before, a URL became a local folder named 's3:' and every verb wrote
there and exited 0)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import data_root
from eval_pipelines.resources import DataDirResource
from eval_pipelines_tests.cli.conftest import CLI

URL = "gs://team-bucket/eval"


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
def test_a_url_that_is_not_s3_exits_2_naming_its_source_and_writes_nothing(
    tmp_path: Path, env_root: str | None, args: list[str], source: str
) -> None:
    result = _run(tmp_path, env_root, *args)
    assert result.returncode == 2, result.stderr
    assert f"error: {source}: '{URL}' is a gs:// URL" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_s3_root_whose_bucket_is_missing_exits_2_before_any_work(
    s3_root: str, tmp_path: Path, s3_service
) -> None:
    missing = "s3://nobody-made-this-bucket/eval"
    result = _run(tmp_path, None, "--data-dir", missing, "retrievers", "list")
    assert result.returncode == 2, result.stderr
    assert "error: --data-dir: bucket 'nobody-made-this-bucket' does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []
    assert s3_service.keys(s3_root.split("/")[2]) == []


def test_the_resource_and_a_plain_path_follow_the_same_rule(tmp_path: Path) -> None:
    with pytest.raises(
        InvalidInputError, match=r"data_dir\.path: 'gs://team-bucket/eval' is a gs://"
    ):
        _ = DataDirResource(path=URL).paths
    assert data_root(str(tmp_path / "data"), "x") == tmp_path / "data"
    assert DataDirResource(path=str(tmp_path)).paths.root == tmp_path
    assert str(DataDirResource(path="s3://team-bucket/eval").paths.root) == "s3://team-bucket/eval"


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        (["benchmark", "create", "s3://b/request.json"], "REQUEST.json"),
        (["benchmark", "plan", "s3://b/request.json"], "REQUEST.json"),
        (["benchmark", "export", "b1", "--output", "s3://b/x.csv"], "--output/-o"),
        (
            [
                "benchmark",
                "history",
                "--baseline",
                "a",
                "--candidate",
                "b",
                "--plot",
                "s3://b/x.svg",
            ],
            "--plot",
        ),
        (["ingest", "executions", "s3://b/x.jsonl"], "FILE"),
        (["ingest", "executions", "x.jsonl", "--ubi-sessions", "s3://b/e.jsonl"], "--ubi-sessions"),
        (["dataset", "import", "d", "s3://b/qrels.txt"], "FILE"),
        (["instance", "config", "--output", "s3://b/dagster.yaml"], "--output"),
        (["instance", "migrate", "--home", "s3://b/home"], "--home"),
    ],
    ids=lambda value: "-".join(value[:2]) if isinstance(value, list) else None,
)
def test_a_url_where_a_file_on_this_machine_is_named_exits_2_naming_the_argument(
    tmp_path: Path, args: list[str], argument: str
) -> None:
    """Only the data root may be on S3; as a Path, s3://b/x would be the local folder 's3:'."""
    result = _run(tmp_path, str(tmp_path / "data"), *args)
    assert result.returncode == 2, result.stderr
    assert f"argument {argument}: 's3://b/" in result.stderr and "is a URL" in result.stderr
    assert list(tmp_path.iterdir()) == []
