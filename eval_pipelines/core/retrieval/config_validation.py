"""Validating a parsed retriever document into a RetrieverConfig; every error names the file and the dotted field."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPath, shown, validate_id
from eval_pipelines.core.retrieval.config import (
    BODY_PLACEHOLDERS,
    DEFAULT_REQUEST_BODY,
    ENV_REFERENCE,
    HTTP,
    KINDS,
    MAX_CONCURRENCY,
    MAX_LIMIT,
    MAX_RETRIES,
    MAX_SECONDS,
    PIPELINE,
    HttpConfig,
    LocalServerConfig,
    ResponseConfig,
    RetrieverConfig,
    RetrieverConfigError,
    StageConfig,
    compute_pipeline_hash,
)
from eval_pipelines.core.retrieval.stage_parameters import (
    STAGE_IDS,
    ColumnKinds,
    StageParameterError,
    normalize_stage_parameters,
)
from eval_pipelines.core.retrieval.urls import redact_url, url_credentials

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_TOP_KEYS = {
    PIPELINE: ("id", "name", "kind", "collection", "stages", "description"),
    HTTP: ("id", "name", "kind", "http", "local_server", "description"),
}
_STAGE_KEYS = ("stage_id", "name", "parameters")
_HTTP_KEYS = (
    "url",
    "timeout_s",
    "max_retries",
    "backoff_base_s",
    "backoff_max_s",
    "concurrency",
    "limit",
    "headers",
    "request_body",
    "response",
)
_RESPONSE_KEYS = ("documents_path", "id_field", "score_field", "stage_statistics_path")
_LOCAL_SERVER_KEYS = ("backend",)


_EXPECTED: dict[tuple[type, ...], str] = {
    (dict,): "a mapping",
    (list,): "a list",
    (str,): "a string",
    (int,): "an integer",
    (int, float): "a number",
    (dict, list): "a mapping or a list",
}


class _Reader:
    """Typed access to one mapping of the file, errors naming the dotted field."""

    def __init__(self, file: DataPath | str, data: Mapping[str, Any], prefix: str = "") -> None:
        self.file = file
        self.data = data
        self.prefix = prefix

    def error(self, key: str, problem: str) -> RetrieverConfigError:
        return RetrieverConfigError(self.file, f"{self.prefix}{key}", problem)

    def reject_unknown(self, allowed: Sequence[str]) -> None:
        unknown = sorted(str(k) for k in self.data if k not in allowed)
        if unknown:
            raise self.error(unknown[0], f"unknown key (valid keys: {', '.join(allowed)})")

    def get(
        self,
        key: str,
        types: type | tuple[type, ...],
        default: Any = None,
        *,
        required: bool = False,
    ) -> Any:
        if key not in self.data or (self.data[key] is None and not required):
            if required:
                raise self.error(key, "required")
            return default
        value = self.data[key]
        accepted = types if isinstance(types, tuple) else (types,)
        if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
            expected = _EXPECTED.get(accepted) or " or ".join(t.__name__ for t in accepted)
            raise self.error(key, f"expected {expected}, got {_type_name(value)}")
        return value

    def number(
        self, key: str, default: float, minimum: float, maximum: float, *, strict: bool = False
    ) -> float:
        value = self.get(key, (int, float), default)
        if not math.isfinite(value):
            raise self.error(key, f"must be a finite number, got {value}")
        if value < minimum or (strict and value == minimum):
            raise self.error(key, f"must be {'>' if strict else '>='} {minimum}, got {value}")
        if value > maximum:
            raise self.error(key, f"must be <= {maximum:g}, got {value:g}")
        return float(value)

    def integer(self, key: str, default: int, minimum: int, maximum: int) -> int:
        value = self.get(key, int, default)
        if not minimum <= value <= maximum:
            raise self.error(key, f"must be from {minimum} to {maximum}, got {shown(value)}")
        return value

    def child(self, key: str) -> _Reader | None:
        value = self.get(key, dict)
        return None if value is None else _Reader(self.file, value, f"{self.prefix}{key}.")


def _type_name(value: object) -> str:
    return {
        None.__class__: "null",
        dict: "mapping",
        list: "list",
        str: "string",
        bool: "bool",
        int: "int",
        float: "float",
    }.get(type(value), type(value).__name__)


def _stage_names(stages: list[tuple[str, str | None]], reader: _Reader) -> list[str]:
    """Explicit names must be unique; default names (the stage_id) get _2, _3 ... when repeated."""
    explicit = [n for _, n in stages if n is not None]
    for index, (_, name) in enumerate(stages):
        if name is not None and explicit.count(name) > 1:
            raise reader.error(f"stages[{index}].name", f"stage name {shown(name)} is used twice")
    taken = set(explicit)
    names = []
    for stage_id, name in stages:
        if name is None:
            name, suffix = stage_id, 1
            while name in taken:
                suffix += 1
                name = f"{stage_id}_{suffix}"
            taken.add(name)
        names.append(name)
    return names


def _parse_stages(reader: _Reader, columns: ColumnKinds) -> tuple[StageConfig, ...]:
    raw_stages = reader.get("stages", list, required=True)
    if not raw_stages:
        raise reader.error("stages", "at least one stage is required")
    parsed: list[tuple[str, str | None, dict[str, Any]]] = []
    for index, raw in enumerate(raw_stages):
        where = f"stages[{index}]"
        if not isinstance(raw, dict):
            raise reader.error(where, f"expected a mapping, got {_type_name(raw)}")
        stage = _Reader(reader.file, raw, f"{reader.prefix}{where}.")
        stage.reject_unknown(_STAGE_KEYS)
        stage_id = stage.get("stage_id", str, required=True)
        if stage_id not in STAGE_IDS:
            raise stage.error(
                "stage_id",
                f"unknown stage {shown(stage_id)} (valid stage ids: {', '.join(STAGE_IDS)})",
            )
        name = stage.get("name", str)
        if name is not None:
            try:
                validate_id(name, "name")
            except InvalidInputError as exc:
                raise stage.error("name", str(exc).split(": ", 1)[-1]) from None
        raw_parameters = stage.get("parameters", dict, {})
        try:
            parameters = normalize_stage_parameters(stage_id, raw_parameters, columns)
        except StageParameterError as exc:
            raise stage.error(f"parameters.{exc.field}", exc.problem) from None
        parsed.append((stage_id, name, parameters))
    names = _stage_names([(s, n) for s, n, _ in parsed], reader)
    return tuple(
        StageConfig(stage_id=s, name=name, parameters=p)
        for (s, _, p), name in zip(parsed, names, strict=True)
    )


def _check_template(value: Any, reader: _Reader, field: str) -> None:
    if isinstance(value, str):
        for placeholder in _PLACEHOLDER.findall(value):
            if placeholder not in BODY_PLACEHOLDERS:
                raise reader.error(
                    field,
                    f"unknown placeholder ${{{placeholder}}} (valid: "
                    + ", ".join(f"${{{p}}}" for p in BODY_PLACEHOLDERS)
                    + ")",
                )
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise reader.error(field, f"keys must be strings, got {shown(key)}")
            _check_template(item, reader, f"{field}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_template(item, reader, f"{field}[{index}]")
    elif value is not None and not isinstance(value, int | float | bool):
        raise reader.error(field, f"unsupported value of type {_type_name(value)}")


def _parse_url(reader: _Reader) -> str:
    url = reader.get("url", str, required=True)
    shown_url = shown(redact_url(url))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise reader.error(
            "url", f"expected an http:// or https:// URL with a host, got {shown_url}"
        )
    if "${" in url:
        raise reader.error(
            "url", "placeholders are not allowed in the URL (put secrets in headers)"
        )
    try:
        parts.port  # noqa: B018
    except ValueError as exc:
        raise reader.error("url", f"bad port ({exc}) in {shown_url}") from None
    return url


def _parse_headers(reader: _Reader) -> dict[str, str]:
    headers = reader.get("headers", dict, {})
    result = {}
    for name, value in headers.items():
        field = f"headers.{name}"
        if not isinstance(name, str) or not name:
            raise reader.error(
                "headers", f"header names must be non-empty strings, got {shown(name)}"
            )
        if not isinstance(value, str):
            raise reader.error(field, f"expected a string, got {_type_name(value)}")
        leftover = ENV_REFERENCE.sub("", value)
        if "${" in leftover:
            raise reader.error(field, "only ${env:NAME} placeholders are allowed in headers")
        result[name] = value
    return result


def _parse_response(reader: _Reader) -> ResponseConfig:
    response = reader.child("response")
    if response is None:
        return ResponseConfig()
    response.reject_unknown(_RESPONSE_KEYS)
    defaults = ResponseConfig()
    id_field = response.get("id_field", str, defaults.id_field)
    if not id_field:
        raise response.error("id_field", "must not be empty")
    return ResponseConfig(
        documents_path=response.get("documents_path", str, defaults.documents_path),
        id_field=id_field,
        score_field=response.get("score_field", str, None)
        if "score_field" in response.data
        else defaults.score_field,
        stage_statistics_path=response.get("stage_statistics_path", str, None)
        if "stage_statistics_path" in response.data
        else defaults.stage_statistics_path,
    )


def _parse_http(reader: _Reader) -> HttpConfig:
    http = reader.child("http")
    if http is None:
        raise reader.error("http", "required for kind: http")
    http.reject_unknown(_HTTP_KEYS)
    defaults = HttpConfig(url="")
    body = http.get("request_body", (dict, list), None)
    if body is None:
        body = dict(DEFAULT_REQUEST_BODY)
    _check_template(body, http, "request_body")
    backoff_base = http.number("backoff_base_s", defaults.backoff_base_s, 0.0, MAX_SECONDS)
    backoff_max = http.number("backoff_max_s", defaults.backoff_max_s, 0.0, MAX_SECONDS)
    if backoff_max < backoff_base:
        raise http.error("backoff_max_s", f"must be >= backoff_base_s ({backoff_base})")
    url = _parse_url(http)
    headers = _parse_headers(http)
    if url_credentials(url) is not None and any(n.lower() == "authorization" for n in headers):
        raise http.error(
            "url",
            "has user:password and headers has an Authorization header too; give one of them"
            " (the URL's are sent as HTTP Basic authentication)",
        )
    return HttpConfig(
        url=url,
        timeout_s=http.number("timeout_s", defaults.timeout_s, 0.0, MAX_SECONDS, strict=True),
        max_retries=http.integer("max_retries", defaults.max_retries, 0, MAX_RETRIES),
        backoff_base_s=backoff_base,
        backoff_max_s=backoff_max,
        concurrency=http.integer("concurrency", defaults.concurrency, 1, MAX_CONCURRENCY),
        limit=http.integer("limit", defaults.limit, 1, MAX_LIMIT),
        headers=headers,
        request_body=body,
        response=_parse_response(http),
    )


def parse_retriever_config(
    data: Any,
    source: DataPath | str,
    collection_columns: Callable[[str], ColumnKinds],
) -> RetrieverConfig:
    """Validate one parsed YAML document.

    collection_columns(name) gives the collection's column kinds, or None when it does not exist.
    """
    if not isinstance(data, dict):
        raise RetrieverConfigError(
            source, "file", f"expected a mapping at the top level, got {_type_name(data)}"
        )
    reader = _Reader(source, data)
    kind = reader.get("kind", str, required=True)
    if kind not in KINDS:
        raise reader.error("kind", f"unknown kind {shown(kind)} (valid kinds: {', '.join(KINDS)})")
    reader.reject_unknown(_TOP_KEYS[kind])
    retriever_id = reader.get("id", str, required=True)
    try:
        validate_id(retriever_id, "id")
    except InvalidInputError as exc:
        raise reader.error("id", str(exc).split(": ", 1)[-1]) from None
    name = reader.get("name", str, retriever_id) or retriever_id
    description = reader.get("description", str)
    source_path = None if isinstance(source, str) else source
    if kind == PIPELINE:
        collection = reader.get("collection", str, required=True)
        try:
            validate_id(collection, "collection")
        except InvalidInputError as exc:
            raise reader.error("collection", str(exc).split(": ", 1)[-1]) from None
        columns = collection_columns(collection)
        if columns is None:
            raise reader.error(
                "collection", f"unknown collection {shown(collection)} (no documents.parquet)"
            )
        config = RetrieverConfig(
            id=retriever_id,
            name=name,
            kind=kind,
            pipeline_hash="",
            source_path=source_path,
            collection=collection,
            stages=_parse_stages(reader, columns),
            description=description,
        )
    else:
        local = reader.child("local_server")
        local_server = None
        if local is not None:
            local.reject_unknown(_LOCAL_SERVER_KEYS)
            backend = local.get("backend", str, required=True)
            try:
                validate_id(backend, "backend")
            except InvalidInputError as exc:
                raise local.error("backend", str(exc).split(": ", 1)[-1]) from None
            local_server = LocalServerConfig(backend=backend)
        config = RetrieverConfig(
            id=retriever_id,
            name=name,
            kind=kind,
            pipeline_hash="",
            source_path=source_path,
            http=_parse_http(reader),
            local_server=local_server,
            description=description,
        )
    return replace(config, pipeline_hash=compute_pipeline_hash(config))
