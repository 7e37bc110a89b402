"""The demo world's pure parts: taxonomy and words, catalog, intents and true grades, click model."""

from collections import Counter

import numpy as np
import pytest

from eval_pipelines.core.demo.catalog import NO_FEATURE, CatalogArrays, generate_catalog
from eval_pipelines.core.demo.intents import (
    UNCONSTRAINED,
    IntentArrays,
    generate_intents,
    grade_table,
    quality_penalty,
    true_grades,
)
from eval_pipelines.core.demo.users import NOT_SERVED, ClickModel, simulate_interactions
from eval_pipelines.core.demo.vocabulary import COLORS, TIER_WORDS, leaves, taxonomy

SEED = 7


def catalog_arrays(truth) -> CatalogArrays:
    columns = {n: truth.column(n).to_numpy() for n in truth.column_names if n != "document_id"}
    return CatalogArrays(
        document_id=np.array(truth.column("document_id").to_pylist(), dtype=object),
        **{
            name: values.astype(np.float64 if name == "quality" else np.int64)
            for name, values in columns.items()
        },
    )


@pytest.fixture(scope="module")
def full_catalog():
    return generate_catalog(SEED, 20_000)


def test_taxonomy_has_enough_leaves_under_enough_parents() -> None:
    parents = taxonomy()
    assert len(parents) >= 5
    assert len(leaves()) >= 20
    assert all(len(p.leaves) >= 3 for p in parents)
    assert len({leaf.node_id for leaf in leaves()}) == len(leaves())
    assert all(len(leaf.synonyms) == 3 and len(set(leaf.synonyms)) == 3 for leaf in leaves())


def test_words_are_shared_across_categories_like_in_a_real_shop() -> None:
    def parents_using(word: str) -> set[str]:
        return {
            leaf.parent_id
            for leaf in leaves()
            if any(word in phrase.split() for phrase in leaf.synonyms + leaf.features)
        }

    assert {"electronics", "bags"} <= parents_using("case")
    assert len(parents_using("portable")) >= 4
    assert len(parents_using("set")) >= 4
    assert "pro" in TIER_WORDS and "set" in TIER_WORDS
    sofa = next(leaf for leaf in leaves() if "sofa" in leaf.synonyms)
    assert "couch" in sofa.synonyms


def test_full_catalog_counts_and_public_fields(full_catalog) -> None:
    products, truth = full_catalog
    assert products.num_rows == truth.num_rows == 20_000
    assert products.column("document_id").to_pylist() == truth.column("document_id").to_pylist()
    assert {
        "document_id",
        "title",
        "description",
        "brand",
        "taxonomy_node_id",
        "price",
        "popularity",
        "rating",
    } <= set(products.column_names)
    assert "quality" not in products.column_names
    per_leaf = Counter(products.column("taxonomy_node_id").to_pylist())
    assert len(per_leaf) == len(leaves()) >= 20
    assert min(per_leaf.values()) >= 100
    ratings = products.column("rating").to_numpy()
    assert ratings.min() >= 1.0 and ratings.max() <= 5.0


def test_titles_and_descriptions_use_different_synonyms(full_catalog) -> None:
    products, _ = full_catalog
    rows = products.select(["title", "description", "taxonomy_node_id"]).to_pylist()
    sofa = next(leaf for leaf in leaves() if "sofa" in leaf.synonyms)
    sofas = [r for r in rows if r["taxonomy_node_id"] == sofa.node_id]
    couch_titles = [r for r in sofas if "couch" in r["title"].lower().split()]
    sofa_titles = [r for r in sofas if "sofa" in r["title"].lower().split()]
    assert couch_titles and sofa_titles
    assert any(
        "sofa" in r["description"].split() and "sofa" not in r["title"].lower().split()
        for r in couch_titles
    )
    cases = {r["taxonomy_node_id"].split("-")[0] for r in rows if "case" in r["title"].split()}
    assert {"electronics", "bags"} <= cases


def test_quality_is_hidden_behind_a_noisy_rating_and_popularity_ignores_it(full_catalog) -> None:
    products, truth = full_catalog
    quality = truth.column("quality").to_numpy()
    rating = products.column("rating").to_numpy()
    popularity = np.log1p(products.column("popularity").to_numpy())
    assert 0.6 < np.corrcoef(quality, rating)[0, 1] < 0.95
    assert abs(np.corrcoef(quality, popularity)[0, 1]) < 0.1


def handmade_catalog() -> tuple[CatalogArrays, IntentArrays]:
    """Eight sofas of known color/material/quality rank and one red fabric armchair."""
    red, grey = COLORS.index("red"), COLORS.index("grey")
    fabric, leather = 1, 0
    color = [red, red, grey, red, red, red, red, grey, red]
    material = [fabric, leather, leather, fabric, fabric, fabric, leather, leather, fabric]
    quality_rank = [7, 6, 5, 4, 3, 0, 1, 2, 9]
    catalog = CatalogArrays(
        document_id=np.array([f"d{i}" for i in range(9)], dtype=object),
        leaf=np.array([0] * 8 + [1]),
        brand=np.zeros(9, dtype=np.int64),
        color=np.array(color),
        material=np.array(material),
        feature_1=np.zeros(9, dtype=np.int64),
        feature_2=np.full(9, NO_FEATURE),
        quality=np.array(quality_rank, dtype=float),
    )
    intents = IntentArrays(
        intent_id=np.array(["intent_00001"], dtype=object),
        query_text=np.array(["red fabric sofa"], dtype=object),
        leaf=np.array([0]),
        color=np.array([red]),
        material=np.array([fabric]),
        feature=np.array([UNCONSTRAINED]),
        brand=np.array([UNCONSTRAINED]),
        frequency=np.array([1.0]),
    )
    return catalog, intents


