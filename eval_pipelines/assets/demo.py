"""The demo world's building blocks as assets (group "demo"), so the UI shows how the shop is made."""

from typing import Any

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from eval_pipelines.core import demo
from eval_pipelines.core.progress import ProgressOutput
from eval_pipelines.resources import DataDirResource, DemoWorldResource

GROUP = "demo"


def _result(summary: dict[str, Any], data_dir: DataDirResource) -> MaterializeResult:
    data_dir.refresh_views()
    metadata: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, bool | int | float | str):
            metadata[key] = value
        else:
            metadata[key] = MetadataValue.json(value)
    return MaterializeResult(metadata=metadata)


@asset(
    group_name=GROUP,
    description="Simulated catalog: the `products` collection over a seeded taxonomy.",
)
def demo_catalog(
    context: AssetExecutionContext, data_dir: DataDirResource, demo_world: DemoWorldResource
) -> MaterializeResult:
    summary = demo.build_catalog(data_dir.paths, seed=demo_world.seed, scale=demo_world.scale)
    context.log.info(f"catalog: {summary}")
    return _result(summary, data_dir)


@asset(
    group_name=GROUP,
    deps=[demo_catalog],
    description="Demo retriever YAMLs: demo_prod, demo_better, demo_worse, demo_prod_copy, demo_http.",
)
def demo_retrievers(data_dir: DataDirResource) -> MaterializeResult:
    return _result(demo.write_demo_retrievers(data_dir.paths), data_dir)


@asset(
    group_name=GROUP,
    deps=[demo_catalog],
    description="Query intents (Zipf frequencies) and their true relevance grades from latent attributes.",
)
def demo_intents(data_dir: DataDirResource, demo_world: DemoWorldResource) -> MaterializeResult:
    summary = demo.build_intents(data_dir.paths, seed=demo_world.seed, scale=demo_world.scale)
    return _result(summary, data_dir)


@asset(
    group_name=GROUP,
    deps=[demo_intents, demo_retrievers],
    description="Logged searches (demo_prod, an earlier ranker, shuffled exploration traffic, some"
    " impressions) and simulated user interactions, ingested like real logs; the true examination"
    " by position beside them.",
)
def demo_logs(
    context: AssetExecutionContext, data_dir: DataDirResource, demo_world: DemoWorldResource
) -> MaterializeResult:
    summary = demo.simulate_logs(
        data_dir.paths,
        seed=demo_world.seed,
        scale=demo_world.scale,
        structure=demo_world.structure,
        progress=ProgressOutput.to_log(context.log.info),
    )
    return _result(summary, data_dir)


@asset(
    group_name=GROUP,
    deps=[demo_intents],
    description="The demo-judgments ground-truth dataset (GroundTruthQuery JSONL and TREC qrels).",
)
def demo_judgments(data_dir: DataDirResource, demo_world: DemoWorldResource) -> MaterializeResult:
    summary = demo.build_judgments(data_dir.paths, seed=demo_world.seed, scale=demo_world.scale)
    return _result(summary, data_dir)


demo_assets = [demo_catalog, demo_retrievers, demo_intents, demo_logs, demo_judgments]
