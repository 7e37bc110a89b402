"""Query intents and their true relevance grades.

An intent is a concept (a taxonomy leaf) plus optional attribute constraints; its query text names the
concept with one of its synonyms. Grades come only from latent product attributes and latent quality,
never from any retriever, so they can judge retrievers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from eval_pipelines.core.demo.catalog import NO_FEATURE, CatalogArrays, percentile_within
from eval_pipelines.core.demo.vocabulary import COLORS, brand_names, leaves

CONSTRAINT_KINDS: tuple[str, ...] = ("color", "material", "feature", "brand")
UNCONSTRAINED = -1
ZIPF_EXPONENT = 0.85
# (percentile within the concept, grade points lost): below the median -1, bottom 15% -2.
QUALITY_PENALTIES: tuple[tuple[float, int], ...] = ((0.5, 1), (0.15, 2))

_CONSTRAINT_COUNT_WEIGHTS = np.array([0.22, 0.40, 0.28, 0.10])
_QUERY_SYNONYM_WEIGHTS = np.array([0.45, 0.35, 0.20])
_MAX_ATTEMPTS_PER_INTENT = 200


@dataclass(frozen=True)
class IntentArrays:
    """Intents as integer codes, in rank order (most frequent first)."""

    intent_id: np.ndarray
    query_text: np.ndarray
    leaf: np.ndarray
    color: np.ndarray
    material: np.ndarray
    feature: np.ndarray
    brand: np.ndarray
    frequency: np.ndarray

    def __len__(self) -> int:
        return len(self.intent_id)

    def constraints(self, i: int) -> dict[str, int]:
        values = {
            "color": self.color[i],
            "material": self.material[i],
            "feature": self.feature[i],
            "brand": self.brand[i],
        }
        return {k: int(v) for k, v in values.items() if v != UNCONSTRAINED}


def intents_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, 2])


def zipf_weights(n: int, exponent: float = ZIPF_EXPONENT) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1, dtype=float) ** exponent
    return weights / weights.sum()


def _query_text(leaf_index: int, synonym: int, values: dict[str, int], feature_first: bool) -> str:
    leaf = leaves()[leaf_index]
    words: list[str] = []
    if "brand" in values:
        words.append(brand_names()[values["brand"]].lower())
    if "color" in values:
        words.append(COLORS[values["color"]])
    if "material" in values:
        words.append(leaf.materials[values["material"]])
    if "feature" in values and feature_first:
        words.append(leaf.features[values["feature"]])
    words.append(leaf.synonyms[synonym])
    if "feature" in values and not feature_first:
        words.append(leaf.features[values["feature"]])
    return " ".join(words)


def generate_intents(seed: int, catalog: CatalogArrays, n_intents: int) -> IntentArrays:
    """Draw distinct intents anchored on real products (so every intent has a fully matching one)."""
    rng = intents_rng(seed)
    n_leaves = len(leaves())
    leaf_sizes = np.bincount(catalog.leaf, minlength=n_leaves).astype(float)
    leaf_weights = np.sqrt(leaf_sizes) * rng.uniform(0.5, 1.5, size=n_leaves)
    leaf_weights /= leaf_weights.sum()
    members = [np.flatnonzero(catalog.leaf == leaf) for leaf in range(n_leaves)]

    keys: set[tuple[int, ...]] = set()
    texts: set[str] = set()
    rows: list[tuple[int, int, int, int, int, str, int]] = []
    attempts = 0
    while len(rows) < n_intents:
        attempts += 1
        if attempts > _MAX_ATTEMPTS_PER_INTENT * n_intents:
            raise ValueError(
                f"intents: could only draw {len(rows)} distinct intents of {n_intents} requested;"
                " the catalog is too small for that many"
            )
        leaf = int(rng.choice(n_leaves, p=leaf_weights))
        anchor = int(rng.choice(members[leaf]))
        n_constraints = int(rng.choice(len(_CONSTRAINT_COUNT_WEIGHTS), p=_CONSTRAINT_COUNT_WEIGHTS))
        kinds = {CONSTRAINT_KINDS[k] for k in rng.choice(4, size=n_constraints, replace=False)}
        anchor_features = [catalog.feature_1[anchor], catalog.feature_2[anchor]]
        anchor_features = [f for f in anchor_features if f != NO_FEATURE]
        values = {
            "color": int(catalog.color[anchor]),
            "material": int(catalog.material[anchor]),
            "feature": int(anchor_features[rng.integers(len(anchor_features))]),
            "brand": int(catalog.brand[anchor]),
        }
        chosen = {k: v for k, v in values.items() if k in kinds}
        synonym = int(rng.choice(3, p=_QUERY_SYNONYM_WEIGHTS))
        text = _query_text(leaf, synonym, chosen, feature_first=bool(rng.random() < 0.75))
        key = (leaf, *(chosen.get(k, UNCONSTRAINED) for k in CONSTRAINT_KINDS))
        if key in keys or text in texts:
            continue
        keys.add(key)
        texts.add(text)
        rows.append((leaf, *key[1:], text, n_constraints))

    n_constraints = np.array([r[6] for r in rows], dtype=float)
    order = np.argsort(n_constraints + rng.normal(0.0, 1.0, size=len(rows)), kind="stable")
    rows = [rows[i] for i in order]
    width = max(5, len(str(n_intents)))
    return IntentArrays(
        intent_id=np.array([f"intent_{i:0{width}d}" for i in range(1, len(rows) + 1)], object),
        query_text=np.array([r[5] for r in rows], dtype=object),
        leaf=np.array([r[0] for r in rows], dtype=np.int64),
        color=np.array([r[1] for r in rows], dtype=np.int64),
        material=np.array([r[2] for r in rows], dtype=np.int64),
        feature=np.array([r[3] for r in rows], dtype=np.int64),
        brand=np.array([r[4] for r in rows], dtype=np.int64),
        frequency=zipf_weights(len(rows)),
    )


def quality_penalty(catalog: CatalogArrays) -> np.ndarray:
    """Grade points lost for poor latent quality, relative to the product's own concept."""
    percentile = percentile_within(catalog.leaf, catalog.quality)
    penalty = np.zeros(len(catalog), dtype=np.int64)
    for below, points in QUALITY_PENALTIES:
        penalty = np.maximum(penalty, np.where(percentile < below, points, 0))
    return penalty


