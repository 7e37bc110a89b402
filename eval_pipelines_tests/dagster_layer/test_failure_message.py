"""A failed record names its cause even when the run failed outside any step (e.g. a dead worker)."""

from dagster import DagsterInstance, DagsterRunStatus, asset, materialize

from eval_pipelines.run_failures import failure_message


@asset
def finishes() -> int:
    return 1


@asset
def raises() -> int:
    raise ValueError("the engine answered 503")


def test_a_run_failure_without_a_step_failure_gives_the_run_message() -> None:
    with DagsterInstance.ephemeral() as instance:
        run_id = materialize([finishes], instance=instance).run_id
        run = instance.get_run_by_id(run_id)
        instance.report_run_failed(run, message="the run worker went away")
        assert failure_message(instance, run_id, DagsterRunStatus.FAILURE) == (
            "the run worker went away"
        )


def test_a_step_failure_gives_the_step_and_its_root_cause() -> None:
    with DagsterInstance.ephemeral() as instance:
        run_id = materialize([raises], instance=instance, raise_on_error=False).run_id
        assert failure_message(instance, run_id, DagsterRunStatus.FAILURE) == (
            "raises: ValueError: the engine answered 503"
        )
