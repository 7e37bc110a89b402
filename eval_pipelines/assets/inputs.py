"""What benchmarks and evaluations are computed from, as assets: the ingested interaction logs,
the document collections, the retriever configurations and the ground-truth datasets.

They are made outside Dagster (`eval-pipelines logs ingest`, `collection import`, retriever YAML
files, `dataset import`) or by the demo world, so they are external assets: the lineage shows what
each benchmark and evaluation was computed from, and the demo world as one of their makers.
"""

from dagster import AssetSpec

GROUP = "inputs"

interaction_logs = AssetSpec(
    "interaction_logs",
    group_name=GROUP,
    deps=["demo_logs"],
    description="Logged search sessions and user interactions (<data>/logs/), from "
    "`eval-pipelines logs ingest` or the demo world.",
)
collections = AssetSpec(
    "collections",
    group_name=GROUP,
    deps=["demo_catalog"],
    description="Document collections the in-process retrievers index (<data>/collections/).",
)
retriever_configs = AssetSpec(
    "retriever_configs",
    group_name=GROUP,
    deps=["demo_retrievers"],
    description="Retriever YAML files (<data>/retrievers/): pipelines over a collection, or HTTP "
    "endpoints.",
)
ground_truth_datasets = AssetSpec(
    "ground_truth_datasets",
    group_name=GROUP,
    deps=["demo_judgments"],
    description="Judged queries (<data>/datasets/), from `eval-pipelines dataset import` or the demo.",
)

input_assets = [interaction_logs, collections, retriever_configs, ground_truth_datasets]
