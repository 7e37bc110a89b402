"""The demo world: a seeded, simulated shop whose truth is known, so evaluations can be checked.

See world.py for the steps; each writes under the data directory and returns a small JSON-able summary.
"""

from eval_pipelines.core.demo.retrievers import DEMO_RETRIEVER_IDS
from eval_pipelines.core.demo.traffic import DemoLogStructure
from eval_pipelines.core.demo.world import (
    DEFAULT_SEED,
    DemoScale,
    build_catalog,
    build_demo_world,
    build_intents,
    build_judgments,
    dataset_files,
    demo_world_exists,
    raw_log_files,
    simulate_logs,
    write_demo_retrievers,
)

__all__ = [
    "DEFAULT_SEED",
    "DEMO_RETRIEVER_IDS",
    "DemoLogStructure",
    "DemoScale",
    "build_catalog",
    "build_demo_world",
    "build_intents",
    "build_judgments",
    "dataset_files",
    "demo_world_exists",
    "raw_log_files",
    "simulate_logs",
    "write_demo_retrievers",
]
