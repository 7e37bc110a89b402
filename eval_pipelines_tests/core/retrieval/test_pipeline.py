"""Pipeline stages over the hand-made shop: BM25 and its index cache, filters, sort, rerank, limit, dedupe."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pytest

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval import bm25_index
from eval_pipelines.core.retrieval.collections import (
    CollectionError,
    load_collection,
    write_collection,
)

from .conftest import COLUMNS, PRODUCTS, open_pipeline, product_rows

ROWS = {row[0]: dict(zip(COLUMNS, row, strict=True)) for row in PRODUCTS}
ORDER = [row[0] for row in PRODUCTS]


def search_ids(stages: list[dict[str, Any]], paths: DataPaths, query: dict[str, Any]) -> list[str]:
    execution = open_pipeline(paths, stages).search(query)
    assert execution.status == "completed", execution.error
    return execution.document_ids


def where(conditions: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"stage_id": "attribute_filter", "parameters": {"where": conditions}}]


def test_feature_search_ranks_matching_documents(paths: DataPaths) -> None:
    retriever = open_pipeline(
        paths, [{"stage_id": "feature_search", "parameters": {"fields": ["title"], "top_k": 5}}]
    )
    execution = retriever.search({"text": "Red Running Shoes"})
    assert execution.status == "completed"
    ids = execution.document_ids
    assert ids[0] == "p01"  # the only title with all three words
    assert len(ids) == 5
    scores = [d.score for d in execution.documents]
    assert scores == sorted(scores, reverse=True)
    assert all(score > 0 for score in scores)
    for document_id in ids:
        title = ROWS[document_id]["title"]
        assert any(word in title for word in ("red", "run", "shoe"))
    stats = execution.stages["feature_search"]
    assert (stats.input_count, stats.output_count, stats.efficiency) == (30, 5, 5 / 30)
    assert stats.metadata["query_tokens"] == 3
    # Stemming: "shoe" finds "shoes"; stopwords only: no tokens, no documents, no error.
    assert retriever.search({"text": "shoe"}).document_ids[:1] != []
    empty = retriever.search({"text": "the and of"})
    assert (empty.status, empty.document_ids) == ("completed", [])
    assert retriever.search({"text": ""}).document_ids == []
    assert retriever.search({"text": "zzzunknownword"}).document_ids == []


def test_feature_search_ties_follow_document_order(paths: DataPaths) -> None:
    retriever = open_pipeline(
        paths,
        [
            {
                "stage_id": "feature_search",
                "parameters": {"fields": ["taxonomy_node_id"], "top_k": 100},
            }
        ],
    )
    ids = retriever.search({"text": "jackets"}).document_ids
    assert ids == [d for d in ORDER if ROWS[d]["taxonomy_node_id"] == "jackets"]
    top_two = open_pipeline(
        paths,
        [
            {
                "stage_id": "feature_search",
                "parameters": {"fields": ["taxonomy_node_id"], "top_k": 2},
            }
        ],
        "top_two",
    ).search({"text": "jackets"})
    assert top_two.document_ids == ids[:2]


def test_bm25_index_is_cached_on_disk_and_reused(paths: DataPaths) -> None:
    stages = [{"stage_id": "feature_search", "parameters": {"fields": ["title", "description"]}}]
    first = open_pipeline(paths, stages).search({"text": "leather"})
    assert first.stages["feature_search"].metadata["index"] == "built"
    index_root = paths.collection_dir("products") / "bm25"
    [index_dir] = list(index_root.iterdir())
    assert (index_dir / "manifest.json").is_file()
    stamps = {p.name: p.stat().st_mtime_ns for p in index_dir.iterdir()}

    again = open_pipeline(paths, stages).search({"text": "leather"})
    assert again.stages["feature_search"].metadata["index"] == "memory"

    bm25_index.clear_memory_cache()
    loaded = open_pipeline(paths, stages).search({"text": "leather"})
    assert loaded.stages["feature_search"].metadata["index"] == "loaded"
    assert {p.name: p.stat().st_mtime_ns for p in index_dir.iterdir()} == stamps
    assert [(d.document_id, d.score) for d in loaded.documents] == [
        (d.document_id, d.score) for d in first.documents
    ]
    assert not [p for p in index_root.iterdir() if p.name.startswith(".")]

    other_k1 = [
        {
            "stage_id": "feature_search",
            "parameters": {"fields": ["title", "description"], "k1": 1.2},
        }
    ]
    assert (
        open_pipeline(paths, other_k1)
        .search({"text": "leather"})
        .stages["feature_search"]
        .metadata["index"]
        == "built"
    )
    assert len(list(index_root.iterdir())) == 2

    # New collection content: a new index, never the stale one.
    bm25_index.clear_memory_cache()
    rows = product_rows()
    rows[0]["title"] = "leather leather leather"
    write_collection(paths, "products", rows)
    rebuilt = open_pipeline(paths, stages).search({"text": "leather"})
    assert rebuilt.stages["feature_search"].metadata["index"] == "built"
    assert rebuilt.document_ids[0] == "p01"


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({"brand": "bolt"}, lambda r: r["brand"] == "bolt"),
        ({"brand": {"eq": "bolt"}}, lambda r: r["brand"] == "bolt"),
        ({"brand": {"ne": "acme"}}, lambda r: r["brand"] is not None and r["brand"] != "acme"),
        ({"brand": ["aquax", "zenfit"]}, lambda r: r["brand"] in ("aquax", "zenfit")),
        ({"brand": {"in": ["aquax"]}}, lambda r: r["brand"] == "aquax"),
        ({"brand": {"eq": None}}, lambda r: r["brand"] is None),
        ({"price": {"gt": 99}}, lambda r: r["price"] > 99),
        ({"price": {"gte": 99}}, lambda r: r["price"] >= 99),
        ({"price": {"lt": 25}}, lambda r: r["price"] < 25),
        ({"price": {"lte": 25}}, lambda r: r["price"] <= 25),
        ({"price": {"gte": 30, "lt": 50}}, lambda r: 30 <= r["price"] < 50),
        ({"price": 99}, lambda r: r["price"] == 99),
        ({"price": [12, 18.0, "20"]}, lambda r: r["price"] in (12, 18, 20)),
        ({"rating": {"gte": 4.5}}, lambda r: r["rating"] is not None and r["rating"] >= 4.5),
        ({"rating": {"ne": 4.0}}, lambda r: r["rating"] is not None and r["rating"] != 4.0),
        ({"title": {"gte": "s"}}, lambda r: r["title"] >= "s"),
        (
            {"taxonomy_node_id": "shoes", "price": {"lte": 60}},
            lambda r: r["taxonomy_node_id"] == "shoes" and r["price"] <= 60,
        ),
    ],
)
def test_attribute_filter_operators(
    paths: DataPaths, conditions: dict[str, Any], expected: Any
) -> None:
    want = [d for d in ORDER if expected(ROWS[d])]
    assert want, "each case must select something"
    assert search_ids(where(conditions), paths, {"text": "ignored"}) == want


def test_attribute_filter_from_query_with_allow_list(paths: DataPaths) -> None:
    retriever = open_pipeline(
        paths,
        [
            {"stage_id": "feature_search", "parameters": {"fields": ["title", "description"]}},
            {"stage_id": "attribute_filter", "parameters": {"fields": ["brand", "price"]}},
        ],
    )
    unfiltered = retriever.search({"text": "running"})
    execution = retriever.search(
        {"text": "running", "filters": {"price": {"lt": 60}, "colour": "red", "rating": 5}}
    )
    assert execution.status == "completed"
    assert execution.document_ids == [d for d in unfiltered.document_ids if ROWS[d]["price"] < 60]
    stats = execution.stages["attribute_filter"]
    assert stats.input_count == len(unfiltered.documents)
    assert stats.output_count == len(execution.documents)
    assert stats.metadata["applied_filters"] == ["price"]
    assert stats.metadata["ignored_filters"] == ["colour", "rating"]
    assert len(execution.warnings) == 2
    assert execution.to_detail()["warnings"] == execution.warnings


def test_bad_query_filter_fails_the_execution_not_the_caller(paths: DataPaths) -> None:
    retriever = open_pipeline(
        paths,
        [
            {"stage_id": "feature_search", "parameters": {"fields": ["title"]}, "name": "bm25"},
            {"stage_id": "attribute_filter", "name": "facets"},
            {"stage_id": "limit", "parameters": {"n": 3}},
        ],
    )
    for filters, fragment in (
        ({"price": {"between": [1, 2]}}, "unknown operator"),
        ({"price": "cheap"}, "expected a number"),
    ):
        execution = retriever.search(
            {"text": "shoes", "filters": filters}, execution_id="exec_fixed"
        )
        assert execution.status == "failed"
        assert execution.error_type == "stage_error"
        assert "'facets'" in execution.error and fragment in execution.error
        assert execution.execution_id == "exec_fixed"
        assert list(execution.stages) == ["bm25", "facets"]
        assert execution.stages["facets"].error == execution.error
        assert execution.documents == []
        detail = execution.to_detail()
        assert (detail["total_stages"], detail["stages_completed"]) == (3, 1)
    invalid = retriever.search({"text": 42})
    assert (invalid.status, invalid.error_type) == ("failed", "invalid_query")
    assert "query_input.text" in invalid.error


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sort_attribute_is_stable_with_nulls_last(paths: DataPaths, order: str) -> None:
    stages = [{"stage_id": "sort_attribute", "parameters": {"attribute": "rating", "order": order}}]
    ids = search_ids(stages, paths, {"text": ""})
    present = [d for d in ORDER if ROWS[d]["rating"] is not None]
    sign = 1 if order == "asc" else -1
    expected = sorted(present, key=lambda d: sign * ROWS[d]["rating"]) + [
        d for d in ORDER if ROWS[d]["rating"] is None
    ]
    assert ids == expected
    # Equal prices (59, 99) keep the order the previous stage gave them.
    by_price = search_ids(
        [
            {
                "stage_id": "sort_attribute",
                "parameters": {"attribute": "popularity", "order": "desc"},
            },
            {
                "stage_id": "sort_attribute",
                "name": "by_price",
                "parameters": {"attribute": "price", "order": order},
            },
        ],
        paths,
        {"text": ""},
    )
    by_popularity = sorted(ORDER, key=lambda d: -ROWS[d]["popularity"])
    assert by_price == sorted(by_popularity, key=lambda d: sign * ROWS[d]["price"])
    assert by_price.index("p06") < by_price.index("p05")  # both 99.0; p06 is more popular


def test_rerank_blend_hand_computed(paths: DataPaths) -> None:
    only_price = [
        *where({"document_id": ["p07", "p09", "p03"]}),
        {"stage_id": "rerank", "parameters": {"score_weight": 0.0, "weights": {"price": 1.0}}},
    ]
    execution = open_pipeline(paths, only_price).search({"text": ""})
    # prices 120 (p03), 25 (p07), 45 (p09): minmax -> 1, 0, 20/95
    assert [(d.document_id, round(d.score, 12)) for d in execution.documents] == [
        ("p03", 1.0),
        ("p09", round(20 / 95, 12)),
        ("p07", 0.0),
    ]

    search = {"stage_id": "feature_search", "parameters": {"fields": ["title", "description"]}}
    plain = open_pipeline(paths, [search], "plain").search({"text": "rain jacket"})
    blended = open_pipeline(
        paths,
        [
            search,
            {"stage_id": "rerank", "parameters": {"weights": {"popularity": 0.5, "rating": 0.2}}},
        ],
        "blended",
    ).search({"text": "rain jacket"})

    def minmax(values: list[float | None]) -> list[float]:
        known = [v for v in values if v is not None]
        low, high = min(known), max(known)
        return [0.0 if v is None or high == low else (v - low) / (high - low) for v in values]

    ids = plain.document_ids
    bm25 = minmax([d.score for d in plain.documents])
    popularity = minmax([ROWS[d]["popularity"] for d in ids])
    rating = minmax([ROWS[d]["rating"] for d in ids])
    expected = [
        1.0 * s + 0.5 * p + 0.2 * r for s, p, r in zip(bm25, popularity, rating, strict=True)
    ]
    order = sorted(range(len(ids)), key=lambda i: -expected[i])
    assert blended.document_ids == [ids[i] for i in order]
    for document, i in zip(blended.documents, order, strict=True):
        assert math.isclose(document.score, expected[i], rel_tol=1e-9, abs_tol=1e-12)


def test_limit_and_caller_limit(paths: DataPaths) -> None:
    retriever = open_pipeline(
        paths,
        [
            {"stage_id": "feature_search", "parameters": {"fields": ["title", "description"]}},
            {"stage_id": "limit", "parameters": {"n": 4}},
        ],
    )
    execution = retriever.search({"text": "running"})
    assert len(execution.documents) == 4
    stats = execution.stages["limit"]
    assert stats.output_count == 4 and stats.input_count > 4
    assert retriever.search({"text": "running"}, limit=2).document_ids == execution.document_ids[:2]
    with pytest.raises(ValueError, match="limit"):
        retriever.search({"text": "running"}, limit=-1)


def test_deduplicate_keeps_first_per_value(paths: DataPaths) -> None:
    stages = [
        {"stage_id": "sort_attribute", "parameters": {"attribute": "price", "order": "asc"}},
        {"stage_id": "deduplicate", "parameters": {"field": "brand"}},
    ]
    ids = search_ids(stages, paths, {"text": ""})
    by_price = sorted(ORDER, key=lambda d: ROWS[d]["price"])
    expected, seen = [], set()
    for d in by_price:
        brand = ROWS[d]["brand"]
        if brand is None or brand not in seen:
            expected.append(d)
            seen.add(brand)
    assert ids == expected
    assert "p16" in ids  # the product without a brand is kept
    by_id = search_ids([{"stage_id": "deduplicate"}], paths, {"text": ""})
    assert by_id == ORDER


def test_pipeline_search_many_keeps_order(paths: DataPaths) -> None:
    retriever = open_pipeline(
        paths, [{"stage_id": "feature_search", "parameters": {"fields": ["title"]}}]
    )
    queries = [{"text": "boots"}, {"text": "jacket"}, {"text": "hat"}]
    executions = retriever.search_many(queries)
    assert [e.query_input for e in executions] == queries
    assert [e.document_ids for e in executions] == [
        retriever.search(q).document_ids for q in queries
    ]
    assert len({e.execution_id for e in executions}) == 3
    assert all(e.execution_id.startswith("exec_") and len(e.execution_id) == 21 for e in executions)


def test_write_collection_rejects_broken_contracts(paths: DataPaths) -> None:
    rows = product_rows()
    cases = [
        ([{**rows[0], "document_id": None}, rows[1]], "null at row 0"),
        ([rows[0], {**rows[1], "document_id": "p01"}], "duplicated value(s), e.g. 'p01'"),
        ([{k: v for k, v in r.items() if k != "document_id"} for r in rows], "column missing"),
        ([{**r, "document_id": i} for i, r in enumerate(rows)], "expected strings"),
        ([{**rows[0], "tags": ["a", "b"]}], "tags: unsupported column type"),
        ([], "no documents"),
    ]
    for documents, fragment in cases:
        with pytest.raises(CollectionError, match="collection 'broken'") as info:
            write_collection(paths, "broken", documents)
        assert fragment in str(info.value)
    assert not paths.collection_dir("broken").exists() or not any(
        paths.collection_dir("broken").glob("*.parquet")
    )


def test_load_collection_caches_until_the_file_changes(paths: DataPaths) -> None:
    first = load_collection(paths, "products")
    assert load_collection(paths, "products") is first
    assert first.size == 30
    assert first.kinds["price"] == "numeric" and first.kinds["brand"] == "string"
    assert math.isnan(first.numeric("rating")[3])
    write_collection(paths, "products", pa.Table.from_pylist(product_rows()[:10]))
    second = load_collection(paths, "products")
    assert second is not first and second.size == 10
    with pytest.raises(CollectionError, match="does not exist"):
        load_collection(paths, "missing")
