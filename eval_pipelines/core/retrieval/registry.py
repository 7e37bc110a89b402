"""The retrievers configured under `<data>/retrievers/`: loading, and opening them ready to search."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.collections import (
    CollectionError,
    collection_column_kinds,
    load_collection,
)
from eval_pipelines.core.retrieval.config import (
    PIPELINE,
    RetrieverConfig,
    RetrieverConfigError,
    parse_retriever_config,
    read_yaml,
)
from eval_pipelines.core.retrieval.execution import Retriever
from eval_pipelines.core.retrieval.http_client import HttpRetriever
from eval_pipelines.core.retrieval.http_server import serve_retriever
from eval_pipelines.core.retrieval.pipeline import PipelineRetriever
from eval_pipelines.core.retrieval.stages import ColumnKinds


class UnknownRetrieverError(InvalidInputError):
    """A retriever id that no file under the retrievers directory defines."""


def retriever_files(paths: DataPaths) -> list[Path]:
    directory = paths.retrievers_dir
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and p.is_file()
    )


def load_retriever_config(path: Path, paths: DataPaths) -> RetrieverConfig:
    """Read and validate one retriever file against the collections under `paths`."""

    def columns(collection: str) -> ColumnKinds:
        try:
            return collection_column_kinds(paths, collection)
        except CollectionError as exc:
            raise RetrieverConfigError(path, "collection", str(exc)) from None

    return parse_retriever_config(read_yaml(path), path, columns)


def load_retriever_configs(paths: DataPaths) -> dict[str, RetrieverConfig]:
    """Every retriever, sorted by id; a duplicate id or a bad local_server backend is an error."""
    configs: dict[str, RetrieverConfig] = {}
    for file in retriever_files(paths):
        config = load_retriever_config(file, paths)
        if config.id in configs:
            raise RetrieverConfigError(
                file,
                "id",
                f"duplicate id {config.id!r}, also defined in {configs[config.id].source_path}",
            )
        configs[config.id] = config
    for config in configs.values():
        if config.local_server is None:
            continue
        backend = configs.get(config.local_server.backend)
        if backend is None or backend.kind != PIPELINE:
            pipelines = sorted(c.id for c in configs.values() if c.kind == PIPELINE)
            raise RetrieverConfigError(
                config.source_path or config.id,
                "local_server.backend",
                f"{config.local_server.backend!r} is not a pipeline retriever "
                f"(pipeline retrievers: {', '.join(pipelines) or 'none'})",
            )
    return dict(sorted(configs.items()))


def _local_url(base_url: str, configured_url: str) -> str:
    target = urlsplit(configured_url)
    return base_url + (target.path or "/") + (f"?{target.query}" if target.query else "")


@contextmanager
def open_retrievers(
    paths: DataPaths, ids: Sequence[str] | None = None
) -> Iterator[dict[str, Retriever]]:
    """Ready retrievers by id (all when ids is None); local servers run until the block ends."""
    configs = load_retriever_configs(paths)
    wanted = list(dict.fromkeys(ids)) if ids is not None else list(configs)
    unknown = [i for i in wanted if i not in configs]
    if unknown:
        raise UnknownRetrieverError(
            f"retriever_id: unknown {', '.join(repr(i) for i in unknown)} "
            f"(known: {', '.join(configs) or f'none in {paths.retrievers_dir}'})"
        )
    with ExitStack() as stack:
        pipelines: dict[str, PipelineRetriever] = {}
        servers: dict[tuple[str, str], str] = {}

        def pipeline(retriever_id: str) -> PipelineRetriever:
            if retriever_id not in pipelines:
                config = configs[retriever_id]
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
