"""Where a replay's chunks run: here (`local`, the default) or on a Dask cluster (`dask`).

The choice is plain data, read from a resource or from the environment
(EVAL_PIPELINES_REPLAY_ENGINE, EVAL_PIPELINES_DASK_SCHEDULER), and checked before a run starts
so a typo or a dead scheduler is refused as bad input rather than found halfway through a run.
A Dask engine either joins a running scheduler (`tcp://host:port`) or starts a loopback
LocalCluster of N worker processes for the run (`local-cluster:N`) and stops it after.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from eval_pipelines.core.errors import InvalidInputError

LOCAL = "local"
DASK = "dask"
ENGINES = (LOCAL, DASK)
ENGINE_ENV = "EVAL_PIPELINES_REPLAY_ENGINE"
SCHEDULER_ENV = "EVAL_PIPELINES_DASK_SCHEDULER"
LOCAL_CLUSTER = "local-cluster"
DEFAULT_LOCAL_WORKERS = 2
MAX_LOCAL_WORKERS = 64
# A scheduler that does not answer within this is reported, never waited on for Dask's own default.
CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ReplayEngine:
    """local; or dask with a scheduler address, or with local_workers loopback workers to start."""

    engine: str = LOCAL
    scheduler: str = ""
    local_workers: int = 0

    @property
    def is_local(self) -> bool:
        return self.engine == LOCAL

    def describe(self) -> dict[str, Any]:
        """The engine as a record shows it before the run fills in where chunks ran."""
        if self.is_local:
            return {"engine": LOCAL}
        if self.local_workers:
            return {"engine": DASK, "cluster": f"{LOCAL_CLUSTER}:{self.local_workers}"}
        return {"engine": DASK, "scheduler": self.scheduler}


LOCAL_ENGINE = ReplayEngine()


def _local_workers(text: str, field: str) -> int:
    count = text.removeprefix(f"{LOCAL_CLUSTER}:")
    if not count.isdigit() or not 1 <= int(count) <= MAX_LOCAL_WORKERS:
        raise InvalidInputError(
            f"{field}: {LOCAL_CLUSTER}:N needs N between 1 and {MAX_LOCAL_WORKERS}, got {text!r}"
        )
    return int(count)


def _scheduler_address(text: str, field: str) -> str:
    """tcp://host:port, checked for shape only (reachability is check_reachable's)."""
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "tcp" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise InvalidInputError(
            f"{field}: expected tcp://host:port or {LOCAL_CLUSTER}:N, got {text!r}"
        )
    return f"tcp://{parts.netloc}"


def parse_engine(
    engine: str,
    scheduler: str = "",
    local_workers: int = DEFAULT_LOCAL_WORKERS,
    *,
    engine_field: str = "engine",
    scheduler_field: str = "scheduler_address",
) -> ReplayEngine:
    """The engine named; for dask an empty scheduler means a LocalCluster of local_workers."""
    if engine not in ENGINES:
        raise InvalidInputError(
            f"{engine_field}: expected one of {', '.join(ENGINES)}, got {engine!r}"
        )
    if engine == LOCAL:
        return LOCAL_ENGINE
    scheduler = scheduler.strip()
    if not scheduler:
        return ReplayEngine(DASK, "", _local_workers(str(local_workers), "local_workers"))
    if scheduler.startswith(f"{LOCAL_CLUSTER}:"):
        return ReplayEngine(DASK, "", _local_workers(scheduler, scheduler_field))
    return ReplayEngine(DASK, _scheduler_address(scheduler, scheduler_field))


def engine_from_env() -> ReplayEngine:
    """EVAL_PIPELINES_REPLAY_ENGINE (default local) and EVAL_PIPELINES_DASK_SCHEDULER."""
    return parse_engine(
        os.environ.get(ENGINE_ENV, "").strip() or LOCAL,
        os.environ.get(SCHEDULER_ENV, ""),
        engine_field=ENGINE_ENV,
        scheduler_field=SCHEDULER_ENV,
    )


def check_reachable(engine: ReplayEngine, field: str = SCHEDULER_ENV) -> None:
    """A TCP connection to the scheduler within CONNECT_TIMEOUT_S, or an error naming it."""
    if engine.is_local or not engine.scheduler:
        return
    parts = urlsplit(engine.scheduler)
    assert parts.hostname is not None and parts.port is not None
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise InvalidInputError(
            f"{field}: no Dask scheduler answers at {engine.scheduler} within"
            f" {CONNECT_TIMEOUT_S:g} s ({exc.strerror or exc})"
        ) from None


def checked_engine_from_env() -> ReplayEngine:
    """engine_from_env, its scheduler reached: what a door calls before it accepts a request."""
    engine = engine_from_env()
    check_reachable(engine)
    return engine
