"""The reference API's schemas, as the package ships them, and validation of records against them."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


@cache
def document(name: str) -> dict[str, Any]:
    """A shipped schema file by name without .json, e.g. "get_benchmark.openapi"."""
    text = resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


@cache
def component_validator(name: str, component: str) -> jsonschema.Validator:
    """A validator for one `components/schemas/<component>` of an OpenAPI document, $refs resolved."""
    uri = f"urn:eval-pipelines:{name}"
    resource = Resource.from_contents(document(name), default_specification=DRAFT202012)
    return jsonschema.Draft202012Validator(
        {"$ref": f"{uri}#/components/schemas/{component}"},
        registry=Registry().with_resource(uri, resource),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def validation_errors(name: str, component: str, instance: Any) -> list[str]:
    """Each way instance breaks the component, as `[path]: message`; empty when it conforms."""
    validator = component_validator(name, component)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
