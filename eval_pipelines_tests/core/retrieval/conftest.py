"""A small hand-made shop (30 products) in a temporary data directory, and retriever-file helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.collections import load_collection, write_collection
from eval_pipelines.core.retrieval.pipeline import PipelineRetriever
from eval_pipelines.core.retrieval.registry import load_retriever_config

# document_id, title, description, brand, taxonomy_node_id, price, popularity, rating
PRODUCTS: list[tuple[Any, ...]] = [
    (
        "p01",
        "red running shoes",
        "lightweight shoes for road running",
        "acme",
        "shoes",
        59.0,
        0.9,
        4.5,
    ),
    ("p02", "blue running shoes", "cushioned running shoes", "acme", "shoes", 65.0, 0.7, 4.1),
    ("p03", "red leather boots", "waterproof leather boots", "bolt", "shoes", 120.0, 0.4, 4.8),
    ("p04", "trail running shoes", "grip for trail running", "corex", "shoes", 89.0, 0.6, None),
    ("p05", "green rain jacket", "light waterproof jacket", "dryco", "jackets", 99.0, 0.5, 3.9),
    ("p06", "red rain jacket", "packable rain jacket", "dryco", "jackets", 99.0, 0.8, 4.2),
    ("p07", "wool winter hat", "warm wool hat", "knitly", "hats", 25.0, 0.3, 4.0),
    ("p08", "red wool scarf", "soft red scarf", "knitly", "scarves", 30.0, 0.2, 4.4),
    ("p09", "leather wallet", "slim leather wallet", "bolt", "accessories", 45.0, 0.6, 4.6),
    ("p10", "running socks", "breathable socks for running", "acme", "socks", 12.0, 0.9, 4.3),
    ("p11", "hiking boots", "sturdy boots for hiking", "corex", "shoes", 140.0, 0.5, 4.7),
    ("p12", "yoga mat", "non slip yoga mat", "zenfit", "fitness", 35.0, 0.4, 4.1),
    ("p13", "water bottle", "insulated steel bottle", "zenfit", "fitness", 20.0, 0.7, 4.5),
    ("p14", "blue denim jacket", "classic denim jacket", "jeanco", "jackets", 79.0, 0.6, 4.0),
    ("p15", "black running tights", "tights for cold running", "acme", "apparel", 49.0, 0.5, 3.8),
    ("p16", "sun hat", "wide brim sun hat", None, "hats", 28.0, 0.2, 3.5),
    ("p17", "canvas sneakers", "casual canvas shoes", "jeanco", "shoes", 55.0, 0.8, 4.2),
    ("p18", "leather belt", "brown leather belt", "bolt", "accessories", 40.0, 0.3, 4.4),
    ("p19", "rain boots", "rubber boots for rain", "dryco", "shoes", 59.0, 0.4, 3.9),
    ("p20", "fleece jacket", "warm fleece jacket", "corex", "jackets", 69.0, 0.7, 4.6),
    ("p21", "running cap", "light cap for running", "acme", "hats", 22.0, 0.5, 4.0),
    ("p22", "gym bag", "duffel bag for the gym", "zenfit", "bags", 45.0, 0.4, 4.2),
    ("p23", "leather backpack", "leather backpack for work", "bolt", "bags", 150.0, 0.3, 4.9),
    ("p24", "swim goggles", "anti fog swim goggles", "aquax", "swim", 18.0, 0.6, 4.1),
    ("p25", "red swim shorts", "quick dry swim shorts", "aquax", "swim", 30.0, 0.5, None),
    (
        "p26",
        "thermal gloves",
        "touchscreen thermal gloves",
        "knitly",
        "accessories",
        27.0,
        0.4,
        4.3,
    ),
    ("p27", "cycling helmet", "vented cycling helmet", "corex", "cycling", 110.0, 0.5, 4.7),
    ("p28", "cycling jersey", "breathable cycling jersey", "corex", "cycling", 60.0, 0.3, 4.0),
    ("p29", "blue rain jacket", "breathable rain jacket", "dryco", "jackets", 105.0, 0.6, 4.4),
    ("p30", "kids running shoes", "running shoes for kids", "acme", "shoes", 39.0, 0.8, 4.6),
]
COLUMNS = (
    "document_id",
    "title",
    "description",
    "brand",
    "taxonomy_node_id",
    "price",
    "popularity",
    "rating",
)


def product_rows() -> list[dict[str, Any]]:
    return [dict(zip(COLUMNS, row, strict=True)) for row in PRODUCTS]


@pytest.fixture
def paths(tmp_path: Path) -> DataPaths:
    data = DataPaths(tmp_path / "data")
    write_collection(data, "products", product_rows())
    return data


def write_retriever(
    paths: DataPaths, config: dict[str, Any] | str, file_stem: str | None = None
) -> Path:
    """Write a retriever file (a mapping is dumped as YAML; a string is written verbatim)."""
    stem = file_stem or (config["id"] if isinstance(config, dict) else "retriever")
    path = paths.retrievers_dir / f"{stem}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def pipeline_config(retriever_id: str, stages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": retriever_id, "kind": "pipeline", "collection": "products", "stages": stages}


def open_pipeline(
    paths: DataPaths, stages: list[dict[str, Any]], retriever_id: str = "test_pipeline"
) -> PipelineRetriever:
    config = load_retriever_config(
        write_retriever(paths, pipeline_config(retriever_id, stages)), paths
    )
    return PipelineRetriever(config, load_collection(paths, "products"))
