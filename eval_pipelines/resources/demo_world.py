"""Seed, size and log structure of the demo world: one resource so every demo asset builds the same world."""

from __future__ import annotations

from typing import Literal

from dagster import ConfigurableResource

from eval_pipelines.core.demo import DEFAULT_SEED, DemoLogStructure, DemoScale


class DemoWorldResource(ConfigurableResource):
    seed: int = DEFAULT_SEED
    size: Literal["full", "small"] = "full"
    log_structure: Literal["varied", "fixed"] = "varied"

    @property
    def scale(self) -> DemoScale:
        return DemoScale.small() if self.size == "small" else DemoScale()

    @property
    def structure(self) -> DemoLogStructure:
        """ "varied": the structure of real logs; "fixed": one page per query, nothing to learn bias from."""
        return DemoLogStructure.named(self.log_structure)
