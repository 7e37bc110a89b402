"""The retrievers configured under `<data>/retrievers/`: loading, and opening them ready to search."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPath, DataPaths, is_valid_id, shown
from eval_pipelines.core.retrieval.collections import (
    CollectionError,
    collection_column_kinds,
    load_collection,
)
from eval_pipelines.core.retrieval.config import PIPELINE, RetrieverConfig, RetrieverConfigError
from eval_pipelines.core.retrieval.config_validation import parse_retriever_config
from eval_pipelines.core.retrieval.execution import Retriever
from eval_pipelines.core.retrieval.file_cache import read_cached
from eval_pipelines.core.retrieval.http_client import HttpRetriever
from eval_pipelines.core.retrieval.http_server import serve_retriever
from eval_pipelines.core.retrieval.pipeline import PipelineRetriever
from eval_pipelines.core.retrieval.retriever_yaml import read_yaml
from eval_pipelines.core.retrieval.stage_parameters import ColumnKinds


class UnknownRetrieverError(InvalidInputError):
    """A retriever id that no usable file under the retrievers directory defines."""


def retriever_files(paths: DataPaths) -> list[DataPath]:
    directory = paths.retrievers_dir
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and p.is_file()
    )


def _columns_of(path: DataPath, paths: DataPaths) -> Callable[[str], ColumnKinds]:
    def columns(collection: str) -> ColumnKinds:
        try:
            return collection_column_kinds(paths, collection)
        except CollectionError as exc:
            raise RetrieverConfigError(path, "collection", str(exc)) from None

    return columns


def _read_document(path: DataPath) -> Any:
    """The file's YAML document, parsed once while the file is unchanged (a private copy)."""
    return copy.deepcopy(read_cached(path, "retriever_yaml", read_yaml))


def load_retriever_config(path: DataPath, paths: DataPaths) -> RetrieverConfig:
    """Read and validate one retriever file against the collections under `paths`."""
    return parse_retriever_config(_read_document(path), path, _columns_of(path, paths))


@dataclass(frozen=True)
class RetrieverProblem:
    """Why one file cannot be used, and the id it declares when that much could be read."""

    error: RetrieverConfigError
    retriever_id: str | None

    def __str__(self) -> str:
        return str(self.error)


@dataclass(frozen=True)
class RetrieverRegistry:
    """Every retriever file, read once: the usable retrievers, and each problem with its file.

    A broken file makes only the retrievers it might define unusable: a request for an id that a
    good file defines goes ahead, and one for any other id is told which files could define it.
    """

    directory: DataPath
    configs: dict[str, RetrieverConfig]
    parsed: tuple[RetrieverConfig, ...]
    problems: tuple[RetrieverProblem, ...]

    def problem_for(self, retriever_id: str) -> str | None:
        """None when the id can be used; else `unknown retriever ...` or why its file cannot be."""
        if retriever_id in self.configs:
            return None
        declared = [p for p in self.problems if p.retriever_id == retriever_id]
        if declared:
            return f"retriever {shown(retriever_id)} cannot be used: " + "; ".join(
                map(str, declared)
            )
        unread = [p for p in self.problems if p.retriever_id is None]
        if unread:
            files = (
                "file could not be read and may"
                if len(unread) == 1
                else "files could not be read and may"
            )
            return (
                f"unknown retriever {shown(retriever_id)}; {len(unread)} retriever {files} "
                "define it: " + "; ".join(map(str, unread))
            )
        known = ", ".join(self.configs) or f"none in {self.directory}"
        return f"unknown retriever {shown(retriever_id)} (known: {known})"

    def require(self, ids: Sequence[str]) -> dict[str, RetrieverConfig]:
        """The configs of these ids, in order; UnknownRetrieverError naming each that cannot be used."""
        problems = [(i, self.problem_for(i)) for i in dict.fromkeys(ids)]
        unusable = [f"retriever_id: {problem}" for _, problem in problems if problem is not None]
        if unusable:
            raise UnknownRetrieverError("\n".join(unusable))
        return {i: self.configs[i] for i, _ in problems}

    def everything(self) -> dict[str, RetrieverConfig]:
        """Every retriever, when every file is usable; else the first problem is raised."""
        if self.problems:
            raise self.problems[0].error
        return dict(self.configs)


def _declared_id(data: Any) -> str | None:
    value = data.get("id") if isinstance(data, dict) else None
    return value if is_valid_id(value) else None


def load_retriever_registry(paths: DataPaths) -> RetrieverRegistry:
    """Read every retriever file; a problem is kept with its file instead of stopping the rest.

    An id defined by two files, or an http retriever whose local_server backend is not a usable
    pipeline retriever, makes that id unusable and is reported on each file concerned. Files and
    collection schemas unchanged since an earlier call in this process are not read again.
    """
    parsed, problems = _read_files(paths)
    configs = _unique_ids(parsed, problems)
    _drop_ids_claimed_by_broken_files(configs, problems)
    _drop_local_servers_without_backend(configs, problems)
    return RetrieverRegistry(
        directory=paths.retrievers_dir,
        configs=dict(sorted(configs.items())),
        parsed=tuple(parsed),
        problems=tuple(problems),
    )


