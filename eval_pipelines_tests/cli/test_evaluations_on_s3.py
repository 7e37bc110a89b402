"""`evaluation run|get|list|export` and `report` through the real console script with the data root
on S3 (a loopback moto server): the same evaluation as on a local root gives the same record and the
same per-query scores, the report is one object in its partition, and every bad request exits 2 with
no object written (nor a local folder named 's3:')."""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eval_pipelines.core.evaluations.pipeline import export_trec_run
from eval_pipelines.core.evaluations.submit import evaluation_store
from eval_pipelines.core.paths import DataPaths, data_root
from eval_pipelines.core.reports.html.build import build_report
from eval_pipelines.core.reports.score_export import score_table, write_scores_csv
from eval_pipelines.core.table_names import RUNS
from eval_pipelines_tests.cli.conftest import CLI, CliResult
from eval_pipelines_tests.conftest import copy_world
from eval_pipelines_tests.core.reports.html_tree import Element, parse
from eval_pipelines_tests.services import S3, comparable, upload_world

RUN = ("evaluation", "run", "demo_better", "--dataset", "demo-judgments", "--k", "1,5,10")


def _environment(root: Path | str, env: dict[str, str]) -> dict[str, str]:
    full = {**os.environ, **env, "EVAL_PIPELINES_DATA": str(root)}
    full.pop("DAGSTER_HOME", None)
    return full


def _at_once(
    env: dict[str, str], cwd: Path, calls: dict[str, tuple[Path | str, tuple[str, ...]]]
) -> dict[str, CliResult]:
    """Several console scripts at once (each mostly starts up), in cwd so that a URL taken for a
    local path would show up there; their results by name."""
    running = {
        name: subprocess.Popen(
            [str(CLI), *args],
            env=_environment(root, env),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (root, args) in calls.items()
    }
    results = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=180)
        results[name] = CliResult(process.returncode, stdout, stderr)
    return results


