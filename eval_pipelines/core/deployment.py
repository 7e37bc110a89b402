"""A multi-node deployment's settings as plain data: the dagster.yaml sections for Postgres storage
and the queued run coordinator, and which executor the run jobs use.

Secrets never land in a file: the Postgres password is read by Dagster from an environment variable
(`password: {env: ...}`), and a broker URL holding a password is refused. psycopg2 is named in the
storage's scheme because SQLAlchemy 2.1 otherwise picks psycopg 3, which dagster-postgres does not
support.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from eval_pipelines.core.errors import InvalidInputError

PASSWORD_ENV = "EVAL_PIPELINES_POSTGRES_PASSWORD"
EXECUTOR_ENV = "EVAL_PIPELINES_EXECUTOR"
BROKER_ENV = "EVAL_PIPELINES_CELERY_BROKER"
KIND_TAG = "eval_pipelines/kind"

STORAGES = ("sqlite", "postgres")
COORDINATORS = ("default", "queued")
EXECUTORS = ("in_process", "multiprocess", "celery", "k8s")
PSYCOPG2_SCHEME = "postgresql+psycopg2"
_POSTGRES_SCHEMES = {"postgresql", "postgres", PSYCOPG2_SCHEME}
_BROKER_SCHEMES = {"redis", "rediss", "amqp", "pyamqp", "amqps"}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class DeploymentSettings:
    """What `eval-pipelines instance config` is asked for; None means Dagster's own default."""

    storage: str = "sqlite"
    postgres_url: str | None = None
    password_env: str = PASSWORD_ENV
    run_coordinator: str = "default"
    max_concurrent_runs: int | None = None
    benchmark_limit: int | None = None
    evaluation_limit: int | None = None
    executor: str | None = None
    broker: str | None = None


def _one_of(field: str, value: str | None, allowed: tuple[str, ...]) -> list[str]:
    if value is None or value in allowed:
        return []
    return [f"{field}: {value!r} is not one of {', '.join(allowed)}"]


def postgres_db(url: str, password_env: str) -> dict[str, Any]:
    """A `postgres_db` block from a URL without its password (which comes from password_env)."""
    field = "--postgres-url"
    parts = urlsplit(url)
    if parts.scheme not in _POSTGRES_SCHEMES:
        hint = " (psycopg 3, which dagster-postgres does not support)" if "psycopg" in url else ""
        raise InvalidInputError(
            f"{field}: scheme {parts.scheme!r}{hint} is not one of {', '.join(sorted(_POSTGRES_SCHEMES))};"
            f" it is written as {PSYCOPG2_SCHEME}"
        )
    if parts.password is not None:
        raise InvalidInputError(
            f"{field}: holds a password; leave it out and set it in ${password_env} on every"
            " machine (it is never written to a file)"
        )
    try:
        port = parts.port or 5432
    except ValueError as exc:
        raise InvalidInputError(f"{field}: bad port ({exc})") from exc
    db_name = unquote(parts.path.lstrip("/"))
    missing = [
        name
        for name, value in (
            ("user", parts.username),
            ("host", parts.hostname),
            ("database", db_name),
        )
        if not value
    ]
    if missing:
        raise InvalidInputError(
            f"{field}: names no {' or '.join(missing)}"
            " (expected postgresql://USER@HOST[:PORT]/DATABASE)"
        )
    block: dict[str, Any] = {
        "username": unquote(parts.username or ""),
        "password": {"env": password_env},
        "hostname": parts.hostname,
        "db_name": db_name,
        "port": port,
        "scheme": PSYCOPG2_SCHEME,
    }
    params = dict(parse_qsl(parts.query))
    if params:
        block["params"] = params
    return block


def _limit_problems(settings: DeploymentSettings) -> list[str]:
    problems = []
    limits = {
        "--max-concurrent-runs": settings.max_concurrent_runs,
        "--benchmark-limit": settings.benchmark_limit,
        "--evaluation-limit": settings.evaluation_limit,
    }
    for flag, value in limits.items():
        if value is None:
            continue
        if settings.run_coordinator != "queued":
            problems.append(f"{flag}: only applies with --run-coordinator queued")
        lowest = -1 if flag == "--max-concurrent-runs" else 0
        if value < lowest:
            problems.append(f"{flag}: {value} is below {lowest}")
    return problems


