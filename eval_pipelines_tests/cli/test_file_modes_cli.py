"""Issue 10 point 22: what the CLI writes honours the umask, as open() and mkdir() would.

Atomic writes used to go through tempfile.mkstemp (always 0600) and staging directories through
tempfile.mkdtemp (always 0700), so another account could not read any result.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.cli.conftest import CLI

NEW_EXECUTION = {
    "execution_id": "exec_modes_1",
    "retriever_id": "demo_prod",
    "session_id": "sess_modes_1",
    "query_input": {"text": "bike"},
    "documents": ["prod_000024", "prod_000196"],
    "created_at": "2026-10-01T00:00:00Z",
}
NEW_INTERACTION = {
    "execution_id": "exec_modes_1",
    "document_id": "prod_000196",
    "interaction_type": "click",
    "timestamp": "2026-10-01T00:00:05Z",
}


def run_with_umask(data_dir: Path, umask: int, *args: str) -> str:
    env = {**os.environ, "EVAL_PIPELINES_DATA": str(data_dir)}
    env.pop("DAGSTER_HOME", None)
    result = subprocess.run(
        [str(CLI), *args], env=env, capture_output=True, text=True, timeout=300, umask=umask
    )
    assert result.returncode == 0, (args, result.stderr[-3000:])
    return result.stdout


def entries(root: Path) -> dict[Path, int]:
    """Every file and directory under root (root included), with its inode."""
    found = {root: root.lstat().st_ino}
    for directory, names, files in os.walk(root):
        for name in names + files:
            path = Path(directory, name)
            found[path] = path.lstat().st_ino
    return found


@pytest.mark.parametrize(
    ("umask", "file_mode", "directory_mode"),
    [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)],
    ids=["umask 022", "umask 077"],
)
def test_every_file_and_directory_the_cli_writes_honours_the_umask(
    world_copy: DataPaths, tmp_path: Path, umask: int, file_mode: int, directory_mode: int
) -> None:
    root = world_copy.root
    shutil.rmtree(root / "collections" / "products" / "bm25")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "executions.jsonl").write_text(json.dumps(NEW_EXECUTION) + "\n")
    (inputs / "interactions.jsonl").write_text(json.dumps(NEW_INTERACTION) + "\n")
    judgments = (root / "demo" / "datasets" / "demo-judgments.jsonl").read_text().splitlines()
    (inputs / "mini.jsonl").write_text("\n".join(judgments[:3]) + "\n")
    export = tmp_path / "exports" / "prod.run"
    before = entries(root)

    run_with_umask(root, umask, "ingest", "executions", str(inputs / "executions.jsonl"))
    run_with_umask(root, umask, "ingest", "interactions", str(inputs / "interactions.jsonl"))
    run_with_umask(root, umask, "dataset", "import", "mini", str(inputs / "mini.jsonl"))
    benchmark = json.loads(
        run_with_umask(
            root,
            umask,
            "benchmark",
            "create",
            "--name",
            "modes",
            "--baseline",
            "demo_prod",
            "--candidate",
            "demo_better",
            "--sessions",
            "20",
            "--wait",
        )
    )
    assert benchmark["status"] == "completed"
    evaluation = json.loads(
        run_with_umask(root, umask, "evaluation", "run", "demo_prod", "--dataset", "mini", "--wait")
    )
    evaluation_id = evaluation["evaluation_id"]
    run_with_umask(
        root,
        umask,
        "evaluation",
        "export",
        evaluation_id,
        "--format",
        "trec-run",
        "--output",
        str(export),
    )

    written = {path for path, inode in entries(root).items() if before.get(path) != inode} | {
        export,
        export.parent,
    }
    relative = {path.relative_to(tmp_path).as_posix() for path in written}
    bm25 = next((root / "collections" / "products" / "bm25").iterdir())
    for expected in (
        root / "datasets" / "mini",
        root / "datasets" / "mini" / "judgments.parquet",
        bm25,
        bm25 / "manifest.json",
        root / "benchmarks" / benchmark["benchmark_id"],
        root / "benchmarks" / benchmark["benchmark_id"] / "record.json",
        root / "benchmarks" / benchmark["benchmark_id"] / "session_scores.parquet",
        root / "evaluations" / evaluation_id / "query_metrics.parquet",
        root / "executions" / "demo_better",
        root / "warehouse.duckdb",
        root / "dagster_home" / "dagster.yaml",
        export,
    ):
        assert expected in written, expected
    assert any(p.parent == root / "logs" / "executions" for p in written)
    assert not [p for p in relative if p.endswith((".tmp", ".new"))], "a staging name was left"

    wrong = {
        path.relative_to(tmp_path).as_posix(): oct(stat.S_IMODE(path.lstat().st_mode))
        for path in written
        if stat.S_IMODE(path.lstat().st_mode) != (directory_mode if path.is_dir() else file_mode)
    }
    assert wrong == {}, f"expected files {oct(file_mode)} and directories {oct(directory_mode)}"
