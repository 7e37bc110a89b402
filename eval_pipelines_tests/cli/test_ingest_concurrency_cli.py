"""`eval-pipelines ingest` processes running at once on overlapping files store every id exactly once.

Without a lock around read-stored-ids-then-write, each process sees the shared ids as new and stores
them (issue 10: 30k + 30k rows with a 10k overlap stored 60,000 rows for 50,000 ids).

Each process runs the console script's entry point (eval_pipelines.cli.main:main) with the CLI's
arguments. It starts the command only after a go signal, sent to all of them once all have imported
everything: Python start-up on a busy machine varies by more than the race window, and the test must
catch the race every time, not now and then.
"""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb

# The console script's body, behind a start barrier: say "ready", wait for a line on stdin, run.
CLI_AFTER_GO = """
import sys
from eval_pipelines.cli.main import main
print("ready", flush=True)
sys.stdin.readline()
sys.exit(main(sys.argv[1:]))
"""

# The case: 30,000 + 30,000 ids with 10,000 in common, so 50,000 distinct ids; each file is
# ingested by two processes, four at once. Even after the go signal, the time a process needs to reach
# its read of the stored ids varies by up to a second on a busy machine; with four processes, some two
# of them read within the race window of an unlocked ingest (its write of 30,000 executions). Without
# the lock, six runs out of six stored 60,000-80,000 rows or reported 70,000 ingested.
RANGES = ((0, 30_000), (20_000, 50_000)) * 2
UNIQUE_IDS = 50_000
BAD_ROWS = 100
SERVED = 30


def execution(i: int) -> str:
    return json.dumps(
        {
            "execution_id": f"exec_{i:06d}",
            "retriever_id": "prod",
            "session_id": f"s{i}",
            "query_input": {"text": f"query {i % 500}"},
            "documents": [f"doc_{(i + rank) % 1000:04d}" for rank in range(SERVED)],
            "created_at": "2026-10-01T12:00:00Z",
        }
    )


def interaction(i: int) -> str:
    return json.dumps(
        {
            "interaction_id": f"int_{i:06d}",
            "execution_id": f"exec_{i:06d}",
            "document_id": f"doc_{(i + 1) % 1000:04d}",
            "interaction_type": "click",
            "position": 1,
            "timestamp": "2026-10-01T12:00:07Z",
        }
    )


def bad_execution(i: int) -> str:
    return json.dumps({"execution_id": f"bad_{i}", "created_at": "not a time"})


def overlapping_files(tmp_path: Path, table: str, line: Callable[[int], str]) -> list[Path]:
    """One file per range; for executions each also carries the same BAD_ROWS rows."""
    bad = [bad_execution(i) for i in range(BAD_ROWS)] if table == "executions" else []
    files = []
    for n, (start, stop) in enumerate(RANGES):
        path = tmp_path / f"{table}_{n}.jsonl"
        path.write_text("\n".join([line(i) for i in range(start, stop)] + bad) + "\n")
        files.append(path)
    return files


def ingest_at_once(
    data_dir: Path | str, table: str, files: list[Path], cwd: Path | None = None
) -> list[dict]:
    """Run `ingest TABLE FILE --json` for every file at the same moment; return their reports.
    cwd must not be the project root (`python -c` puts the cwd first on sys.path): by default the
    data directory's parent; an S3 root (data_dir a URL) needs one given."""
    env = {**os.environ, "EVAL_PIPELINES_DATA": str(data_dir)}
    env.pop("DAGSTER_HOME", None)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CLI_AFTER_GO, "ingest", table, str(file), "--json"],
            env=env,
            cwd=cwd or Path(data_dir).parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for file in files
    ]
    for process in processes:
        assert process.stdout.readline() == "ready\n"
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        reports.append(json.loads(out))
    return reports


def stored_counts(data_dir: Path, table: str, key: str) -> tuple[int, int]:
    """(rows, distinct keys) of a stored log table."""
    with duckdb.connect() as con:
        return con.execute(
            f"SELECT count(*), count(DISTINCT {key}) FROM read_parquet(?)",
            [str(data_dir / "logs" / table / "*.parquet")],
        ).fetchone()


def test_concurrent_ingests_of_overlapping_files_store_each_id_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    rows_read = sum(stop - start for start, stop in RANGES)

    executions = ingest_at_once(
        data_dir, "executions", overlapping_files(tmp_path, "executions", execution)
    )

    assert stored_counts(data_dir, "executions", "execution_id") == (UNIQUE_IDS, UNIQUE_IDS)
    assert sum(r["ingested"] for r in executions) == UNIQUE_IDS
    assert sum(r["already_present"] for r in executions) == rows_read - UNIQUE_IDS
    # The quarantine's read-then-write is under the same lock: the shared bad rows are kept once.
    assert stored_counts(data_dir, "quarantine", "raw") == (BAD_ROWS, BAD_ROWS)
    assert sum(r["quarantine_already_present"] for r in executions) == 3 * BAD_ROWS

    interactions = ingest_at_once(
        data_dir, "interactions", overlapping_files(tmp_path, "interactions", interaction)
    )

    assert stored_counts(data_dir, "interactions", "interaction_id") == (UNIQUE_IDS, UNIQUE_IDS)
    assert sum(r["ingested"] for r in interactions) == UNIQUE_IDS
    assert all(r["quarantined"] == {} for r in interactions)
