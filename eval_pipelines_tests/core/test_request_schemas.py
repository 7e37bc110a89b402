"""The JSON Schema users see is generated from each request model, and agrees with the reference:
every reference field is there, with its type, default, enum and limits, and the same required set.
The models may add fields (the recorded extension keys) and tighter limits, never drop one."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from pydantic import BaseModel

from eval_pipelines.contracts import document
from eval_pipelines.core.benchmarks.request import BenchmarkRequest
from eval_pipelines.core.evaluations.request import EvaluationRequest
from eval_pipelines_tests.cli.conftest import CLI

KEPT = ("minimum", "maximum", "minLength", "maxLength", "minItems", "enum", "default", "format")


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    *_, name = ref.split("/")
    return _resolve(root.get("$defs", root.get("components", {}).get("schemas", {}))[name], root)


def _branches(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A property's alternatives by JSON type (a $ref'd object is "object")."""
    options = schema.get("anyOf", [schema])
    return {
        (resolved := _resolve(option, root)).get("type", "object"): resolved for option in options
    }


def differences(
    reference: dict, ref_root: dict, generated: dict, gen_root: dict, where: str
) -> list[str]:
    found = []
    missing_required = set(reference.get("required", [])) ^ set(generated.get("required", []))
    if missing_required:
        found.append(f"{where}: required differs on {sorted(missing_required)}")
    for name, wanted in reference.get("properties", {}).items():
        field = f"{where}.{name}"
        got = generated["properties"].get(name)
        if got is None:
            found.append(f"{field}: missing from the model")
            continue
        for key in ("default",):
            if key in wanted and wanted[key] != got.get(key):
                found.append(f"{field}: {key} {got.get(key)!r} != {wanted[key]!r}")
        wanted_branches, got_branches = _branches(wanted, ref_root), _branches(got, gen_root)
        if set(wanted_branches) != set(got_branches):
            found.append(f"{field}: types {sorted(got_branches)} != {sorted(wanted_branches)}")
            continue
        for json_type, want in wanted_branches.items():
            have = got_branches[json_type]
            found += [
                f"{field}: {key} {have.get(key)!r} != {want[key]!r}"
                for key in KEPT
                if key in want and key != "default" and have.get(key) != want[key]
            ]
            if json_type == "array":
                found += differences(
                    {"properties": {"items": want["items"]}},
                    ref_root,
                    {"properties": {"items": have["items"]}},
                    gen_root,
                    field,
                )
            if json_type == "object" and "properties" in want:
                found += differences(want, ref_root, have, gen_root, field)
            if json_type == "object" and isinstance(want.get("additionalProperties"), dict):
                found += differences(
                    {"properties": {"*": want["additionalProperties"]}},
                    ref_root,
                    {"properties": {"*": have["additionalProperties"]}},
                    gen_root,
                    field,
                )
    return found


def reference_schemas() -> list[tuple[str, dict, dict, type[BaseModel]]]:
    create = document("create_benchmark.request")
    run = document("run_evaluation.openapi")
    start = run["components"]["schemas"]["StartEvaluationRequest"]
    return [
        ("CreateBenchmarkRequest", create, create, BenchmarkRequest),
        ("StartEvaluationRequest", start, run, EvaluationRequest),
    ]


@pytest.mark.parametrize(
    ("name", "reference", "root", "model"), reference_schemas(), ids=lambda v: str(v)[:30]
)
def test_the_generated_schema_agrees_with_the_reference(
    name: str, reference: dict, root: dict, model: type[BaseModel]
) -> None:
    generated = model.model_json_schema()
    if model is EvaluationRequest:  # the reference takes the retriever from the URL path
        generated = {
            **generated,
            "required": [r for r in generated["required"] if r != "retriever_id"],
        }
    assert differences(reference, root, generated, generated, name) == []


def test_a_dropped_limit_would_be_caught() -> None:
    """The comparison itself can fail: a reference limit the model lacked is reported."""
    reference = document("create_benchmark.request")
    generated = BenchmarkRequest.model_json_schema()
    loosened = json.loads(json.dumps(generated))
    del loosened["properties"]["session_count"]["maximum"]
    loosened["$defs"]["SessionFilter"]["properties"]["sample_strategy"]["enum"].append("any")
    found = differences(reference, reference, loosened, loosened, "CreateBenchmarkRequest")
    assert sorted(found) == [
        "CreateBenchmarkRequest.session_count: maximum None != 10000",
        "CreateBenchmarkRequest.session_filter.sample_strategy: enum"
        " ['random', 'recent', 'stratified', 'any'] != ['random', 'recent', 'stratified']",
    ]


@pytest.mark.parametrize(
    ("command", "model"), [("benchmark", BenchmarkRequest), ("evaluation", EvaluationRequest)]
)
def test_the_cli_prints_the_generated_schema(command: str, model: type[BaseModel]) -> None:
    shown = subprocess.run(
        [str(CLI), command, "schema"], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(shown.stdout) == model.model_json_schema()
