"""The share of the logged top k a replayed ranking keeps, against hand-computed values and a plain
Python reference on random rankings."""

from __future__ import annotations

import numpy as np
import pytest

from eval_pipelines.core.metrics.agreement import top_k_overlap


def test_hand_computed_overlaps() -> None:
    rankings = [["a", "b", "c"], ["x", "y"], None, ["a", "a", "b"], [], ["p", "q"]]
    logged = [["c", "b", "z"], ["y"], ["a"], ["b", "a"], [], []]
    overlap = top_k_overlap(rankings, logged, k=2)
    # a,b vs c,b: b; x,y vs y: all of the 1 logged; failed replay; a (twice) vs b,a: a; an empty
    # replay keeps nothing; an empty logged list has nothing to keep.
    expected = [0.5, 1.0, np.nan, 0.5, np.nan, np.nan]
    np.testing.assert_array_equal(overlap, expected)
    assert top_k_overlap([[]], [["a"]], k=3)[0] == 0.0


def test_random_rankings_match_sets() -> None:
    rng = np.random.default_rng(5)
    catalog = [f"d{i}" for i in range(40)]
    rankings = [list(rng.choice(catalog, rng.integers(0, 15))) for _ in range(300)]
    logged = [list(rng.choice(catalog, rng.integers(1, 15), replace=False)) for _ in range(300)]
    got = top_k_overlap(rankings, logged, k=10)
    for row, (ranked, reference) in enumerate(zip(rankings, logged, strict=True)):
        shared = set(ranked[:10]) & set(reference[:10])
        assert got[row] == pytest.approx(len(shared) / min(10, len(reference)))


def test_bad_k_and_lengths() -> None:
    with pytest.raises(ValueError, match="k: 0"):
        top_k_overlap([["a"]], [["a"]], k=0)
    with pytest.raises(ValueError, match="1 rankings for 2"):
        top_k_overlap([["a"], ["b"]], [["a"]])


def test_overlap_matches_a_plain_reference_on_random_rankings_with_repeats() -> None:
    rng = np.random.default_rng(0)
    ranked = [[f"d{x}" for x in rng.integers(0, 30, rng.integers(0, 15))] for _ in range(500)]
    logged = [[f"d{x}" for x in rng.integers(0, 30, rng.integers(0, 15))] for _ in range(501)]
    found = top_k_overlap([*ranked, None], logged, 10)
    for row, (ranking, reference) in enumerate(zip([*ranked, None], logged, strict=True)):
        if ranking is None or not reference:
            assert np.isnan(found[row])
            continue
        shared = set(ranking[:10]) & set(reference[:10])
        assert found[row] == pytest.approx(len(shared) / min(10, len(reference)))