def _read_files(paths: DataPaths) -> tuple[list[RetrieverConfig], list[RetrieverProblem]]:
    parsed: list[RetrieverConfig] = []
    problems: list[RetrieverProblem] = []
    for file in retriever_files(paths):
        try:
            data = _read_document(file)
        except RetrieverConfigError as exc:
            problems.append(RetrieverProblem(exc, None))
            continue
        try:
            parsed.append(parse_retriever_config(data, file, _columns_of(file, paths)))
        except RetrieverConfigError as exc:
            problems.append(RetrieverProblem(exc, _declared_id(data)))
    return parsed, problems


def _unique_ids(
    parsed: list[RetrieverConfig], problems: list[RetrieverProblem]
) -> dict[str, RetrieverConfig]:
    """The configs by id; an id that several files define is unusable, a problem on each later file."""
    files_by_id: dict[str, list[RetrieverConfig]] = {}
    for config in parsed:
        files_by_id.setdefault(config.id, []).append(config)
    configs: dict[str, RetrieverConfig] = {}
    for retriever_id, defined in files_by_id.items():
        if len(defined) == 1:
            configs[retriever_id] = defined[0]
        problems.extend(
            RetrieverProblem(
                RetrieverConfigError(
                    config.source_path or config.id,
                    "id",
                    f"duplicate id {retriever_id!r}, also defined in {defined[0].source_path}",
                ),
                retriever_id,
            )
            for config in defined[1:]
        )
    return configs


def _drop_ids_claimed_by_broken_files(
    configs: dict[str, RetrieverConfig], problems: list[RetrieverProblem]
) -> None:
    """An id that a broken file also declares is unusable: which file is meant is unclear."""
    for problem in list(problems):
        claimed = configs.pop(problem.retriever_id or "", None)
        if claimed is not None:
            problems.append(
                RetrieverProblem(
                    RetrieverConfigError(
                        claimed.source_path or claimed.id,
                        "id",
                        f"{claimed.id!r} is also declared by {problem.error.file}, which cannot"
                        " be used; which one is meant is unclear",
                    ),
                    claimed.id,
                )
            )


def _drop_local_servers_without_backend(
    configs: dict[str, RetrieverConfig], problems: list[RetrieverProblem]
) -> None:
    for config in list(configs.values()):
        if config.local_server is None:
            continue
        backend = configs.get(config.local_server.backend)
        if backend is not None and backend.kind == PIPELINE:
            continue
        pipelines = sorted(c.id for c in configs.values() if c.kind == PIPELINE)
        why = config.local_server.backend
        backend_problem = (
            f"; {problem}"
            if backend is None and (problem := _backend_problem(problems, why))
            else ""
        )
        problems.append(
            RetrieverProblem(
                RetrieverConfigError(
                    config.source_path or config.id,
                    "local_server.backend",
                    f"{why!r} is not a pipeline retriever "
                    f"(pipeline retrievers: {', '.join(pipelines) or 'none'}){backend_problem}",
                ),
                config.id,
            )
        )
        del configs[config.id]


def _backend_problem(problems: list[RetrieverProblem], backend: str) -> str | None:
    found = [str(p) for p in problems if p.retriever_id == backend]
    return f"its file cannot be used: {'; '.join(found)}" if found else None


def load_retriever_configs(paths: DataPaths) -> dict[str, RetrieverConfig]:
    """Every retriever, sorted by id, when every file is usable; else the first problem is raised.

    Requests use load_retriever_registry instead, so that one broken file stops only the
    requests that need it.
    """
    return load_retriever_registry(paths).everything()


def _local_url(base_url: str, configured_url: str) -> str:
    target = urlsplit(configured_url)
    return base_url + (target.path or "/") + (f"?{target.query}" if target.query else "")


@contextmanager
def open_retrievers(
    paths: DataPaths, ids: Sequence[str] | None = None
) -> Iterator[dict[str, Retriever]]:
    """Ready retrievers by id (all when ids is None); local servers run until the block ends."""
    registry = load_retriever_registry(paths)
    configs = registry.everything() if ids is None else registry.require(ids)
    wanted = list(configs)
    with ExitStack() as stack:
        pipelines: dict[str, PipelineRetriever] = {}
        servers: dict[tuple[str, str], str] = {}

        def pipeline(retriever_id: str) -> PipelineRetriever:
            if retriever_id not in pipelines:
                # A local server's backend need not be among the ids opened.
                config = configs.get(retriever_id) or registry.configs[retriever_id]
                assert config.collection is not None
                pipelines[retriever_id] = PipelineRetriever(
                    config, load_collection(paths, config.collection)
                )
            return pipelines[retriever_id]

        opened: dict[str, Retriever] = {}
        for retriever_id in wanted:
            config = configs[retriever_id]
            if config.kind == PIPELINE:
                opened[retriever_id] = pipeline(retriever_id)
                continue
            assert config.http is not None
            if config.local_server is not None:
                route = urlsplit(config.http.url).path or "/"
                key = (config.local_server.backend, route)
                if key not in servers:
                    backend = pipeline(config.local_server.backend)
                    servers[key] = stack.enter_context(serve_retriever(backend, path=route))
                config = config.with_url(_local_url(servers[key], config.http.url))
            client = HttpRetriever(config)
            stack.callback(client.close)
            opened[retriever_id] = client
        yield opened


@contextmanager
def open_retriever(paths: DataPaths, retriever_id: str) -> Iterator[Retriever]:
    with open_retrievers(paths, [retriever_id]) as retrievers:
        yield retrievers[retriever_id]
