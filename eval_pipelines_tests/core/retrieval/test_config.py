"""Retriever files: pipeline_hash stability and every kind of bad file naming its file and field."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.config import RetrieverConfigError
from eval_pipelines.core.retrieval.registry import (
    load_retriever_config,
    load_retriever_configs,
)

from .conftest import pipeline_config, write_retriever

PROD_YAML = """\
id: demo_prod
name: Production BM25 (title)
kind: pipeline
collection: products
stages:
  - stage_id: feature_search
    parameters: {fields: [title], top_k: 100}
  - stage_id: limit
    parameters: {n: 100}
"""

# Changing these means every stored pipeline_hash changes: only on purpose.
PROD_CANONICAL = (
    '{"collection":"products","kind":"pipeline","stages":[{"parameters":{"b":0.75,"fields":["title"],'
    '"k1":1.5,"method":"lucene","stemmer":"english","stopwords":"en","top_k":100},'
    '"stage_id":"feature_search"},{"parameters":{"n":100},"stage_id":"limit"}]}'
)
PROD_HASH = "ec98a879062f5132bd17278bc34b93548fbbf4ad6ae7b726c0fb297d8a0dca8b"


def _hash(paths: DataPaths, text: str, stem: str = "r") -> str:
    return load_retriever_config(write_retriever(paths, text, stem), paths).pipeline_hash


def test_pipeline_hash_ignores_order_name_and_explicit_defaults(paths: DataPaths) -> None:
    reference = _hash(paths, PROD_YAML)
    reordered = """\
stages:
  - parameters: {top_k: 100, fields: [title]}
    stage_id: feature_search
  - {parameters: {n: 100}, stage_id: limit, name: cut}
