"""The code location: assets, jobs, sensors, schedules and resources wired together, nothing else."""

from dagster import Definitions

from eval_pipelines.assets.benchmarks import benchmark_assets
from eval_pipelines.assets.demo import demo_assets
from eval_pipelines.jobs import build_demo_world_job, run_benchmark_job, submit_benchmark
from eval_pipelines.resources import DataDirResource, DemoWorldResource
from eval_pipelines.schedules.benchmarks import nightly_benchmarks
from eval_pipelines.sensors.benchmarks import benchmark_record_sensor, benchmark_request_sensor

defs = Definitions(
    assets=[*demo_assets, *benchmark_assets],
    jobs=[build_demo_world_job, run_benchmark_job, submit_benchmark],
    sensors=[benchmark_request_sensor, benchmark_record_sensor],
    schedules=[nightly_benchmarks],
    resources={"data_dir": DataDirResource(), "demo_world": DemoWorldResource()},
)