def broker_problems(
    broker: str | None, field: str = "--broker", in_environment: bool = False
) -> list[str]:
    """Why a Celery broker URL cannot be used (none given, unknown scheme, a password in a URL that
    would be written to a file; one already in the environment may hold one)."""
    if not broker:
        return [f"{field}: the celery executor needs a broker URL (redis://HOST:PORT/DB)"]
    try:
        parts = urlsplit(broker)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError as exc:
        return [f"{field}: not a URL ({exc})"]
    if parts.scheme not in _BROKER_SCHEMES:
        return [
            f"{field}: scheme {parts.scheme!r} is not one of {', '.join(sorted(_BROKER_SCHEMES))}"
        ]
    if parts.password is not None and not in_environment:
        return [
            f"{field}: holds a password; set the URL in ${BROKER_ENV} on every machine yourself"
            " (it is never written to a file)"
        ]
    return []


def check_settings(settings: DeploymentSettings) -> None:
    """Every problem of the flags at once, each naming its flag."""
    problems = [
        *_one_of("--storage", settings.storage, STORAGES),
        *_one_of("--run-coordinator", settings.run_coordinator, COORDINATORS),
        *_one_of("--executor", settings.executor, EXECUTORS),
        *_limit_problems(settings),
    ]
    if not _ENV_NAME.match(settings.password_env):
        problems.append(f"--password-env: {settings.password_env!r} is not a variable name")
    if settings.storage == "postgres" and not settings.postgres_url:
        problems.append("--postgres-url: needed with --storage postgres")
    elif settings.storage == "postgres":
        try:
            postgres_db(settings.postgres_url or "", settings.password_env)
        except InvalidInputError as exc:
            problems.append(str(exc))
    if settings.storage != "postgres" and settings.postgres_url:
        problems.append("--postgres-url: only applies with --storage postgres")
    if settings.executor == "celery":
        problems.extend(broker_problems(settings.broker))
    elif settings.broker:
        problems.append("--broker: only applies with --executor celery")
    if problems:
        raise InvalidInputError("invalid instance settings:\n  " + "\n  ".join(problems))


def instance_sections(settings: DeploymentSettings) -> dict[str, Any]:
    """The dagster.yaml keys for storage and run coordination (run monitoring is added by the caller)."""
    check_settings(settings)
    sections: dict[str, Any] = {}
    if settings.storage == "postgres":
        block = postgres_db(settings.postgres_url or "", settings.password_env)
        sections["storage"] = {"postgres": {"postgres_db": block}}
    if settings.run_coordinator == "default":
        sections["run_coordinator"] = {
            "module": "dagster._core.run_coordinator",
            "class": "DefaultRunCoordinator",
        }
        return sections
    queue: dict[str, Any] = {}
    if settings.max_concurrent_runs is not None:
        queue["max_concurrent_runs"] = settings.max_concurrent_runs
    limits = [
        {"key": KIND_TAG, "value": kind, "limit": limit}
        for kind, limit in (
            ("benchmarks", settings.benchmark_limit),
            ("evaluations", settings.evaluation_limit),
        )
        if limit is not None
    ]
    if limits:
        queue["tag_concurrency_limits"] = limits
    sections["run_queue"] = queue
    return sections


def executor_env(settings: DeploymentSettings) -> dict[str, str]:
    """The environment the daemon, webserver, code servers and workers need for the executor."""
    if settings.executor is None:
        return {}
    env = {EXECUTOR_ENV: settings.executor}
    if settings.executor == "celery" and settings.broker:
        env[BROKER_ENV] = settings.broker
    return env


@dataclass(frozen=True)
class ExecutorChoice:
    """Which executor the run jobs use: None is Dagster's default (multiprocess, in process for
    `materialize`). For celery, Dagster reads the broker URL from broker_env when a run starts, and
    the same Redis serves as result backend, so runs and workers (celery.yaml) always agree."""

    name: str | None
    broker_env: str = BROKER_ENV


def executor_from_env(environ: dict[str, str] | None = None) -> ExecutorChoice:
    """The executor EVAL_PIPELINES_EXECUTOR names, checked; unset or empty keeps the default."""
    environ = dict(os.environ) if environ is None else environ
    name = environ.get(EXECUTOR_ENV, "").strip() or None
    problems = _one_of(EXECUTOR_ENV, name, EXECUTORS)
    if name == "celery":
        problems.extend(broker_problems(environ.get(BROKER_ENV), BROKER_ENV, in_environment=True))
    if problems:
        raise InvalidInputError("; ".join(problems))
    return ExecutorChoice(name)
