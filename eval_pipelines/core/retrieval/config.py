"""Retriever configurations: the validated dataclasses, and pipeline_hash over what decides a ranking.

pipeline_hash covers only what decides a ranking (never names, timeouts, retries or headers), so two
retrievers with the same hash must rank identically and a secret never influences a stored value.
Files are read by retriever_yaml.py and validated by config_validation.py.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPath
from eval_pipelines.core.retrieval.urls import redact_url, url_without_port

PIPELINE, HTTP = "pipeline", "http"
KINDS = (PIPELINE, HTTP)

ENV_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
BODY_PLACEHOLDERS = ("query_input", "text", "filters", "limit")

# Generous bounds that still keep every wait and every retry loop finite.
MAX_SECONDS = 3600.0
MAX_RETRIES = 100
MAX_CONCURRENCY = 1024
MAX_LIMIT = 10_000


DEFAULT_REQUEST_BODY: dict[str, Any] = {"inputs": "${query_input}", "limit": "${limit}"}


class RetrieverConfigError(InvalidInputError):
    """A retriever file that cannot be used: names the file, the field and the problem."""

    def __init__(self, file: DataPath | str, field: str, problem: str) -> None:
        super().__init__(f"{file}: {field}: {problem}")
        self.file = str(file)
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class StageConfig:
    stage_id: str
    name: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ResponseConfig:
    """Where an engine's answer keeps things; dotted paths, "" meaning the whole answer."""

    documents_path: str = "documents"
    id_field: str = "document_id"
    score_field: str | None = "score"
    stage_statistics_path: str | None = "stage_statistics"

    def as_dict(self) -> dict[str, Any]:
        return {
            "documents_path": self.documents_path,
            "id_field": self.id_field,
            "score_field": self.score_field,
            "stage_statistics_path": self.stage_statistics_path,
        }


@dataclass(frozen=True)
class HttpConfig:
    url: str
    timeout_s: float = 5.0
    max_retries: int = 3
    backoff_base_s: float = 0.05
    backoff_max_s: float = 2.0
    concurrency: int = 16
    limit: int = 100
    headers: dict[str, str] = field(default_factory=dict)
    request_body: Any = field(default_factory=lambda: dict(DEFAULT_REQUEST_BODY))
    response: ResponseConfig = field(default_factory=ResponseConfig)


@dataclass(frozen=True)
class LocalServerConfig:
    backend: str


@dataclass(frozen=True)
class RetrieverConfig:
    id: str
    name: str
    kind: str
    pipeline_hash: str
    source_path: DataPath | None = None
    collection: str | None = None
    stages: tuple[StageConfig, ...] = ()
    http: HttpConfig | None = None
    local_server: LocalServerConfig | None = None
    description: str | None = None

    def with_url(self, url: str) -> RetrieverConfig:
        """The same retriever pointed at another URL (the hash is unchanged: it ignores the port)."""
        if self.http is None:
            raise ValueError(f"retriever {self.id!r} is not an http retriever")
        return replace(self, http=replace(self.http, url=url))


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def ranking_definition(config: RetrieverConfig) -> dict[str, Any]:
    """What decides the ranking; its canonical JSON is hashed into pipeline_hash."""
    if config.kind == PIPELINE:
        return {
            "kind": PIPELINE,
            "collection": config.collection,
            "stages": [{"stage_id": s.stage_id, "parameters": s.parameters} for s in config.stages],
        }
    assert config.http is not None
    local = config.local_server
    return {
        "kind": HTTP,
        "url": url_without_port(redact_url(config.http.url))
        if local
        else redact_url(config.http.url),
        "request_body": config.http.request_body,
        "response": config.http.response.as_dict(),
        "limit": config.http.limit,
        "local_server": {"backend": local.backend} if local else None,
    }


def compute_pipeline_hash(config: RetrieverConfig) -> str:
    return sha256_hex(ranking_definition(config))
