"""Jobs beyond each kind's run job (declared in kinds.py): the demo world, and the launchpad door
that submits a request of any kind."""

from dagster import (
    AssetSelection,
    Failure,
    JobDefinition,
    OpExecutionContext,
    define_asset_job,
    job,
    op,
)

from eval_pipelines.assets.demo import GROUP as DEMO_GROUP
from eval_pipelines.core.errors import InvalidRequestError
from eval_pipelines.kinds import BENCHMARKS, EVALUATIONS, RequestKind
from eval_pipelines.launch_config import config_class_for
from eval_pipelines.resources import DataDirResource

build_demo_world_job = define_asset_job(
    "build_demo_world",
    selection=AssetSelection.groups(DEMO_GROUP),
    description="Build the demo world.",
)


def submit_job(kind: RequestKind) -> JobDefinition:
    """A job whose one op takes the request as launch config (fields, defaults and descriptions from
    the request's model), validates it at the door and accepts it; the request sensor runs it."""
    request_config = config_class_for(kind.model)

    @op(
        name=f"submit_{kind.singular}_request",
        description=f"Validate and store a {kind.singular} request; the request sensor starts its run.",
    )
    def submit_request(
        context: OpExecutionContext, config: request_config, data_dir: DataDirResource
    ) -> str:
        try:
            request = kind.parse(config.model_dump(), data_dir.paths)
        except InvalidRequestError as exc:
            raise Failure(description=str(exc)) from exc
        record_id = kind.new_id()
        kind.accept_with_partition(context.instance, data_dir.paths, request, record_id)
        context.log.info(f"accepted {kind.singular} {record_id}")
        context.add_output_metadata({f"{kind.singular}_id": record_id})
        return record_id

    @job(
        name=f"submit_{kind.singular}",
        description=f"Submit a {kind.singular} request from the launchpad (the request the CLI takes).",
    )
    def submit() -> None:
        submit_request()

    return submit


submit_benchmark = submit_job(BENCHMARKS)
submit_evaluation = submit_job(EVALUATIONS)
