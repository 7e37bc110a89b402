"""`eval-pipelines instance config|migrate`: the dagster.yaml of a deployment beyond one machine
(Postgres storage, queued runs with limits per kind, an executor for the run jobs), and its storage
schema created once before any daemon or worker starts."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from eval_pipelines.cli.output import local_file
from eval_pipelines.core import deployment
from eval_pipelines.core.deployment import DeploymentSettings
from eval_pipelines.core.paths import DataPaths


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("instance", help="the Dagster instance of a multi-node deployment")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    config = verbs.add_parser(
        "config",
        help="write a dagster.yaml (validated against Dagster's instance schema) for a deployment",
    )
    config.add_argument("--storage", default="sqlite", help="sqlite (default) or postgres")
    config.add_argument(
        "--postgres-url", help="postgresql://USER@HOST[:PORT]/DATABASE, without the password"
    )
    config.add_argument(
        "--password-env",
        default=deployment.PASSWORD_ENV,
        help=f"the variable Dagster reads the Postgres password from (default {deployment.PASSWORD_ENV})",
    )
    config.add_argument("--run-coordinator", default="default", help="default or queued")
    config.add_argument(
        "--max-concurrent-runs", type=int, help="queued: runs at once (-1: no limit)"
    )
    config.add_argument("--benchmark-limit", type=int, help="queued: benchmark runs at once")
    config.add_argument("--evaluation-limit", type=int, help="queued: evaluation runs at once")
    config.add_argument(
        "--executor", help="in_process, multiprocess or celery (the run jobs' executor)"
    )
    config.add_argument("--broker", help="celery: the broker URL, e.g. redis://HOST:6379/0")
    config.add_argument(
        "--output",
        type=local_file,
        help="where to write dagster.yaml (default: $DAGSTER_HOME/dagster.yaml)",
    )
    config.set_defaults(handler=run_config)
    migrate = verbs.add_parser(
        "migrate", help="create or upgrade the instance's storage schema (run once, before workers)"
    )
    migrate.add_argument(
        "--home", type=local_file, help="DAGSTER_HOME to migrate (default: the project's)"
    )
    migrate.set_defaults(handler=run_migrate)


def _home(paths: DataPaths) -> Path:
    return (
        Path(os.environ["DAGSTER_HOME"]) if os.environ.get("DAGSTER_HOME") else paths.dagster_home
    )


def run_config(args: argparse.Namespace, paths: DataPaths) -> int:
    from eval_pipelines.instance import write_deployment

    settings = DeploymentSettings(
        storage=args.storage,
        postgres_url=args.postgres_url,
        password_env=args.password_env,
        run_coordinator=args.run_coordinator,
        max_concurrent_runs=args.max_concurrent_runs,
        benchmark_limit=args.benchmark_limit,
        evaluation_limit=args.evaluation_limit,
        executor=args.executor,
        broker=args.broker,
    )
    output = (args.output or _home(paths) / "dagster.yaml").resolve()
    for path in write_deployment(settings, output):
        print(f"wrote {path}")
    if settings.storage == "postgres":
        print(
            f"set ${settings.password_env} on every machine, then run"
            f" `DAGSTER_HOME={output.parent} eval-pipelines instance migrate` once",
            file=sys.stderr,
        )
    if settings.executor is not None:
        print(
            f"export the variables of {output.parent / 'executor.env'} wherever the daemon,"
            " webserver, code servers and workers run",
            file=sys.stderr,
        )
    return 0


def run_migrate(args: argparse.Namespace, paths: DataPaths) -> int:
    from eval_pipelines.instance import migrate_instance

    home = (args.home or _home(paths)).resolve()
    storage = migrate_instance(home)
    print(f"migrated the instance at {home} ({storage})")
    return 0
