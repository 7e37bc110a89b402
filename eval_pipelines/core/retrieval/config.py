"""Retriever YAML files: parsing, validation and pipeline_hash.

pipeline_hash covers only what decides a ranking (never names, timeouts, retries or headers), so two
retrievers with the same hash must rank identically and a secret never influences a stored value.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit

import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceStartEvent,
)

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import shown, shown_field, validate_id
from eval_pipelines.core.retrieval.stages import (
    STAGE_IDS,
    ColumnKinds,
    StageParameterError,
    normalize_stage_parameters,
)

PIPELINE, HTTP = "pipeline", "http"
KINDS = (PIPELINE, HTTP)

ENV_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
BODY_PLACEHOLDERS = ("query_input", "text", "filters", "limit")
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")

# Generous bounds that still keep every wait and every retry loop finite.
MAX_SECONDS = 3600.0
MAX_RETRIES = 100
MAX_CONCURRENCY = 1024
MAX_LIMIT = 10_000

# A retriever file is a few hundred bytes. These bounds refuse, before anything is built, a file
# whose loading or use would not end: a YAML alias bomb (513 bytes that expand to billions of
# nodes), nesting deeper than any config needs (the composer recurses), or numbers so long that
# converting them is refused by Python itself.
MAX_FILE_BYTES = 2_000_000
MAX_YAML_DEPTH = 32
MAX_YAML_NODES = 100_000
MAX_NUMBER_CHARACTERS = 100
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_SURROGATE = re.compile("[\ud800-\udfff]")

# Query parameters whose values are credentials: never shown, never hashed. Names are compared
# lower-cased without "-", "_" and "."; a name like sort_key or monkey is not one of them.
_SECRET_PARAMETERS = frozenset(
    {"key", "apikey", "token", "secret", "password", "passwd", "pwd", "pass", "sig", "signature"}
)
_SECRET_SUFFIXES = ("apikey", "token", "secret", "password", "signature", "credential")
REDACTED = "***"

DEFAULT_REQUEST_BODY: dict[str, Any] = {"inputs": "${query_input}", "limit": "${limit}"}

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


class RetrieverConfigError(InvalidInputError):
    """A retriever file that cannot be used: names the file, the field and the problem."""

    def __init__(self, file: Path | str, field: str, problem: str) -> None:
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
    source_path: Path | None = None
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


def is_secret_parameter(name: str) -> bool:
    """Whether a query parameter's value is a credential: key, api_key, token, access_token,
    secret, password, sig, signature, auth..., x-amz-credential and the like (any case)."""
    normalized = re.sub(r"[-_.\s]", "", unquote_plus(name).lower())
    return (
        normalized in _SECRET_PARAMETERS
        or normalized.startswith("auth")
        or normalized.endswith(_SECRET_SUFFIXES)
    )


def redact_url(url: str) -> str:
    """The URL as every output shows it: user:password and secret query values become ***.

    Everything else keeps its spelling, so a reader still sees which engine and which parameters.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = "&".join(
        f"{name}={REDACTED}" if separator and is_secret_parameter(name) else piece
        for piece in parts.query.split("&")
        for name, separator, _ in [piece.partition("=")]
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # as written: pipeline_hash of a URL without credentials never changes
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def url_credentials(url: str) -> tuple[str, str] | None:
    """(user, password) given in the URL, percent-decoded; None when it has none."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return None
    return unquote(parts.username or ""), unquote(parts.password or "")


def url_secrets(url: str) -> list[str]:
    """What of the URL no output may repeat: its password (or its user, when that is the only
    credential, as with an API key given as the user name), and secret query values."""
    parts = urlsplit(url)
    found: set[str] = set()
    credentials = url_credentials(url)
    if credentials is not None:
        user, password = credentials
        if password:
            found.update((password, f"{user}:{password}", parts.netloc.rpartition("@")[0]))
        else:
            found.update((user, parts.netloc.rpartition("@")[0]))
    for piece in parts.query.split("&"):
        name, separator, value = piece.partition("=")
        if separator and value and is_secret_parameter(name):
            found.update((value, unquote_plus(value)))
    return sorted(v for v in found if v)


def url_without_port(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.hostname or ""))


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


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (PyYAML would keep the last)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {shown(key)} given twice (first on line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file within the bounds above; any problem becomes a RetrieverConfigError
    naming the field (or the line, for a syntax error)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise RetrieverConfigError(path, "file", f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise RetrieverConfigError(
            path,
            "file",
            f"larger than {MAX_FILE_BYTES:,} bytes (a retriever file is a few hundred)",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RetrieverConfigError(path, "file", f"not UTF-8 text ({exc.reason})") from None
    try:
        check_yaml_shape(text, path)
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except RetrieverConfigError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or str(exc)
        raise RetrieverConfigError(path, "yaml", f"invalid YAML at {where}: {problem}") from None
    except (ValueError, OverflowError, RecursionError) as exc:
        # e.g. a date that does not exist (2026-02-30): the constructor raises, with no position
        raise RetrieverConfigError(path, "yaml", f"a value cannot be read: {exc}") from None


@dataclass
class _Open:
    """A mapping or sequence being read: where it is, and what it holds so far (aliases expanded)."""

    field: str
    anchor: str | None
    is_mapping: bool
    nodes: int = 1
    height: int = 1
    index: int = 0
    key: str | None = None


def _child_field(parent: _Open | None) -> tuple[str, bool]:
    """The dotted field of the next node under parent, and whether that node is a mapping key."""
    if parent is None:
        return "", False
    if parent.is_mapping:
        if parent.key is None:
            return parent.field, True
        return (f"{parent.field}.{parent.key}" if parent.field else parent.key), False
    return f"{parent.field}[{parent.index}]", False


def _advance(parent: _Open | None, key_text: str | None) -> None:
    """Move parent past one child node (a key's text names the value that follows it)."""
    if parent is None:
        return
    if not parent.is_mapping:
        parent.index += 1
    elif parent.key is None:
        parent.key = shown_field(key_text) if key_text is not None else "?"
    else:
        parent.key = None


def _scalar_problem(event: ScalarEvent) -> str | None:
    surrogate = _SURROGATE.search(event.value)
    if surrogate:
        return (
            f"contains {shown(surrogate.group())}, a lone surrogate that is not a Unicode character"
            " (write the character itself, or \\U0001F600 for one outside the BMP)"
        )
    if len(event.value) > MAX_NUMBER_CHARACTERS:
        tag = event.tag
        if tag in (None, "!"):
            tag = yaml.resolver.Resolver().resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag in _NUMBER_TAGS:
            return (
                f"a number written with {len(event.value):,} characters"
                f" (at most {MAX_NUMBER_CHARACTERS})"
            )
    return None


def check_yaml_shape(text: str, file: Path | str) -> None:
    """Refuse a document that is too deep, too big once its aliases are expanded, or holds
    text that is not Unicode or a number too long to convert; reads events only, builds nothing.

    PyYAML shares an alias's node instead of copying it, so loading a bomb is quick: the hang
    comes later, in whatever walks, hashes or prints the expanded structure. Counting here, with
    each alias weighing what its anchor holds, stops at the bound however the file is nested.
    """
    stack: list[_Open] = []
    anchors: dict[str, tuple[int, int]] = {}
    total = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, CollectionEndEvent):
            done = stack.pop()
            if done.anchor is not None:
                anchors[done.anchor] = (done.nodes, done.height)
            if stack:
                stack[-1].nodes += done.nodes
                stack[-1].height = max(stack[-1].height, done.height + 1)
            continue
        if not isinstance(event, NodeEvent):
            continue
        parent = stack[-1] if stack else None
        field, is_key = _child_field(parent)

        def refuse(problem: str, where: str = field) -> RetrieverConfigError:
            return RetrieverConfigError(file, where or "(top level)", problem)

        if isinstance(event, AliasEvent):
            if event.anchor in {f.anchor for f in stack}:
                raise refuse(f"alias *{event.anchor} refers to a node that contains it")
            nodes, height = anchors.get(event.anchor, (1, 0))
        elif isinstance(event, ScalarEvent):
            problem = _scalar_problem(event)
            if problem is not None:
                raise refuse(problem, f"{field or '(top level)'} (a key)" if is_key else field)
            nodes, height = 1, 0
            if event.anchor is not None:
                anchors[event.anchor] = (1, 0)
        else:
            nodes, height = 0, 0
        depth = len(stack) + height
        if depth > MAX_YAML_DEPTH:
            raise refuse(f"nested deeper than {MAX_YAML_DEPTH} levels")
        total += nodes
        if total > MAX_YAML_NODES:
            raise refuse(
                f"the file holds more than {MAX_YAML_NODES:,} values once its aliases are expanded"
            )
        if parent is not None:
            parent.nodes += nodes
            parent.height = max(parent.height, height + 1)
        _advance(parent, event.value if isinstance(event, ScalarEvent) else None)
        if isinstance(event, MappingStartEvent | SequenceStartEvent):
            if len(stack) + 1 > MAX_YAML_DEPTH:
                raise refuse(f"nested deeper than {MAX_YAML_DEPTH} levels")
            total += 1
            stack.append(_Open(field, event.anchor, isinstance(event, MappingStartEvent)))


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

    def __init__(self, file: Path | str, data: Mapping[str, Any], prefix: str = "") -> None:
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
    source: Path | str,
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
    source_path = Path(source) if isinstance(source, Path) else None
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
