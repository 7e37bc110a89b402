"""Records are validated against the reference API's components as the package ships them
(eval_pipelines/contracts/, copies of ../shared/schemas/; test_contracts checks they agree)."""

from __future__ import annotations

from pathlib import Path

from eval_pipelines.contracts import component_validator, validation_errors

SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "eval_pipelines" / "contracts"
SHARED_SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "shared" / "schemas"

__all__ = ["SCHEMAS_DIR", "SHARED_SCHEMAS_DIR", "component_validator", "validation_errors"]
