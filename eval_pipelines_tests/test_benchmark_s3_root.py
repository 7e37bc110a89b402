"""The S3-root benchmark at its tiny scale: the real CLI on a local root and on moto's S3 server, each
verb measured on both, answers equal; and its checks refuse a wrong answer. Timings are never
asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perf import s3_root
from perf.harness import CorrectnessError

pytest.importorskip("moto.server", reason="moto[server] is not installed (the test extra)")


def test_every_verb_runs_on_both_roots_with_equal_answers(tmp_path: Path) -> None:
    result = s3_root.run("tiny", 1, tmp_path)
    names = [f"{op}, {root}" for op in s3_root.OPERATIONS for root in s3_root.ROOTS]
    assert [c.name for c in result.contenders] == names
    for contender in result.contenders:
        assert len(contender.seconds) == 1 and len(contender.warmup_seconds) == 1
        assert contender.peak_rss_bytes > 50 * 2**20, contender
    assert set(result.parameters["s3_seconds_over_local"]) == set(s3_root.OPERATIONS)
    ndcg = result.checks["benchmark_ndcg_at_10"]
    assert ndcg["demo_better"] > ndcg["demo_prod"]
    assert result.checks["records_listed"] == s3_root.LIST_RECORDS
    assert result.checks["ingested_each_time"] == s3_root.INGEST_LINES["tiny"]
    assert any("moto is a single-process Python server" in note for note in result.notes)
    record = result.to_json()
    assert json.loads(json.dumps(record)) == record
    assert record["ratios"]["benchmark list, local"] == {
        "benchmark list, s3": pytest.approx(
            result.contenders[5].median_seconds / result.contenders[4].median_seconds
        )
    }
    assert list((tmp_path / "local" / "benchmarks").iterdir())


def test_a_difference_between_the_roots_is_refused() -> None:
    checked = {"local": [{"demo_prod": 0.2}, {"demo_prod": 0.2}], "s3": [{"demo_prod": 0.21}]}
    with pytest.raises(CorrectnessError, match="s3 call 0 gave"):
        s3_root.same_on_both("benchmark create", checked)


def test_an_ingest_that_stores_fewer_lines_is_refused() -> None:
    report = json.dumps({"rows_read": 100, "ingested": 99})
    with pytest.raises(CorrectnessError, match="stored 99 of 100"):
        s3_root.check_ingest(report, 100)


def test_a_failing_call_names_the_verb_and_the_root(tmp_path: Path) -> None:
    with pytest.raises(CorrectnessError, match=r"evaluation get nope on .*: exit 2"):
        s3_root.run_cli(str(tmp_path / "data"), {}, tmp_path, "evaluation", "get", "nope")