def _ok(result: CliResult) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def world(
    s3_service: S3, small_world: DataPaths, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The same evaluation run with --wait on a local copy of the small world and on its copy on
    S3 (one bucket for the module, its environment set here and passed to every subprocess)."""
    tmp = tmp_path_factory.mktemp("evaluations-on-s3")
    env = {**s3_service.env, "EVAL_PIPELINES_CACHE": str(tmp / "cache")}
    bucket = f"evals-{os.getpid()}"
    root = f"{s3_service.create_bucket(bucket)}/team"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        remote = upload_world(small_world, root)
        local = copy_world(small_world, tmp)
        cwd = tmp / "cwd"
        cwd.mkdir()
        runs = _at_once(
            env,
            cwd,
            {
                "local": (local.root, (*RUN, "--wait", "--json")),
                "s3": (root, (*RUN, "--wait", "--json")),
            },
        )
        yield {
            "s3": s3_service,
            "env": env,
            "cwd": cwd,
            "root": root,
            "bucket": bucket,
            "local": local,
            "remote": remote,
            "local_record": json.loads(_ok(runs["local"])),
            "record": json.loads(_ok(runs["s3"])),
        }


def _keys(world: dict[str, Any]) -> set[str]:
    return set(world["s3"].keys(world["bucket"]))


def _on_s3(
    world: dict[str, Any], calls: dict[str, tuple[str, ...]], cwd: Path | None = None
) -> dict[str, CliResult]:
    return _at_once(
        world["env"],
        cwd or world["cwd"],
        {name: (world["root"], args) for name, args in calls.items()},
    )


def _same(record: dict[str, Any]) -> Any:
    return comparable({k: v for k, v in record.items() if k not in ("evaluation_id", "updated_at")})


def test_an_evaluation_on_s3_equals_the_same_evaluation_on_a_local_root(
    world: dict[str, Any],
) -> None:
    record, local = world["record"], world["local_record"]
    assert record["status"] == "completed" and record["evaluated_queries"] > 0
    assert _same(record) == _same(local)
    evaluation_id, local_id = record["evaluation_id"], local["evaluation_id"]
    target = world["cwd"] / "scores.csv"
    out = {
        name: _ok(result)
        for name, result in _on_s3(
            world,
            {
                "get": ("evaluation", "get", evaluation_id, "--json"),
                "list": ("evaluation", "list", "--json"),
                "trec": ("evaluation", "export", evaluation_id),
                "csv": (
                    "evaluation",
                    "export",
                    evaluation_id,
                    "--format",
                    "csv",
                    "-o",
                    str(target),
                ),
            },
        ).items()
    }
    assert json.loads(out["get"]) == record
    assert [r["evaluation_id"] for r in json.loads(out["list"])] == [evaluation_id]
    store = evaluation_store(world["local"])
    expected = io.BytesIO()
    export_trec_run(store.read_table(local_id, RUNS), expected, tag=local["retriever_id"])
    assert out["trec"].encode() == expected.getvalue() and out["trec"].count("\n") > 100
    expected = io.BytesIO()
    write_scores_csv(score_table(store, "evaluation", local), expected)
    csv = target.read_text()
    assert csv.count("\n") > 100
    assert csv.replace(evaluation_id, "ID") == expected.getvalue().decode().replace(local_id, "ID")


def test_report_writes_one_object_into_the_partition_or_a_local_output(
    world: dict[str, Any],
) -> None:
    evaluation_id = world["record"]["evaluation_id"]
    report = data_root(world["root"], "test") / "evaluations" / evaluation_id / "report.html"
    key = f"team/evaluations/{evaluation_id}/report.html"
    assert key in _keys(world), "the run wrote its report (the evaluation_report asset)"
    report.unlink()
    before = _keys(world)
    output = world["cwd"] / "mine.html"
    done = _on_s3(
        world,
        {
            "root": ("report", evaluation_id),
            "file": ("report", evaluation_id, "--output", str(output)),
        },
    )
    assert _ok(done["root"]) == f"{report}\n"
    assert _ok(done["file"]) == f"{output}\n"
    assert _keys(world) - before == {key}
    expected = build_report(world["remote"], evaluation_id).html
    assert report.read_text(encoding="utf-8") == expected
    assert output.read_text(encoding="utf-8") == expected
    local = build_report(world["local"], world["local_record"]["evaluation_id"]).html
    assert _structure(expected) == _structure(local)
    assert _cells(expected, "metrics-table") == _cells(local, "metrics-table")


def _structure(html: str) -> list[tuple[str, str | None, str | None]]:
    """The page's elements outside its plots (whose marks follow the measured latencies)."""
    found: list[tuple[str, str | None, str | None]] = []

    def walk(element: Element) -> None:
        found.append((element.tag, element.attrs.get("id"), element.attrs.get("class")))
        if element.tag != "svg":
            for child in element.children:
                walk(child)

    walk(parse(html))
    return found


def _cells(html: str, table_id: str) -> list[str | None]:
    [table] = parse(html).find_all("table", id=table_id)
    return [cell.attrs.get("data-value") for cell in table.iter() if cell.tag == "td"]


def test_bad_requests_on_s3_exit_2_and_write_nothing(world: dict[str, Any], tmp_path: Path) -> None:
    evaluation_id = world["record"]["evaluation_id"]
    url = f"s3://{world['bucket']}/elsewhere"
    cases = {
        "unknown retriever": ((*RUN[:2], "nope", *RUN[3:]), "retriever_id: unknown retriever"),
        "bad k": ((*RUN[:-1], "0"), "evaluation_config.k_values.0"),
        "report unknown": (("report", "eval_nope"), "no benchmark or evaluation 'eval_nope'"),
        "export unknown": (("evaluation", "export", "eval_nope"), "no evaluation 'eval_nope'"),
        "report into no folder": (
            ("report", evaluation_id, "--output", str(tmp_path / "no" / "r.html")),
            "does not exist",
        ),
        "export to a URL": (
            ("evaluation", "export", evaluation_id, "-o", f"{url}/run.trec"),
            "argument --output/-o: 's3://",
        ),
        "csv to a URL": (
            ("evaluation", "export", evaluation_id, "--format", "csv", "-o", f"{url}/s.csv"),
            "argument --output/-o: 's3://",
        ),
        "report to a URL": (
            ("report", evaluation_id, "--output", f"{url}/r.html"),
            "argument --output: 's3://",
        ),
        "trec-eval on URLs": (
            ("trec-eval", f"{url}/qrels", f"{url}/run"),
            "argument QRELS: 's3://",
        ),
    }
    before = _keys(world)
    results = _on_s3(world, {case: args for case, (args, _) in cases.items()}, cwd=tmp_path)
    for case, (_, message) in cases.items():
        result = results[case]
        assert (result.returncode, result.stdout) == (2, ""), f"{case}: {result.stderr[-2000:]}"
        assert message in result.stderr, f"{case}: {result.stderr[-2000:]}"
        assert "Traceback" not in result.stderr
    assert _keys(world) == before
    assert list(tmp_path.iterdir()) == [], "a URL is never taken for a local path"