def test_grades_follow_concept_constraints_and_latent_quality() -> None:
    catalog, intents = handmade_catalog()
    positions, grades = true_grades(intents, 0, catalog, quality_penalty(catalog))
    by_document = dict(zip(catalog.document_id[positions], grades.tolist(), strict=True))
    assert by_document == {
        "d0": 3,  # red fabric, best quality
        "d1": 2,  # one of two constraints
        "d2": 1,  # right concept, no constraint
        "d3": 3,  # red fabric, upper half
        "d4": 2,  # red fabric, lower half of quality: -1
        "d5": 1,  # red fabric, bottom 15%: -2
        "d6": 1,  # one constraint, bottom 15%: never below 1
        "d7": 1,  # no constraint, lower half: never below 1
    }
    assert "d8" not in by_document  # another concept: grade 0, not stored


def test_grades_come_only_from_the_latent_truth(full_catalog) -> None:
    _, truth = full_catalog
    catalog = catalog_arrays(truth)
    intents = generate_intents(SEED, catalog, 300)
    grades = grade_table(intents, catalog)
    again = grade_table(intents, catalog)
    assert grades.equals(again)
    leaf_of_document = dict(zip(catalog.document_id, catalog.leaf, strict=True))
    leaf_of_intent = dict(zip(intents.intent_id, intents.leaf, strict=True))
    owners = grades.column("intent_id").to_pylist()
    documents = grades.column("document_id").to_pylist()
    values = grades.column("grade").to_pylist()
    assert all(
        leaf_of_document[d] == leaf_of_intent[i] for i, d in zip(owners, documents, strict=True)
    )
    counts = Counter(grades.column("grade").to_pylist())
    assert set(counts) == {1, 2, 3}
    assert counts[3] < counts[2] < counts[1]
    best = {i for i, g in zip(owners, values, strict=True) if g == 3}
    assert len(best) >= 0.9 * len(intents)


def test_intents_are_distinct_zipf_distributed_and_sometimes_use_a_rarer_synonym(
    full_catalog,
) -> None:
    _, truth = full_catalog
    catalog = catalog_arrays(truth)
    intents = generate_intents(SEED, catalog, 2_400)
    assert len(intents) == 2_400
    assert len(set(intents.query_text)) == 2_400
    assert np.all(np.diff(intents.frequency) <= 0)
    assert intents.frequency.sum() == pytest.approx(1.0)
    ranks = np.arange(1, 2_401)
    slope = np.polyfit(np.log(ranks), np.log(intents.frequency), 1)[0]
    assert -1.2 < slope < -0.6
    all_leaves = leaves()
    uses_rarer_synonym = [
        any(s in text for s in all_leaves[leaf].synonyms[1:])
        for text, leaf in zip(intents.query_text, intents.leaf, strict=True)
    ]
    assert 0.3 < np.mean(uses_rarer_synonym) < 0.8
    constrained = [len(intents.constraints(i)) for i in range(len(intents))]
    assert set(constrained) == {0, 1, 2, 3}


def test_click_through_rate_falls_with_rank() -> None:
    grades = np.full((100_000, 24), 3)
    simulated = simulate_interactions(np.random.default_rng(1), grades)
    clicks = simulated.position[simulated.type_code == 0]
    ctr_by_row = np.bincount(clicks // 4, minlength=6) / (100_000 * 4)
    assert np.all(np.diff(ctr_by_row) < 0), ctr_by_row
    assert ctr_by_row[0] > 2 * ctr_by_row[-1]


def test_better_grades_are_clicked_bought_more_and_unserved_slots_never() -> None:
    rng = np.random.default_rng(2)
    grades = rng.integers(0, 4, size=(50_000, 24))
    grades[:, 20:] = NOT_SERVED
    simulated = simulate_interactions(np.random.default_rng(3), grades)
    assert simulated.position.max() < 20
    interacted_grade = grades[simulated.execution, simulated.position]
    served = np.bincount(grades[grades != NOT_SERVED], minlength=4)
    for type_code in range(3):
        rate = np.bincount(interacted_grade[simulated.type_code == type_code], minlength=4) / served
        assert np.all(np.diff(rate) > 0), (type_code, rate)
    events = set(zip(simulated.execution, simulated.position, simulated.type_code, strict=True))
    for execution, position, type_code in events:
        if type_code > 0:
            assert (execution, position, type_code - 1) in events


def test_click_model_rejects_grades_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"0\.\.3"):
        simulate_interactions(np.random.default_rng(0), np.array([[4, 1]]))
    with pytest.raises(ValueError, match="2-d"):
        simulate_interactions(np.random.default_rng(0), np.array([1, 2]))


def test_examination_is_by_grid_row() -> None:
    examination = ClickModel().examination(12)
    assert examination[0] == examination[3] > examination[4] == examination[7] > examination[8]