collection: products
kind: pipeline
name: Another name entirely
id: other_id
"""
    explicit_defaults = PROD_YAML.replace(
        "{fields: [title], top_k: 100}",
        "{fields: [title], top_k: 100, k1: 1.5, b: 0.75, method: lucene, stemmer: english, stopwords: en}",
    )
    implicit_top_k = PROD_YAML.replace("{fields: [title], top_k: 100}", "{fields: [title]}")
    assert _hash(paths, reordered) == reference
    assert _hash(paths, explicit_defaults) == reference
    assert _hash(paths, implicit_top_k) == reference
    assert _hash(paths, PROD_YAML.replace("k: 100}", "k: 50}")) != reference
    assert _hash(paths, PROD_YAML.replace("{n: 100}", "{n: 10}")) != reference
    assert _hash(paths, PROD_YAML.replace("[title]", "[title, description]")) != reference
    assert reference == PROD_HASH == hashlib.sha256(PROD_CANONICAL.encode()).hexdigest()


def test_http_hash_ignores_secrets_timeouts_and_local_port(paths: DataPaths) -> None:
    base = {
        "id": "api",
        "kind": "http",
        "http": {"url": "http://127.0.0.1:8080/search", "timeout_s": 2.0},
        "local_server": {"backend": "demo_prod"},
    }
    reference = load_retriever_config(write_retriever(paths, base), paths)
    variant = {
        "id": "api2",
        "name": "Other",
        "kind": "http",
        "http": {
            "url": "http://127.0.0.1:9999/search",
            "timeout_s": 9.0,
            "max_retries": 0,
            "concurrency": 2,
            "headers": {"Authorization": "Bearer ${env:SOME_KEY}"},
            "limit": 100,
        },
        "local_server": {"backend": "demo_prod"},
    }
    assert load_retriever_config(write_retriever(paths, variant), paths).pipeline_hash == (
        reference.pipeline_hash
    )
    remote = {"id": "api3", "kind": "http", "http": {"url": "http://127.0.0.1:8080/search"}}
    other_port = {"id": "api4", "kind": "http", "http": {"url": "http://127.0.0.1:8081/search"}}
    # Without a local server the port is part of where rankings come from.
    assert (
        load_retriever_config(write_retriever(paths, remote), paths).pipeline_hash
        != load_retriever_config(write_retriever(paths, other_port), paths).pipeline_hash
    )
    limited = {**base, "id": "api5", "http": {**base["http"], "limit": 20}}
    assert load_retriever_config(write_retriever(paths, limited), paths).pipeline_hash != (
        reference.pipeline_hash
    )


def test_config_fields_and_stage_names(paths: DataPaths) -> None:
    config = load_retriever_config(
        write_retriever(
            paths,
            pipeline_config(
                "named",
                [
                    {"stage_id": "feature_search", "parameters": {"fields": ["title"]}},
                    {"stage_id": "limit", "parameters": {"n": 50}},
                    {"stage_id": "limit", "parameters": {"n": 10}},
                    {"stage_id": "limit", "name": "final_cut", "parameters": {"n": 5}},
                ],
            ),
        ),
        paths,
    )
    assert config.name == "named"
    assert config.kind == "pipeline"
    assert [s.name for s in config.stages] == ["feature_search", "limit", "limit_2", "final_cut"]
    assert config.stages[0].parameters == {
        "fields": ["title"],
        "top_k": 100,
        "k1": 1.5,
        "b": 0.75,
        "method": "lucene",
        "stemmer": "english",
        "stopwords": "en",
    }
    assert len(config.pipeline_hash) == 64


def _error(
    paths: DataPaths, content: dict | str, stem: str = "bad"
) -> tuple[Path, RetrieverConfigError]:
    path = write_retriever(paths, content, stem)
    with pytest.raises(RetrieverConfigError) as info:
        load_retriever_config(path, paths)
    return path, info.value


FEATURE = {"stage_id": "feature_search", "parameters": {"fields": ["title"]}}


@pytest.mark.parametrize(
    ("content", "field", "fragment"),
    [
        (
            pipeline_config("x", [{"stage_id": "vector_search"}]),
            "stages[0].stage_id",
            "feature_search, attribute_filter",
        ),
        ({"kind": "pipeline", "collection": "products", "stages": [FEATURE]}, "id", "required"),
        ({"id": "x", "kind": "pipeline", "stages": [FEATURE]}, "collection", "required"),
        (pipeline_config("x", [{"parameters": {"n": 1}}]), "stages[0].stage_id", "required"),
        (pipeline_config("x", [{"stage_id": "limit"}]), "stages[0].parameters.n", "required"),
        (
            pipeline_config(
                "x",
                [
                    {
                        "stage_id": "feature_search",
                        "parameters": {"fields": ["title"], "top_k": "ten"},
                    }
                ],
            ),
            "stages[0].parameters.top_k",
            "expected an integer",
        ),
        (pipeline_config("x", "not a list"), "stages", "expected a list, got string"),
        (
            {**pipeline_config("x", [FEATURE]), "collection": "nowhere"},
            "collection",
            "unknown collection 'nowhere'",
        ),
        (
            {"id": "x", "kind": "vector", "collection": "products"},
            "kind",
            "valid kinds: pipeline, http",
        ),
        (
            {**pipeline_config("x", [FEATURE]), "colection": "products"},
            "colection",
            "valid keys: id, name",
        ),
        (
            pipeline_config(
                "x",
                [{"stage_id": "feature_search", "parameters": {"fields": ["title"], "topk": 5}}],
            ),
            "stages[1].parameters.topk".replace("[1]", "[0]"),
            "valid keys: fields, top_k",
        ),
        (
            pipeline_config(
                "x", [{"stage_id": "feature_search", "parameters": {"fields": ["colour"]}}]
            ),
            "stages[0].parameters.fields[0]",
            "unknown column 'colour'",
        ),
        (
            pipeline_config(
                "x", [{"stage_id": "feature_search", "parameters": {"fields": ["price"]}}]
            ),
            "stages[0].parameters.fields[0]",
            "expected string",
        ),
        (
            pipeline_config(
                "x",
                [
                    {
                        "stage_id": "attribute_filter",
                        "parameters": {"where": {"price": {"between": 3}}},
                    }
                ],
            ),
            "stages[0].parameters.where.price.between",
            "unknown operator",
        ),
        (
            pipeline_config(
                "x", [{"stage_id": "attribute_filter", "parameters": {"where": {"price": "cheap"}}}]
            ),
            "stages[0].parameters.where.price.eq",
            "expected a number",
        ),
        (
            pipeline_config(
                "x", [{"stage_id": "rerank", "parameters": {"weights": {"brand": 1.0}}}]
            ),
            "stages[0].parameters.weights.brand",
            "expected numeric or bool",
        ),
        (
            pipeline_config(
                "x",
                [
                    {
                        "stage_id": "sort_attribute",
                        "parameters": {"attribute": "price", "order": "up"},
                    }
                ],
            ),
            "stages[0].parameters.order",
            "asc, desc",
        ),
        (
            pipeline_config(
                "x",
                [
                    {**FEATURE, "name": "a"},
                    {"stage_id": "limit", "name": "a", "parameters": {"n": 1}},
                ],
            ),
            "stages[0].name",
            "used twice",
        ),
        ({"id": "x", "kind": "http"}, "http", "required"),
        (
            {"id": "x", "kind": "http", "http": {"url": "ftp://host/x"}},
            "http.url",
            "http:// or https://",
        ),
        (
            {"id": "x", "kind": "http", "http": {"url": "http://h/s", "timeout_s": 0}},
            "http.timeout_s",
            "must be > 0",
        ),
        (
            {"id": "x", "kind": "http", "http": {"url": "http://h/s", "retries": 2}},
            "http.retries",
            "max_retries",
        ),
        (
            {
                "id": "x",
                "kind": "http",
                "http": {"url": "http://h/s", "headers": {"X-Key": "${SECRET}"}},
            },
            "http.headers.X-Key",
            "${env:NAME}",
        ),
        (
            {
                "id": "x",
                "kind": "http",
                "http": {"url": "http://h/s", "request_body": {"q": "${query}"}},
            },
            "http.request_body.q",
            "unknown placeholder ${query}",
        ),
        (
            {"id": "x", "kind": "http", "http": {"url": "http://h/s", "response": {"id": "sku"}}},
            "http.response.id",
            "id_field",
        ),
        ({"id": "../etc", "kind": "http", "http": {"url": "http://h/s"}}, "id", "not a valid id"),
        ("- just\n- a list\n", "file", "mapping at the top level"),
    ],
)
def test_bad_retriever_files_name_file_and_field(
    paths: DataPaths, content: dict | str, field: str, fragment: str
) -> None:
    path, error = _error(paths, content)
    assert error.file == str(path)
    assert error.field == field
    assert fragment in error.problem
    assert str(error) == f"{path}: {field}: {error.problem}"
    assert isinstance(error, InvalidInputError)


def test_bad_yaml_names_the_line(paths: DataPaths) -> None:
    path, error = _error(paths, "id: x\nkind: pipeline\nstages: [\n  - {stage_id: limit\n")
    assert (error.file, error.field) == (str(path), "yaml")
    assert "invalid YAML at line 4, column 3" in error.problem
    _, error = _error(paths, "id: x\nkind: pipeline\nid: y\n")
    assert error.field == "yaml"
    assert "key 'id' given twice (first on line 1)" in error.problem
    assert "line 3" in error.problem


def test_duplicate_ids_and_unknown_backend_across_files(paths: DataPaths) -> None:
    write_retriever(paths, pipeline_config("same", [FEATURE]), "first")
    second = write_retriever(paths, pipeline_config("same", [FEATURE]), "second")
    with pytest.raises(RetrieverConfigError) as info:
        load_retriever_configs(paths)
    assert info.value.file == str(second)
    assert info.value.field == "id"
    assert "first.yaml" in info.value.problem
    second.unlink()
    api = write_retriever(
        paths,
        {
            "id": "api",
            "kind": "http",
            "http": {"url": "http://127.0.0.1:1/search"},
            "local_server": {"backend": "nope"},
        },
    )
    with pytest.raises(RetrieverConfigError) as info:
        load_retriever_configs(paths)
    assert (info.value.file, info.value.field) == (str(api), "local_server.backend")
    assert "pipeline retrievers: same" in info.value.problem
    api.unlink()
    assert list(load_retriever_configs(paths)) == ["same"]


def test_unreadable_collection_is_a_config_error(paths: DataPaths) -> None:
    (paths.collection_dir("products") / "documents.parquet").write_bytes(b"not parquet")
    path, error = _error(paths, pipeline_config("x", [FEATURE]))
    assert (error.file, error.field) == (str(path), "collection")
    assert "not a readable Parquet file" in error.problem