def true_grades(
    intents: IntentArrays, i: int, catalog: CatalogArrays, penalty: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(product positions, grades 1..3) for intent i: 0 is implied for every other product.

    Concept match is required; 3 when every constraint holds, 2 when at least half do, else 1;
    minus the quality penalty, never below 1: a user fully satisfied needs a decent product too.
    """
    candidates = np.flatnonzero(catalog.leaf == intents.leaf[i])
    constraints = intents.constraints(i)
    matched = np.zeros(len(candidates), dtype=np.int64)
    for kind, value in constraints.items():
        if kind == "feature":
            hit = (catalog.feature_1[candidates] == value) | (
                catalog.feature_2[candidates] == value
            )
        else:
            hit = getattr(catalog, kind)[candidates] == value
        matched += hit
    wanted = len(constraints)
    grade = np.where(matched == wanted, 3, np.where(2 * matched >= wanted, 2, 1))
    return candidates, np.maximum(1, grade - penalty[candidates])


def grade_table(intents: IntentArrays, catalog: CatalogArrays) -> pa.Table:
    """Sparse true grades (grade >= 1 only), ordered by intent rank then product order."""
    penalty = quality_penalty(catalog)
    positions: list[np.ndarray] = []
    grades: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    for i in range(len(intents)):
        candidates, grade = true_grades(intents, i, catalog, penalty)
        positions.append(candidates)
        grades.append(grade)
        owners.append(np.full(len(candidates), i, dtype=np.int64))
    position = np.concatenate(positions)
    owner = np.concatenate(owners)
    return pa.table(
        {
            "intent_id": pa.DictionaryArray.from_arrays(
                pa.array(owner, pa.int32()), pa.array(intents.intent_id, pa.string())
            ).cast(pa.string()),
            "document_id": pa.array(catalog.document_id[position], pa.string()),
            "grade": pa.array(np.concatenate(grades), pa.int8()),
        }
    )


def _constraint_names(intents: IntentArrays) -> dict[str, list[str | None]]:
    all_leaves = leaves()
    brands = brand_names()
    names: dict[str, list[str | None]] = {kind: [] for kind in CONSTRAINT_KINDS}
    for i in range(len(intents)):
        leaf = all_leaves[intents.leaf[i]]
        values = intents.constraints(i)
        names["color"].append(COLORS[values["color"]] if "color" in values else None)
        names["material"].append(
            leaf.materials[values["material"]] if "material" in values else None
        )
        names["feature"].append(leaf.features[values["feature"]] if "feature" in values else None)
        names["brand"].append(brands[values["brand"]] if "brand" in values else None)
    return names


def intents_table(intents: IntentArrays, grades: pa.Table | None = None) -> pa.Table:
    """Intents with readable constraint values (null when unconstrained) and their frequency weight."""
    all_leaves = leaves()
    columns: dict[str, pa.Array] = {
        "intent_id": pa.array(intents.intent_id, pa.string()),
        "rank": pa.array(np.arange(1, len(intents) + 1), pa.int32()),
        "query_text": pa.array(intents.query_text, pa.string()),
        "taxonomy_node_id": pa.array([all_leaves[x].node_id for x in intents.leaf], pa.string()),
        "frequency": pa.array(intents.frequency, pa.float64()),
        "n_constraints": pa.array(
            [len(intents.constraints(i)) for i in range(len(intents))], pa.int8()
        ),
    }
    for kind, names in _constraint_names(intents).items():
        columns[kind] = pa.array(names, pa.string())
    if grades is not None:
        owner = np.searchsorted(intents.intent_id, grades.column("intent_id").to_numpy(False))
        grade = grades.column("grade").to_numpy()
        for level in (1, 2, 3):
            columns[f"n_grade_{level}"] = pa.array(
                np.bincount(owner[grade == level], minlength=len(intents)), pa.int32()
            )
    return pa.table(columns)
