"""Alignment metrics: every field on hand-computed sessions, and a brute-force reference on random data."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pytest

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.metrics.alignment import (
    COUNT_COLUMNS,
    CUTOFFS,
    DEFAULT_INTERACTION_WEIGHTS,
    counted_types,
    effective_weights,
    score_columns,
    score_sessions,
)

DEFAULTS = effective_weights(None)
COUNTED = counted_types(None, DEFAULTS)
LOG2_3 = math.log2(3)


def interactions_table(rows: Sequence[tuple[int, str, str, int]]) -> pa.Table:
    session, document, kind, position = zip(*rows, strict=True) if rows else ([], [], [], [])
    return pa.table(
        {
            "session_index": pa.array(session, pa.int64()),
            "document_id": pa.array(document, pa.string()),
            "interaction_type": pa.array(kind, pa.string()),
            "position": pa.array(position, pa.int32()),
        }
    )


def row(table: pa.Table, session: int) -> dict[str, float]:
    return {name: table.column(name)[session].as_py() for name in table.column_names}


def test_weights_defaults_overrides_and_extensions() -> None:
    assert effective_weights(None) == DEFAULT_INTERACTION_WEIGHTS
    custom = effective_weights({"Click ": 3, "view": 0.5, "bookmark": 0})
    assert custom == {
        "click": 3.0,
        "add_to_cart": 2.0,
        "bookmark": 0.0,
        "purchase": 5.0,
        "view": 0.5,
    }
    assert counted_types(None, custom) == {"click", "add_to_cart", "purchase", "view"}
    assert counted_types([], custom) == counted_types(None, custom)
    assert counted_types(["Purchase", "click"], custom) == {"purchase", "click"}


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"click": -1.0}, "must be finite and >= 0"),
        ({"click": float("nan")}, "must be finite and >= 0"),
        ({"click": "high"}, "is not a number"),
        ({"click": True}, "is not a number"),
        ({"click": 1.0, "CLICK": 2.0}, "names the same type"),
        ({"": 1.0}, "is not a non-empty string"),
    ],
)
def test_bad_request_weights_name_the_field(weights: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as caught:
        effective_weights(weights)
    assert "interaction_weights.weights" in str(caught.value)


def test_counted_types_need_positive_weights() -> None:
    with pytest.raises(InvalidInputError, match=r"\['view'\] have no positive weight"):
        counted_types(["click", "view"], DEFAULTS)
    with pytest.raises(InvalidInputError, match="no interaction type has a positive weight"):
        counted_types(None, {"click": 0.0})


def test_every_field_by_hand() -> None:
    rankings = [
        ["a", "b", "c", "d"],  # 0: promoted, demoted and absent documents, duplicate interactions
        ["x", "y"],  # 1: no purchase; "view" has no weight so x is not interacted
        [],  # 2: nothing replayed
        ["a"],  # 3: no interactions at all
        None,  # 4: None is an empty ranking
        ["q", "m", "p"],  # 5: ties in gain
        ["a", "a", "b"],  # 6: a document served twice counts once
    ]
    interactions = interactions_table(
        [
            (0, "a", "click", 2),
            (0, "b", "click", 0),
            (0, "b", "click", 0),
            (0, "b", "purchase", 0),
            (0, "e", "add_to_cart", 1),
            (1, "x", "view", 0),
            (1, "y", "click", 0),
            (2, "z", "click", 4),
            (4, "w", "bookmark", 0),
            (5, "p", "click", 0),
            (5, "q", "click", 1),
            (6, "a", "purchase", 3),
        ]
    )
    scores = score_sessions(rankings, interactions, DEFAULTS, COUNTED)
    assert scores.column_names == score_columns(CUTOFFS)
    assert scores.num_rows == len(rankings)

    ideal_0 = 5 + 2 / LOG2_3 + 1 / 2  # gains b=5, e=2, a=1
    dcg_0 = 1 + 5 / LOG2_3  # a at rank 1, b at rank 2, e absent (rank 101)
    assert row(scores, 0) == pytest.approx(
        {
            "ndcg_at_1": 1 / 5,
            "ndcg_at_5": dcg_0 / ideal_0,
            "ndcg_at_10": dcg_0 / ideal_0,
            "ndcg_at_20": dcg_0 / ideal_0,
            "recall_at_1": 1 / 3,
            "recall_at_5": 2 / 3,
            "recall_at_10": 2 / 3,
            "recall_at_20": 2 / 3,
            "interacted_count": 3,
            "clicked_count": 2,
            "clicked_rank_sum": 1 + 2,
            "purchased_count": 1,
            "purchased_rank_sum": 2,
            "position_delta_sum": (1 - 3) + (2 - 1) + (101 - 2),
            "promoted": 1,
            "demoted": 2,
        }
    )
    assert row(scores, 1) == pytest.approx(
        {
            "ndcg_at_1": 0.0,
            "ndcg_at_5": 1 / LOG2_3,
            "ndcg_at_10": 1 / LOG2_3,
            "ndcg_at_20": 1 / LOG2_3,
            "recall_at_1": 0.0,
            "recall_at_5": 1.0,
            "recall_at_10": 1.0,
            "recall_at_20": 1.0,
            "interacted_count": 1,
            "clicked_count": 1,
            "clicked_rank_sum": 2,
            "purchased_count": 0,
            "purchased_rank_sum": 0,
            "position_delta_sum": 2 - 1,
            "promoted": 0,
            "demoted": 1,
        }
    )
    nothing_found = {f"{m}_at_{k}": 0.0 for m in ("ndcg", "recall") for k in CUTOFFS}
    assert row(scores, 2) == {
        **nothing_found,
        "interacted_count": 1,
        "clicked_count": 1,
        "clicked_rank_sum": 101,
        "purchased_count": 0,
        "purchased_rank_sum": 0,
        "position_delta_sum": 101 - 5,
        "promoted": 0,
        "demoted": 1,
    }
    no_interactions = row(scores, 3)
    assert all(
        math.isnan(no_interactions[f"{m}_at_{k}"]) for m in ("ndcg", "recall") for k in CUTOFFS
    )
    assert all(no_interactions[name] == 0 for name in COUNT_COLUMNS)
    assert row(scores, 4) == {
        **nothing_found,
        "interacted_count": 1,
        "clicked_count": 0,
        "clicked_rank_sum": 0,
        "purchased_count": 0,
        "purchased_rank_sum": 0,
        "position_delta_sum": 101 - 1,
        "promoted": 0,
        "demoted": 1,
    }
    tie = row(scores, 5)
    assert tie["ndcg_at_1"] == 1.0
    assert tie["ndcg_at_5"] == pytest.approx((1 + 1 / 2) / (1 + 1 / LOG2_3))
    assert (tie["position_delta_sum"], tie["promoted"], tie["demoted"]) == ((1 - 2) + (3 - 1), 1, 1)
    duplicate = row(scores, 6)
    assert duplicate["ndcg_at_5"] == 1.0
    assert duplicate["recall_at_1"] == 1.0
    assert (duplicate["purchased_rank_sum"], duplicate["position_delta_sum"]) == (1, 1 - 4)


def test_documents_beyond_the_depth_rank_depth_plus_one() -> None:
    interactions = interactions_table([(0, "z", "click", 0), (0, "x", "click", 5)])
    scores = score_sessions([["x", "y", "z"]], interactions, DEFAULTS, COUNTED, depth=2)
    assert row(scores, 0) == pytest.approx(
        {
            "ndcg_at_1": 1.0,
            "ndcg_at_5": 1 / (1 + 1 / LOG2_3),
            "ndcg_at_10": 1 / (1 + 1 / LOG2_3),
            "ndcg_at_20": 1 / (1 + 1 / LOG2_3),
            "recall_at_1": 0.5,
            "recall_at_5": 0.5,
            "recall_at_10": 0.5,
            "recall_at_20": 0.5,
            "interacted_count": 2,
            "clicked_count": 2,
            "clicked_rank_sum": 1 + 3,
            "purchased_count": 0,
            "purchased_rank_sum": 0,
            "position_delta_sum": (1 - 6) + (3 - 1),
            "promoted": 1,
            "demoted": 1,
        }
    )


def test_custom_weights_override_the_defaults() -> None:
    weights = effective_weights({"click": 3.0, "view": 0.5})
    interactions = interactions_table(
        [(0, "a", "view", 0), (0, "b", "click", 1), (0, "c", "add_to_cart", 2)]
    )
    scores = score_sessions([["a", "b", "c"]], interactions, weights, counted_types(None, weights))
    dcg = 0.5 + 3 / LOG2_3 + 2 / 2
    ideal = 3 + 2 / LOG2_3 + 0.5 / 2
    assert row(scores, 0)["ndcg_at_1"] == pytest.approx(0.5 / 3)
    assert row(scores, 0)["ndcg_at_5"] == pytest.approx(dcg / ideal)
    assert row(scores, 0)["interacted_count"] == 3


def test_interaction_types_restrict_the_interacted_set_not_the_gain() -> None:
    interactions = interactions_table(
        [(0, "a", "click", 0), (0, "b", "click", 1), (0, "b", "purchase", 1)]
    )
    only_purchases = score_sessions(
        [["a", "b"]], interactions, DEFAULTS, counted_types(["purchase"], DEFAULTS)
    )
    assert row(only_purchases, 0) == pytest.approx(
        {
            "ndcg_at_1": 0.0,
            "ndcg_at_5": 1 / LOG2_3,
            "ndcg_at_10": 1 / LOG2_3,
            "ndcg_at_20": 1 / LOG2_3,
            "recall_at_1": 0.0,
            "recall_at_5": 1.0,
            "recall_at_10": 1.0,
            "recall_at_20": 1.0,
            "interacted_count": 1,
            "clicked_count": 2,
            "clicked_rank_sum": 1 + 2,
            "purchased_count": 1,
            "purchased_rank_sum": 2,
            "position_delta_sum": 0,
            "promoted": 0,
            "demoted": 0,
        }
    )
    only_clicks = score_sessions(
        [["a", "b"]], interactions, DEFAULTS, counted_types(["click"], DEFAULTS)
    )
    # b is in I through its click, and its gain is its largest weight: the purchase's 5.
    assert row(only_clicks, 0)["ndcg_at_5"] == pytest.approx((1 + 5 / LOG2_3) / (5 + 1 / LOG2_3))


def test_arrow_list_inputs_match_python_lists() -> None:
    rankings = [["a", "b"], None, ["c"], []]
    interactions = interactions_table(
        [(0, "b", "click", 0), (1, "a", "purchase", 0), (2, "c", "bookmark", 3)]
    )
    expected = score_sessions(rankings, interactions, DEFAULTS, COUNTED)
    as_arrow = pa.array(rankings, pa.list_(pa.string()))
    chunked = pa.chunked_array([as_arrow.slice(0, 1), as_arrow.slice(1)])
    large = pa.array(rankings, pa.large_list(pa.large_string()))
    for variant in (as_arrow, chunked, large, as_arrow.slice(0)):
        scores = score_sessions(variant, interactions, DEFAULTS, COUNTED)
        assert scores.schema == expected.schema
        for name in expected.column_names:
            np.testing.assert_array_equal(scores.column(name), expected.column(name), err_msg=name)
    sliced = score_sessions(
        as_arrow.slice(2), interactions_table([(0, "c", "click", 0)]), DEFAULTS, COUNTED
    )
    assert sliced.column("ndcg_at_1").to_pylist()[0] == 1.0


def test_no_interactions_at_all() -> None:
    scores = score_sessions([["a"], []], interactions_table([]), DEFAULTS, COUNTED)
    assert scores.num_rows == 2
    assert all(math.isnan(v) for v in scores.column("ndcg_at_10").to_pylist())
    assert scores.column("interacted_count").to_pylist() == [0, 0]
    untyped = pa.table(
        {
            name: pa.nulls(0)
            for name in ("session_index", "document_id", "interaction_type", "position")
        }
    )
    assert score_sessions([["a"]], untyped, DEFAULTS, COUNTED).column("promoted").to_pylist() == [0]


@pytest.mark.parametrize(
    ("rankings", "rows", "message"),
    [
        ([["a"]], [(1, "a", "click", 0)], r"session_index: row 0 is 1, outside 0\.\.0"),
        ([["a"]], [(0, "a", "click", -1)], r"position: row 0 is -1"),
        (
            [["a"], ["b", None]],
            [(0, "a", "click", 0)],
            r"rankings\[1\]: document id at position 1 is null",
        ),
        (["ab"], [(0, "a", "click", 0)], r"rankings\[0\]: is a string"),
    ],
)
def test_bad_input_names_the_row(rankings: list, rows: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        score_sessions(rankings, interactions_table(rows), DEFAULTS, COUNTED)


def test_bad_columns_and_parameters() -> None:
    table = interactions_table([(0, "a", "click", 0)])
    with pytest.raises(ValueError, match=r"missing columns \['position'\]"):
        score_sessions([["a"]], table.drop_columns(["position"]), DEFAULTS, COUNTED)
    nulls = table.set_column(1, "document_id", pa.array([None], pa.string()))
    with pytest.raises(ValueError, match="document_id: row 0 is null"):
        score_sessions([["a"]], nulls, DEFAULTS, COUNTED)
    with pytest.raises(ValueError, match="depth"):
        score_sessions([["a"]], table, DEFAULTS, COUNTED, depth=0)
    with pytest.raises(ValueError, match="repeats a cutoff"):
        score_sessions([["a"]], table, DEFAULTS, COUNTED, cutoffs=(5, 5))
    with pytest.raises(ValueError, match="no positive weight"):
        score_sessions([["a"]], table, DEFAULTS, {"view"})


def reference_scores(
    rankings: Sequence[Sequence[str] | None],
    rows: Sequence[tuple[int, str, str, int]],
    weights: Mapping[str, float],
    counted: Collection[str],
    depth: int,
    cutoffs: Sequence[int],
) -> dict[str, list[float]]:
    """The definitions, read literally, one session at a time."""
    columns: dict[str, list[float]] = {name: [] for name in score_columns(cutoffs)}
    for session, ranking in enumerate(rankings):
        served = list(ranking or [])[:depth]
        first_rank: dict[str, int] = {}
        for index, document in enumerate(served):
            first_rank.setdefault(document, index + 1)

        def rank(document: str, ranks: dict[str, int] = first_rank) -> int:
            return ranks.get(document, depth + 1)

        by_document: dict[str, list[tuple[str, int]]] = {}
        for row_session, document, kind, position in rows:
            if row_session == session:
                by_document.setdefault(document, []).append((kind, position))
        interacted = {d for d, its in by_document.items() if any(k in counted for k, _ in its)}
        gain = {d: max(weights.get(k, 0.0) for k, _ in by_document[d]) for d in interacted}
        logged_rank = {d: min(p for _, p in its) + 1 for d, its in by_document.items()}
        for k in cutoffs:
            if not interacted:
                columns[f"ndcg_at_{k}"].append(math.nan)
                columns[f"recall_at_{k}"].append(math.nan)
                continue
            dcg = sum(
                gain[d] / math.log2(i + 2)
                for i, d in enumerate(served[:k])
                if d in interacted and first_rank[d] == i + 1
            )
            ideal = sorted(gain.values(), reverse=True)[:k]
            idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
            columns[f"ndcg_at_{k}"].append(dcg / idcg)
            found = {d for d in served[:k] if d in interacted}
            columns[f"recall_at_{k}"].append(len(found) / len(interacted))
        clicked = [d for d, its in by_document.items() if any(k == "click" for k, _ in its)]
        purchased = [d for d, its in by_document.items() if any(k == "purchase" for k, _ in its)]
        deltas = [rank(d) - logged_rank[d] for d in interacted]
        columns["interacted_count"].append(len(interacted))
        columns["clicked_count"].append(len(clicked))
        columns["clicked_rank_sum"].append(sum(rank(d) for d in clicked))
        columns["purchased_count"].append(len(purchased))
        columns["purchased_rank_sum"].append(sum(rank(d) for d in purchased))
        columns["position_delta_sum"].append(sum(deltas))
        columns["promoted"].append(sum(delta < 0 for delta in deltas))
        columns["demoted"].append(sum(delta > 0 for delta in deltas))
    return columns


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_a_brute_force_reference_on_random_sessions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    catalog = [f"d{i:02d}" for i in range(25)]
    kinds = ["click", "purchase", "add_to_cart", "bookmark", "view", "share"]
    session_count = 150
    rankings: list[list[str] | None] = []
    for _ in range(session_count):
        if rng.random() < 0.05:
            rankings.append(None)
        else:
            rankings.append([catalog[i] for i in rng.integers(0, 25, rng.integers(0, 16))])
    rows = [
        (
            int(s),
            catalog[int(rng.integers(0, 25))],
            kinds[int(rng.integers(0, 6))],
            int(rng.integers(0, 20)),
        )
        for s in range(session_count)
        for _ in range(int(rng.integers(0, 6)))
    ]
    rows = [rows[i] for i in rng.permutation(len(rows))]
    weights = effective_weights({"view": 0.25, "add_to_cart": 2.5})
    cutoffs = (1, 3, 5, 10)
    for counted in (counted_types(None, weights), counted_types(["click", "view"], weights)):
        scores = score_sessions(
            rankings, interactions_table(rows), weights, counted, depth=8, cutoffs=cutoffs
        )
        expected = reference_scores(rankings, rows, weights, counted, 8, cutoffs)
        assert scores.column_names == list(expected)
        for name, values in expected.items():
            np.testing.assert_allclose(
                scores.column(name).to_numpy(),
                np.array(values, dtype=float),
                rtol=1e-12,
                err_msg=name,
            )
