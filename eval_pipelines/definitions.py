"""The code location: assets, jobs and resources wired together, nothing else."""

from dagster import AssetSelection, Definitions, define_asset_job

from eval_pipelines.assets.demo import GROUP as DEMO_GROUP
from eval_pipelines.assets.demo import demo_assets
from eval_pipelines.resources import DataDirResource, DemoWorldResource

build_demo_world_job = define_asset_job(
    "build_demo_world",
    selection=AssetSelection.groups(DEMO_GROUP),
    description="Build the demo world.",
)

defs = Definitions(
    assets=demo_assets,
    jobs=[build_demo_world_job],
    resources={"data_dir": DataDirResource(), "demo_world": DemoWorldResource()},
)
