"""The simulated catalog: public product fields for retrievers, latent truth for grading.

Every product has latent attributes (concept, color, material, features, brand, quality). Titles mention
only some of them and one synonym of the concept; descriptions mention all of them with another synonym.
Quality is never published: `rating` is a noisy view of it, `popularity` mostly ignores it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eval_pipelines.core.demo.vocabulary import (
    COLORS,
    GENERIC_PHRASES,
    SERIES_WORDS,
    TIER_WORDS,
    brand_names,
    leaves,
    taxonomy,
)
from eval_pipelines.core.paths import DataPaths

COLLECTION = "products"
TRUTH_FILE = "catalog_truth.parquet"
NO_FEATURE = -1

_SYNONYM_WEIGHTS = np.array([0.55, 0.30, 0.15])
_COLOR_WEIGHTS = np.array([16, 14, 12, 8, 9, 7, 6, 7, 8, 5, 4, 4], dtype=float)
_BRAND_WEIGHTS = np.array([0.28, 0.22, 0.17, 0.14, 0.11, 0.08])
_MATERIAL_DECAY = 0.7
_TITLE_MENTION = {"brand": 0.5, "series": 0.6, "color": 0.75, "material": 0.6, "feature": 0.5}
_TIER_PROBABILITY = 0.35
_SECOND_FEATURE_PROBABILITY = 0.4
# Keyword-stuffed titles ("Sofa Couch Settee red grey black ...") mostly come from poor products:
# BM25 loves them, users do not.
_STUFFER_QUALITY_PERCENTILE = 0.3
_STUFFING_IF_LOW = 0.6
_STUFFING_OTHERWISE = 0.04


@dataclass(frozen=True)
class CatalogArrays:
    """Latent attributes as integer codes, indexed by product position (the collection's row order)."""

    document_id: np.ndarray
    leaf: np.ndarray
    brand: np.ndarray
    color: np.ndarray
    material: np.ndarray
    feature_1: np.ndarray
    feature_2: np.ndarray
    quality: np.ndarray

    def __len__(self) -> int:
        return len(self.document_id)


def catalog_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, 1])


