"""The code location: assets, jobs, sensors, schedules and resources wired together, nothing else."""

from dagster import Definitions

from eval_pipelines.assets.benchmarks import benchmark_assets
from eval_pipelines.assets.demo import demo_assets
from eval_pipelines.assets.evaluations import evaluation_assets
from eval_pipelines.jobs import (
    build_demo_world_job,
    run_benchmark_job,
    run_evaluation_job,
    submit_benchmark,
    submit_evaluation,
)
from eval_pipelines.resources import DataDirResource, DemoWorldResource
from eval_pipelines.schedules.benchmarks import nightly_benchmarks
from eval_pipelines.sensors.benchmarks import benchmark_record_sensor, benchmark_request_sensor
from eval_pipelines.sensors.evaluations import evaluation_record_sensor, evaluation_request_sensor

defs = Definitions(
    assets=[*demo_assets, *benchmark_assets, *evaluation_assets],
    jobs=[
        build_demo_world_job,
        run_benchmark_job,
        submit_benchmark,
        run_evaluation_job,
        submit_evaluation,
    ],
    sensors=[
        benchmark_request_sensor,
        benchmark_record_sensor,
        evaluation_request_sensor,
        evaluation_record_sensor,
    ],
    schedules=[nightly_benchmarks],
    resources={"data_dir": DataDirResource(), "demo_world": DemoWorldResource()},
)
