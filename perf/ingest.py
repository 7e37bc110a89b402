"""Benchmark: ingest 1M executions and 10M interactions of JSON Lines against DuckDB alone reading the
same file into Parquet; then the sampling benchmark's 10k stratified sample on the ingested logs.

The generated logs look like a month of production logs: lines in time order (sessions interleave),
UUID-like ids, a fifth of interactions with a small metadata object, several interaction types, and a
known number of bad rows of each kind (unknown execution, a document not served, a position as text,
a timestamp before its search, an id repeated with other content), so the counts can be checked
exactly. Each ingest starts from a data directory holding only the executions (a copy), so repeats
measure the same work; DuckDB's step is `COPY (SELECT * FROM read_json(...)) TO parquet`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.benchmarks.sampling import SessionFilter, sample_sessions
from eval_pipelines.core.logs.ingest import IngestReport, ingest_files
from eval_pipelines.core.paths import DataPaths
from perf.harness import BenchmarkResult, CorrectnessError, Target, run_contenders
from perf.sampling import check_sample

NAME = "ingest"
EXECUTIONS: dict[str, int] = {"tiny": 2_000, "small": 100_000, "full": 1_000_000}
INTERACTIONS_PER_EXECUTION = 10
DOCUMENTS_PER_EXECUTION = 24
NODES = 40
SAMPLE: dict[str, int] = {"tiny": 200, "small": 10_000, "full": 10_000}
CHUNK = 500_000
TYPES = np.array(["click", "click", "click", "add_to_cart", "purchase", "impression"])
# Every BAD_EVERY-th interaction line is broken, cycling through these kinds.
BAD_EVERY = 2_000
BAD_KINDS = (
    "unknown_execution_id",
    "document_not_served",
    "wrong_type",
    "timestamp_before_execution",
    "duplicate_interaction_id",
)
TARGET_RATIO = 2.0
TARGET_PEAK_BYTES = 2 * 2**30
TARGET_SAMPLE_SECONDS = 3.0
_START_US = 1_767_225_600 * 1_000_000  # 2026-01-01T00:00:00Z


def _ids(prefix: str, numbers: np.ndarray, width: int = 12) -> pa.Array:
    text = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, text, "")


def _iso(micros: np.ndarray) -> pa.Array:
    stamps = pa.array(micros, pa.timestamp("us"))
    return pc.binary_join_element_wise(pc.strftime(stamps, "%Y-%m-%dT%H:%M:%S"), "Z", "")


def _quoted(values: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise('"', values, '"', "")


def _write_lines(path: Path, columns: list[tuple[str, pa.Array]], handle: Any) -> None:
    pieces: list[Any] = []
    for index, (name, values) in enumerate(columns):
        pieces.append(("{" if index == 0 else ", ") + f'"{name}": ')
        pieces.append(values)
    pieces.append("}\n")
    lines = pc.binary_join_element_wise(*pieces, "")
    handle.write(memoryview(lines.buffers()[2])[: _byte_length(lines)])


def _byte_length(lines: pa.Array) -> int:
    offsets = np.frombuffer(lines.buffers()[1], np.int32)[: len(lines) + 1]
    return int(offsets[-1] - offsets[0])


def write_logs(directory: Path, execution_count: int, seed: int) -> dict[str, Any]:
    """executions.jsonl and interactions.jsonl; returns the counts the ingests must report."""
    rng = np.random.default_rng(seed)
    created = np.sort(rng.integers(0, 30 * 86_400_000_000, execution_count)) + _START_US
    documents = rng.integers(0, 2_000_000, (execution_count, DOCUMENTS_PER_EXECUTION))
    with (directory / "executions.jsonl").open("wb") as handle:
        for start in range(0, execution_count, CHUNK):
            rows = np.arange(start, min(start + CHUNK, execution_count))
            listed = pc.binary_join_element_wise(
                *[
                    _quoted(_ids("doc-", documents[rows, k], 8))
                    for k in range(DOCUMENTS_PER_EXECUTION)
                ],
                ", ",
            )
            _write_lines(
                directory / "executions.jsonl",
                [
                    ("execution_id", _quoted(_ids("exec-", rows))),
                    ("retriever_id", _quoted(pa.array(np.full(len(rows), "prod")))),
                    ("session_id", _quoted(_ids("sess-", rows // 3))),
                    ("user_id", _quoted(_ids("user-", rows // 7, 9))),
                    (
                        "query_input",
                        pc.binary_join_element_wise(
                            '{"text": "query ',
                            pc.cast(pa.array(rng.integers(0, 50_000, len(rows))), pa.string()),
                            '"}',
                            "",
                        ),
                    ),
                    ("documents", pc.binary_join_element_wise("[", listed, "]", "")),
                    (
                        "taxonomy_node_ids",
                        pc.binary_join_element_wise(
                            '["node-', pc.cast(pa.array(rows % NODES), pa.string()), '"]', ""
                        ),
                    ),
                    ("created_at", _quoted(_iso(created[rows]))),
                ],
                handle,
            )
    interaction_count = execution_count * INTERACTIONS_PER_EXECUTION
    owner = np.sort(rng.integers(0, execution_count, interaction_count))
    position = rng.integers(0, DOCUMENTS_PER_EXECUTION, interaction_count)
    delay = rng.integers(1_000_000, 600_000_000, interaction_count)
    stamps = created[owner] + delay
    order = np.argsort(stamps, kind="stable")  # logs are written in time order
    owner, position, stamps = owner[order], position[order], stamps[order]
    kinds = TYPES[rng.integers(0, len(TYPES), interaction_count)]
    bad = np.arange(BAD_EVERY - 1, interaction_count, BAD_EVERY)
    bad_kind = np.arange(len(bad)) % len(BAD_KINDS)
    with (directory / "interactions.jsonl").open("wb") as handle:
        for start in range(0, interaction_count, CHUNK):
            rows = np.arange(start, min(start + CHUNK, interaction_count))
            who = owner[rows].copy()
            doc = documents[who, position[rows]].copy()
            when = stamps[rows].copy()
            ids = np.arange(start, start + len(rows))
            in_chunk = (bad >= start) & (bad < start + len(rows))
            local, kind = bad[in_chunk] - start, bad_kind[in_chunk]
            who_text = _ids("exec-", who).to_numpy(zero_copy_only=False).astype(object)
            who_text[local[kind == 0]] = "exec-missing"
            doc[local[kind == 1]] = 3_000_000
            when[local[kind == 3]] = created[who[local[kind == 3]]] - 1_000_000
            ids[local[kind == 4]] = np.maximum(ids[local[kind == 4]] - 1, 0)
            position_text = (
                pc.cast(pa.array(position[rows]), pa.string())
                .to_numpy(zero_copy_only=False)
                .astype(object)
            )
            position_text[local[kind == 2]] = '"third"'
            metadata = np.where(
                rng.random(len(rows)) < 0.2,
                np.array(['{"device": "mobile", "page": 1}', '{"device": "desktop", "page": 2}'])[
                    rng.integers(0, 2, len(rows))
                ],
                "null",
            )
            _write_lines(
                directory / "interactions.jsonl",
                [
                    ("interaction_id", _quoted(_ids("int-", ids, 10))),
                    ("execution_id", _quoted(pa.array(who_text, pa.string()))),
                    ("document_id", _quoted(_ids("doc-", doc, 8))),
                    ("interaction_type", _quoted(pa.array(kinds[rows]))),
                    ("position", pa.array(position_text, pa.string())),
                    ("session_id", _quoted(_ids("sess-", who // 3))),
                    ("timestamp", _quoted(_iso(when))),
                    ("metadata", pa.array(metadata)),
                ],
                handle,
            )
    expected_bad = {name: int(np.sum(bad_kind == i)) for i, name in enumerate(BAD_KINDS)}
    return {
        "executions": execution_count,
        "interactions": interaction_count,
        "bad": expected_bad,
    }


def _check_report(report: IngestReport, expected: dict[str, Any]) -> dict[str, Any]:
    total = expected["interactions"]
    bad = expected["bad"]
    # A repeated id with other content is quarantined; the row it repeats was ingested.
    wanted = {reason: count for reason, count in bad.items() if count}
    if report.rows_read != total:
        raise CorrectnessError(f"read {report.rows_read} rows, the file has {total}")
    if report.quarantined != dict(sorted(wanted.items())):
        raise CorrectnessError(f"quarantined {report.quarantined}, expected {wanted}")
    if report.ingested != total - sum(bad.values()):
        raise CorrectnessError(f"ingested {report.ingested}, expected {total - sum(bad.values())}")
    return {"rows_read": report.rows_read, "ingested": report.ingested, "quarantined": wanted}


def _duckdb_alone(source: Path, target: Path) -> int:
    with duckdb.connect() as con:
        con.execute("SET threads = 2")
        con.execute(
            f"COPY (SELECT * FROM read_json('{source}', format = 'newline_delimited'))"
            f" TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
        )
    return target.stat().st_size


def run(scale: str, repeat: int, workdir: Path, seed: int = 5) -> BenchmarkResult:
    expected = write_logs(workdir, EXECUTIONS[scale], seed)
    executions_file, interactions_file = (
        workdir / "executions.jsonl",
        workdir / "interactions.jsonl",
    )
    seeded = DataPaths(workdir / "seeded")
    executions_report = ingest_files(seeded, "executions", [executions_file])
    if executions_report.ingested != expected["executions"]:
        raise CorrectnessError(f"executions: {executions_report.summary_lines()[0]}")
    runs = iter(range(1_000))

    def ingest() -> IngestReport:
        paths = DataPaths(workdir / f"run-{next(runs)}")
        shutil.copytree(seeded.root, paths.root)
        return ingest_files(paths, "interactions", [interactions_file])

    def duckdb_alone() -> int:
        return _duckdb_alone(interactions_file, workdir / "duckdb.parquet")

    contenders: list[tuple[str, Callable[[], Any]]] = [
        ("eval-pipelines ingest", ingest),
        ("duckdb read_json -> parquet", duckdb_alone),
    ]
    results, outputs = run_contenders(contenders, repeat, items=expected["interactions"])
    checks = _check_report(outputs["eval-pipelines ingest"], expected)
    outputs.clear()
    ingested = DataPaths(workdir / "run-0")
    sampled, sample_outputs = run_contenders(
        [
            (
                "sample_sessions on the ingested logs",
                lambda: sample_sessions(
                    ingested, SessionFilter(strategy="stratified"), SAMPLE[scale], seed
                ),
            )
        ],
        repeat,
    )
    checks["sample"] = check_sample(
        sample_outputs["sample_sessions on the ingested logs"], SAMPLE[scale]
    )
    ours, theirs = results
    return BenchmarkResult(
        name=NAME,
        parameters={
            **{k: v for k, v in expected.items() if k != "bad"},
            "bad_rows": expected["bad"],
        },
        contenders=[*results, *sampled],
        checks=checks,
        targets=[
            Target(
                "ingest seconds / DuckDB seconds",
                ours.median_seconds / theirs.median_seconds,
                TARGET_RATIO,
            ),
            Target("ingest peak RSS GiB", ours.peak_rss_bytes / 2**30, TARGET_PEAK_BYTES / 2**30),
            Target(
                "10k stratified sample seconds", sampled[0].median_seconds, TARGET_SAMPLE_SECONDS
            ),
        ],
    )
