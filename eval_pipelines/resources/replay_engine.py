"""Where benchmark replays run (here, or on a Dask cluster), as a Dagster resource.

Left unset, `engine` follows EVAL_PIPELINES_REPLAY_ENGINE and EVAL_PIPELINES_DASK_SCHEDULER, so
every door (the daemon, the UI, the CLI's --wait) replays where the environment says.
"""

from __future__ import annotations

from dagster import ConfigurableResource

from eval_pipelines.core.retrieval.engines import (
    DEFAULT_LOCAL_WORKERS,
    SCHEDULER_ENV,
    ReplayEngine,
    check_reachable,
    engine_from_env,
    parse_engine,
)


class ReplayEngineResource(ConfigurableResource):
    """engine "local" or "dask", empty for the environment's; dask with no scheduler_address: a
    loopback LocalCluster of local_workers processes for the run (scheduler_address may also say
    `local-cluster:N`)."""

    engine: str = ""
    scheduler_address: str = ""
    local_workers: int = DEFAULT_LOCAL_WORKERS

    def choice(self) -> ReplayEngine:
        """The engine to replay on, its scheduler reached (an InvalidInputError names what is wrong)."""
        if not self.engine:
            engine = engine_from_env()
            check_reachable(engine, SCHEDULER_ENV)
            return engine
        engine = parse_engine(self.engine, self.scheduler_address, self.local_workers)
        check_reachable(engine, "scheduler_address")
        return engine
