"""Real Postgres, Redis and S3 (moto's server mode) servers for the deployment tests: loopback only, free ports, data under a
temporary directory, bounded waits, always stopped. A test skips, saying why, when a server's
binaries are missing (`python3 tasks.py test` installs Debian's postgresql and redis-server).

Postgres refuses to run as root, so as root its commands run as the `postgres` user (`runuser`),
with its data directory in a private temporary directory that user owns.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from eval_pipelines.core.paths import DataPaths, data_root
from eval_pipelines_tests.cli.conftest import CLI, CliResult
from eval_pipelines_tests.loopback import free_port

START_DEADLINE_S = 30
POSTGRES_USER = "eval"


@dataclass(frozen=True)
class Postgres:
    """A running server: a database URL carries no password (it is `password`, for the env var)."""

    port: int
    password: str
    bin_dir: Path
    run_as: list[str]

    def url(self, database: str) -> str:
        return f"postgresql://{POSTGRES_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A fresh database, its URL returned."""
        subprocess.run(
            [
                str(self.bin_dir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                POSTGRES_USER,
                name,
            ],
            env={**os.environ, "PGPASSWORD": self.password},
            check=True,
            capture_output=True,
            timeout=START_DEADLINE_S,
        )
        return self.url(name)


def _postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


def _run_as() -> list[str]:
    """Postgres will not run as root: as root, its commands run as the `postgres` user."""
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        pytest.skip("postgres: running as root without runuser to start Postgres as another user")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("postgres: running as root and there is no `postgres` user to start it as")
    return ["runuser", "-u", "postgres", "--"]


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    """initdb + pg_ctl start on 127.0.0.1:<free port> (scram passwords over TCP), stopped after."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("postgres: no pg_ctl on PATH or under /usr/lib/postgresql (apt: postgresql)")
    run_as = _run_as()
    root = Path(tempfile.mkdtemp(prefix="eval-pipelines-postgres-"))
    if run_as:
        shutil.chown(root, "postgres", "postgres")
    data, password = root / "data", secrets.token_hex(12)
    pwfile = root / "pwfile"
    pwfile.write_text(password)
    if run_as:
        shutil.chown(pwfile, "postgres", "postgres")
    port = free_port()
    quiet = {"capture_output": True, "text": True, "timeout": START_DEADLINE_S * 2}
    try:
        subprocess.run(
            [
                *run_as,
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                POSTGRES_USER,
                "-E",
                "UTF8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
            ],
            check=True,
            **quiet,
        )
        options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c full_page_writes=off"
        subprocess.run(
            [
                *run_as,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "server.log"),
                "-w",
                "-t",
                str(START_DEADLINE_S),
                "start",
            ],
            check=True,
            **quiet,
        )
        try:
            yield Postgres(port, password, bin_dir, run_as)
        finally:
            subprocess.run(
                [
                    *run_as,
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-m",
                    "immediate",
                    "-w",
                    "-t",
                    str(START_DEADLINE_S),
                    "stop",
                ],
                **quiet,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class Redis:
    port: int

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server(directory: Path) -> Iterator[Redis]:
    """redis-server on 127.0.0.1:<free port>, nothing persisted, stopped after."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis: no redis-server on PATH (apt: redis-server)")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            "--protected-mode",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with _serving(process, lambda: _answers_ping(port), "redis-server"):
        yield Redis(port)


@contextmanager
def _serving(process: subprocess.Popen, answers: Callable[[], bool], name: str) -> Iterator[None]:
    """Wait (at most START_DEADLINE_S) until a started server answers, then always stop it."""
    try:
        deadline = time.monotonic() + START_DEADLINE_S
        while not answers():
            assert process.poll() is None, f"{name} exited while starting"
            assert time.monotonic() < deadline, f"{name} did not answer in {START_DEADLINE_S} s"
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass(frozen=True)
class S3:
    """A local S3-compatible server: its environment makes s3fs, pyarrow and boto3 talk to it."""

    port: int

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.port}",
            "AWS_ACCESS_KEY_ID": "eval-pipelines-test",
            "AWS_SECRET_ACCESS_KEY": "eval-pipelines-test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def create_bucket(self, name: str) -> str:
        """A new bucket; its s3:// URL returned."""
        _s3_request(self.port, "PUT", f"/{name}")
        return f"s3://{name}"

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under prefix (moto's bucket listing, paged)."""
        import boto3

        client = boto3.client("s3", **_client_args(self))
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _client_args(s3: S3) -> dict[str, str]:
    return {
        "endpoint_url": s3.env["AWS_ENDPOINT_URL"],
        "aws_access_key_id": s3.env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": s3.env["AWS_SECRET_ACCESS_KEY"],
        "region_name": s3.env["AWS_DEFAULT_REGION"],
    }


def _s3_request(port: int, method: str, path: str) -> int:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        response.read()
        assert response.status < 300, f"{method} {path}: HTTP {response.status}"
        return response.status
    finally:
        connection.close()


@contextmanager
def s3_server() -> Iterator[S3]:
    """moto's S3 server on 127.0.0.1:<free port>, in memory, stopped after."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        pytest.skip("s3: moto[server] is not installed (the test extra installs it)")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with _serving(process, lambda: _s3_answers(port), "moto server"):
        yield S3(port)


def _s3_answers(port: int) -> bool:
    try:
        _s3_request(port, "GET", "/")
    except (OSError, AssertionError):
        return False
    return True


VARYING_KEYS = {
    "run_id",
    "benchmark_id",
    "created_at",
    "started_at",
    "completed_at",
    "latency",
    "latency_delta_ms",
}


def comparable(record: object) -> object:
    """A record without what differs between two runs of the same request on any deployment: ids,
    timestamps and latencies (also inside the recommendation sentence)."""
    if isinstance(record, dict):
        return {
            key: value.split(", latency")[0] if key == "recommendation" else comparable(value)
            for key, value in record.items()
            if key not in VARYING_KEYS
        }
    if isinstance(record, list):
        return [comparable(value) for value in record]
    return record


def run_cli_env(
    data_dir: Path | str, env: dict[str, str], *args: str, timeout: float = 180
) -> CliResult:
    """The real console script with extra environment (DAGSTER_HOME, passwords, executor)."""
    full = {**os.environ, "EVAL_PIPELINES_DATA": str(data_dir), **env}
    full["PATH"] = f"{CLI.parent}{os.pathsep}{full.get('PATH', '')}"
    result = subprocess.run(
        [str(CLI), *args], env=full, capture_output=True, text=True, timeout=timeout
    )
    return CliResult(result.returncode, result.stdout, result.stderr)


def configure_instance(data_dir: Path, env: dict[str, str], *flags: str) -> None:
    """`instance config FLAGS`, then `instance migrate`: a deployment's instance set up once."""
    for args in (("instance", "config", *flags), ("instance", "migrate")):
        result = run_cli_env(data_dir, env, *args)
        assert result.returncode == 0, f"{args[:2]}: {result.stderr[-3000:]}"


def upload_world(world: DataPaths, root: str) -> DataPaths:
    """A built local world copied under an S3 root (dagster_home and the warehouse file stay out)."""
    remote = DataPaths(data_root(root, "upload_world"))
    for path in sorted(Path(world.root).rglob("*")):
        relative = path.relative_to(world.root)
        if path.is_file() and relative.parts[0] != "dagster_home" and path.suffix != ".duckdb":
            remote.root.fs.put_file(str(path), (remote.root / relative.as_posix()).path)
    return remote
