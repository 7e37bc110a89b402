"""The code location: assets, jobs, sensors, schedules and resources wired together, nothing else."""

from dagster import Definitions

from eval_pipelines.assets.click_model import click_model
from eval_pipelines.assets.demo import demo_assets
from eval_pipelines.assets.inputs import input_assets
from eval_pipelines.jobs import build_demo_world_job, submit_benchmark, submit_evaluation
from eval_pipelines.kinds import KINDS
from eval_pipelines.resources import DataDirResource, DemoWorldResource
from eval_pipelines.schedules.benchmarks import nightly_benchmarks
from eval_pipelines.sensors.requests import request_sensor
from eval_pipelines.sensors.run_failures import canceled_run_sensor, failed_run_sensor

defs = Definitions(
    assets=[
        *demo_assets,
        *input_assets,
        click_model,
        *(a for kind in KINDS.values() for a in kind.assets),
    ],
    jobs=[
        build_demo_world_job,
        *(kind.job for kind in KINDS.values()),
        submit_benchmark,
        submit_evaluation,
    ],
    sensors=[
        *(request_sensor(kind) for kind in KINDS.values()),
        failed_run_sensor,
        canceled_run_sensor,
    ],
    schedules=[nightly_benchmarks],
    resources={"data_dir": DataDirResource(), "demo_world": DemoWorldResource()},
)
