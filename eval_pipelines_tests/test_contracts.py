"""The reference API's schemas ship with the package, so users and the CLI's help can point at them."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from eval_pipelines_tests.schemas import SCHEMAS_DIR, SHARED_SCHEMAS_DIR

SHIPPED = (
    "create_benchmark.request.json",
    "get_benchmark.openapi.json",
    "get_evaluation.openapi.json",
    "get_execution.openapi.json",
    "run_evaluation.openapi.json",
)


@pytest.mark.parametrize("name", SHIPPED)
def test_each_schema_ships_as_package_data(name: str) -> None:
    text = resources.files("eval_pipelines.contracts").joinpath(name).read_text(encoding="utf-8")
    document = json.loads(text)
    assert "components" in document or "properties" in document


@pytest.mark.skipif(not SHARED_SCHEMAS_DIR.is_dir(), reason="no ../shared/schemas beside the clone")
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_schemas_equal_the_reference_copies(name: str) -> None:
    shipped = json.loads((SCHEMAS_DIR / name).read_text(encoding="utf-8"))
    assert shipped == json.loads((SHARED_SCHEMAS_DIR / name).read_text(encoding="utf-8"))
