"""Reports and score exports read from a data root on S3 (a loopback moto server): the partitions
the small demo wrote, copied to a bucket, give the same report bytes and the same score tables, and a
report lands as one object beside its record, with nothing else written."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.records import RecordStore
from eval_pipelines.core.reports.html.build import build_report, write_report
from eval_pipelines.core.reports.score_export import score_table
from eval_pipelines.core.table_names import BENCHMARKS, EVALUATIONS
from eval_pipelines_tests.cli.conftest import CliResult
from eval_pipelines_tests.services import S3, upload_world


def _records(data_dir: Path, kind: str) -> list[dict[str, Any]]:
    return [
        json.loads(path.read_text())["record"]
        for path in sorted((data_dir / kind).glob("*/record.json"))
    ]


def _earliest(records: list[dict[str, Any]], **fields: str) -> str:
    """The demo's own record: other tests share this world and may add records like it."""
    found = [
        r
        for r in records
        if r["status"] == "completed" and all(r.get(k) == v for k, v in fields.items())
    ]
    record = min(found, key=lambda r: r["created_at"])
    return record.get("benchmark_id") or record["evaluation_id"]


@pytest.fixture(scope="module")
def world(
    small_demo: tuple[Path, CliResult],
    s3_service: S3,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """The small demo (its completed benchmark and evaluations) copied once to a bucket of this
    module, with the environment that reaches it set for the module."""
    data_dir = small_demo[0]
    bucket = f"reports-{os.getpid()}"
    root = f"{s3_service.create_bucket(bucket)}/team"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in s3_service.env.items():
            patch.setenv(name, value)
        patch.setenv("EVAL_PIPELINES_CACHE", str(tmp_path_factory.mktemp("cache")))
        remote = upload_world(DataPaths(data_dir), root)
        evaluations = _records(data_dir, EVALUATIONS)
        yield {
            "local": DataPaths(data_dir),
            "remote": remote,
            "root": root,
            "keys": lambda: set(s3_service.keys(bucket)),
            "prefix": "team",
            "benchmark": _earliest(
                _records(data_dir, BENCHMARKS), benchmark_name="demo: production vs candidates"
            ),
            "evaluations": [
                _earliest(evaluations, retriever_id=retriever)
                for retriever in ("demo_better", "demo_prod")
            ],
        }


def test_a_report_built_from_s3_has_the_local_bytes_and_is_one_object(
    world: dict[str, Any],
) -> None:
    evaluation, baseline = world["evaluations"]
    root, prefix, benchmark = world["root"], world["prefix"], world["benchmark"]
    for kind, record_id in ((EVALUATIONS, evaluation), (BENCHMARKS, benchmark)):
        (world["remote"].root / kind / record_id / "report.html").unlink(missing_ok=True)
    before = world["keys"]()
    cases = [(benchmark, None), (evaluation, None), (evaluation, baseline)]
    built = {}
    for record_id, against in cases:
        expected = build_report(world["local"], record_id, against=against)
        report = build_report(world["remote"], record_id, against=against)
        assert report.html == expected.html, record_id
        assert (report.plots, report.omitted) == (expected.plots, expected.omitted)
        built[record_id] = report
    assert world["keys"]() == before, "building a report writes nothing"

    for record_id, kind in ((evaluation, EVALUATIONS), (benchmark, BENCHMARKS)):
        written = write_report(built[record_id])
        assert str(written) == f"{root}/{kind}/{record_id}/report.html"
        assert written.read_text(encoding="utf-8") == built[record_id].html
    assert world["keys"]() - before == {
        f"{prefix}/{EVALUATIONS}/{evaluation}/report.html",
        f"{prefix}/{BENCHMARKS}/{benchmark}/report.html",
    }


def test_a_report_that_cannot_be_built_from_s3_is_refused_and_writes_nothing(
    world: dict[str, Any],
) -> None:
    remote, root = world["remote"], world["root"]
    before = world["keys"]()
    with pytest.raises(
        InvalidInputError, match=re.escape(f"no benchmark or evaluation 'eval_nope' in {root}")
    ):
        build_report(remote, "eval_nope")
    with pytest.raises(InvalidInputError, match=r"--against: .* is a benchmark"):
        build_report(remote, world["evaluations"][0], against=world["benchmark"])
    assert world["keys"]() == before


def test_score_exports_read_from_s3_equal_the_local_ones(world: dict[str, Any]) -> None:
    cases = [("evaluation", EVALUATIONS, i) for i in world["evaluations"]]
    cases.append(("benchmark", BENCHMARKS, world["benchmark"]))
    for kind, folder, record_id in cases:
        stores = [RecordStore(paths, folder) for paths in (world["local"], world["remote"])]
        tables = [score_table(store, kind, store.get(record_id)) for store in stores]
        assert tables[0].num_rows > 0
        assert tables[1].equals(tables[0]), record_id


def test_each_partition_table_is_read_once_per_report(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several sections use an evaluation's runs; on S3 every read is a GET of the whole object."""
    reads: list[tuple[str, str]] = []
    read_table = RecordStore.read_table

    def counted(store: RecordStore, record_id: str, name: str) -> Any:
        reads.append((record_id, name))
        return read_table(store, record_id, name)

    monkeypatch.setattr(RecordStore, "read_table", counted)
    evaluation, baseline = world["evaluations"]
    build_report(world["remote"], evaluation, against=baseline)
    assert (evaluation, "runs") in reads and (baseline, "runs") in reads
    assert sorted(reads) == sorted(set(reads))