def percentile_within(group: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Each value's rank within its group, scaled to [0, 1)."""
    order = np.lexsort((value, group))
    sorted_group = group[order]
    group_start = np.searchsorted(sorted_group, sorted_group, side="left")
    group_size = np.bincount(group)[sorted_group]
    percentile = np.empty(len(value))
    percentile[order] = (np.arange(len(value)) - group_start) / group_size
    return percentile


def _stuffed_title(
    synonyms: tuple[str, ...],
    first: int,
    colors: list[str],
    materials: list[str],
    features: list[str],
) -> str:
    """A keyword-stuffed title: every synonym, several colors, materials and features."""
    names = [synonyms[first], *(s for j, s in enumerate(synonyms) if j != first)]
    return " ".join(
        [
            *names,
            synonyms[first],
            "-",
            *dict.fromkeys(colors),
            *dict.fromkeys(materials),
            *dict.fromkeys(features),
            TIER_WORDS[0],
        ]
    )


def generate_catalog(seed: int, n_products: int) -> tuple[pa.Table, pa.Table]:
    """Return (public products table, latent truth table); both in the same row order."""
    if n_products < len(leaves()):
        raise ValueError(f"products: {n_products} is fewer than the {len(leaves())} leaves")
    rng = catalog_rng(seed)
    all_leaves = leaves()
    parents = taxonomy()
    parent_index = {p.node_id: i for i, p in enumerate(parents)}
    leaf_parent = np.array([parent_index[leaf.parent_id] for leaf in all_leaves])
    brands = brand_names()
    brand_code = {b: i for i, b in enumerate(brands)}
    brand_effect = rng.normal(0.0, 0.5, size=len(brands))

    leaf_share = rng.dirichlet(np.full(len(all_leaves), 12.0))
    leaf = np.sort(rng.choice(len(all_leaves), size=n_products, p=leaf_share))
    leaf[: len(all_leaves)] = np.arange(len(all_leaves))
    leaf = rng.permutation(leaf)
    parent = leaf_parent[leaf]

    brand_slot = rng.choice(len(_BRAND_WEIGHTS), size=n_products, p=_BRAND_WEIGHTS)
    parent_brand_codes = np.array([[brand_code[b] for b in p.brands] for p in parents])
    brand = parent_brand_codes[parent, brand_slot]
    color = rng.choice(len(COLORS), size=n_products, p=_COLOR_WEIGHTS / _COLOR_WEIGHTS.sum())
    n_materials = np.array([len(lf.materials) for lf in all_leaves])[leaf]
    material = np.minimum(
        rng.geometric(1.0 - _MATERIAL_DECAY, size=n_products) - 1, n_materials - 1
    )
    n_features = np.array([len(all_leaves[i].features) for i in range(len(all_leaves))])[leaf]
    feature_1 = rng.integers(0, n_features)
    has_second = rng.random(n_products) < _SECOND_FEATURE_PROBABILITY
    feature_2 = np.where(
        has_second, (feature_1 + rng.integers(1, n_features)) % n_features, NO_FEATURE
    )
    quality = brand_effect[brand] + rng.normal(0.0, 0.85, size=n_products)

    quality_percentile = percentile_within(leaf, quality)
    stuffed = rng.random(n_products) < np.where(
        quality_percentile < _STUFFER_QUALITY_PERCENTILE, _STUFFING_IF_LOW, _STUFFING_OTHERWISE
    )
    stuffing_colors = rng.integers(0, len(COLORS), size=(n_products, 2))
    stuffing_features = rng.integers(0, n_features[:, None], size=(n_products, 2))
    stuffing_material = rng.integers(0, n_materials)

    title_synonym = rng.choice(3, size=n_products, p=_SYNONYM_WEIGHTS)
    description_synonym = (title_synonym + rng.integers(1, 3, size=n_products)) % 3
    mentions = {k: rng.random(n_products) < p for k, p in _TITLE_MENTION.items()}
    series = rng.integers(0, len(SERIES_WORDS), size=n_products)
    tier = np.where(
        rng.random(n_products) < _TIER_PROBABILITY,
        rng.integers(0, len(TIER_WORDS), size=n_products),
        -1,
    )
    setting = rng.integers(0, 4, size=n_products)
    generic = rng.integers(0, len(GENERIC_PHRASES), size=n_products)

    leaf_base_price = np.exp(rng.uniform(np.log(15.0), np.log(900.0), size=len(all_leaves)))
    price = np.round(
        leaf_base_price[leaf] * np.exp(0.2 * quality + rng.normal(0.0, 0.35, size=n_products)), 2
    )
    popularity = np.floor(
        np.exp(rng.normal(3.0, 1.3, size=n_products) - 0.15 * np.log(price))
    ).astype(np.int64)
    rating = np.clip(
        np.round(3.7 + 0.55 * quality + rng.normal(0.0, 0.35, size=n_products), 1), 1.0, 5.0
    )
    review_count = rng.poisson(1.0 + 4.0 * np.sqrt(popularity.astype(float)))

    titles: list[str] = []
    descriptions: list[str] = []
    brand_of = [brands[b] for b in brand]
    for i in range(n_products):
        leaf_def = all_leaves[leaf[i]]
        color_word = COLORS[color[i]]
        material_word = leaf_def.materials[material[i]]
        feature_words = [leaf_def.features[feature_1[i]]]
        if feature_2[i] != NO_FEATURE:
            feature_words.append(leaf_def.features[feature_2[i]])
        if stuffed[i]:
            title = _stuffed_title(
                leaf_def.synonyms,
                title_synonym[i],
                [color_word, *(COLORS[c] for c in stuffing_colors[i])],
                [material_word, leaf_def.materials[stuffing_material[i]]],
                [leaf_def.features[f] for f in stuffing_features[i]],
            )
        else:
            words = []
            if mentions["brand"][i]:
                words.append(brand_of[i])
            if mentions["series"][i]:
                words.append(SERIES_WORDS[series[i]].capitalize())
            if mentions["color"][i]:
                words.append(color_word)
            if mentions["material"][i]:
                words.append(material_word)
            words.append(leaf_def.synonyms[title_synonym[i]])
            if mentions["feature"][i]:
                words[-1] += ","
                words.append(feature_words[0])
            if tier[i] >= 0:
                words.append(TIER_WORDS[tier[i]].capitalize())
            title = " ".join(words)
        titles.append(title[0].upper() + title[1:])
        other_name = leaf_def.synonyms[description_synonym[i]]
        descriptions.append(
            f"A {color_word} {material_word} {other_name} by {brand_of[i]}. "
            f"Features: {', '.join(feature_words)}. "
            f"Ideal for {parents[parent[i]].settings[setting[i]]}; {GENERIC_PHRASES[generic[i]]}."
        )

    document_id = np.array([f"prod_{i:06d}" for i in range(1, n_products + 1)], dtype=object)
    leaf_ids = np.array([lf.node_id for lf in all_leaves], dtype=object)[leaf]
    material_words = [all_leaves[leaf[i]].materials[material[i]] for i in range(n_products)]
    products = pa.table(
        {
            "document_id": pa.array(document_id, pa.string()),
            "title": pa.array(titles, pa.string()),
            "description": pa.array(descriptions, pa.string()),
            "brand": pa.array(brand_of, pa.string()),
            "taxonomy_node_id": pa.array(leaf_ids, pa.string()),
            "color": pa.array([COLORS[c] for c in color], pa.string()),
            "material": pa.array(material_words, pa.string()),
            "price": pa.array(price, pa.float64()),
            "popularity": pa.array(popularity, pa.int64()),
            "rating": pa.array(rating, pa.float64()),
            "review_count": pa.array(review_count, pa.int64()),
        }
    )
    truth = pa.table(
        {
            "document_id": pa.array(document_id, pa.string()),
            "leaf": pa.array(leaf, pa.int16()),
            "brand": pa.array(brand, pa.int16()),
            "color": pa.array(color, pa.int16()),
            "material": pa.array(material, pa.int16()),
            "feature_1": pa.array(feature_1, pa.int16()),
            "feature_2": pa.array(feature_2, pa.int16()),
            "quality": pa.array(quality, pa.float64()),
        },
        metadata={"demo_seed": str(seed)},
    )
    return products, truth


def read_catalog_truth(paths: DataPaths) -> CatalogArrays:
    """The latent attributes build_catalog wrote; later steps grade and simulate from these."""
    file = paths.demo_dir / TRUTH_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file}: missing; build the demo catalog first")
    table = pq.read_table(str(file))
    columns = {name: table.column(name).to_numpy() for name in table.column_names}
    return CatalogArrays(
        document_id=np.asarray(table.column("document_id").to_pylist(), dtype=object),
        **{
            name: columns[name].astype(np.float64 if name == "quality" else np.int64)
            for name in (
                "leaf",
                "brand",
                "color",
                "material",
                "feature_1",
                "feature_2",
                "quality",
            )
        },
    )
