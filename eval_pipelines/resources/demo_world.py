"""Seed and size of the demo world: one resource so every demo asset builds the same world."""

from __future__ import annotations

from typing import Literal

from dagster import ConfigurableResource

from eval_pipelines.core.demo import DEFAULT_SEED, DemoScale


class DemoWorldResource(ConfigurableResource):
    seed: int = DEFAULT_SEED
    size: Literal["full", "small"] = "full"

    @property
    def scale(self) -> DemoScale:
        return DemoScale.small() if self.size == "small" else DemoScale()
