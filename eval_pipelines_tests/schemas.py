"""Validate records against the reference API's components, as the package ships them
(eval_pipelines/contracts/, copies of ../shared/schemas/; test_contracts checks they agree)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "eval_pipelines" / "contracts"
SHARED_SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "shared" / "schemas"


@cache
def _document(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS_DIR / f"{name}.json").read_text(encoding="utf-8"))


def component_validator(document: str, component: str) -> jsonschema.Validator:
    """A validator for one `components/schemas/<component>` of an OpenAPI document, $refs resolved."""
    doc = _document(document)
    uri = f"urn:eval-pipelines:{document}"
    resource = Resource.from_contents(doc, default_specification=DRAFT202012)
    registry = Registry().with_resource(uri, resource)
    schema = {"$ref": f"{uri}#/components/schemas/{component}"}
    return jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def validation_errors(document: str, component: str, instance: Any) -> list[str]:
    validator = component_validator(document, component)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
