"""Alignment metrics: how well a replayed ranking agrees with what users did in a logged session.

The definitions are the contract in ../shared/DESIGN.md ("Metric definitions"). For one session, r is
the replayed ranking cut at the replay depth N, and rank(d) is d's 1-based position in r, or N + 1
when d is absent. Choices this module makes where the contract is silent:
- gain(d) is the largest weight over all of d's interactions in the session, as the contract words
  it; the counted types only decide which documents belong to the interacted set I.
- Types without a weight weigh 0; every counted type must have a positive weight, so every document
  in I has a positive gain and ndcg is defined whenever I is not empty.
- A document served twice in one ranking counts at its first position; later copies earn nothing.
- Interaction types and weight keys are compared lower-cased and stripped, as the log contract
  stores types.
All sessions are scored at once over integer (session, document) codes; there is no per-session loop.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.arrow_text import string_array
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.metrics.rankings import RankingsInput, first_ranks, ranking_lists

DEFAULT_INTERACTION_WEIGHTS: dict[str, float] = {
    "click": 1.0,
    "add_to_cart": 2.0,
    "bookmark": 1.5,
    "purchase": 5.0,
}
CUTOFFS: tuple[int, ...] = (1, 5, 10, 20)
DEFAULT_DEPTH = 100
CLICK = "click"
PURCHASE = "purchase"
INTERACTION_COLUMNS: tuple[str, ...] = (
    "session_index",
    "document_id",
    "interaction_type",
    "position",
)
COUNT_COLUMNS: tuple[str, ...] = (
    "interacted_count",
    "clicked_count",
    "clicked_rank_sum",
    "purchased_count",
    "purchased_rank_sum",
    "position_delta_sum",
    "promoted",
    "demoted",
)


def ndcg_column(k: int) -> str:
    return f"ndcg_at_{k}"


def recall_column(k: int) -> str:
    return f"recall_at_{k}"


def score_columns(cutoffs: Sequence[int] = CUTOFFS) -> list[str]:
    """The columns of score_sessions' table, in order."""
    return (
        [ndcg_column(k) for k in cutoffs]
        + [recall_column(k) for k in cutoffs]
        + list(COUNT_COLUMNS)
    )


def normalized_type(interaction_type: object, field: str) -> str:
    """An interaction type as the log contract stores it (lower-cased, stripped), or a clear error."""
    if not isinstance(interaction_type, str) or not interaction_type.strip():
        raise InvalidInputError(
            f"{field}: interaction type {interaction_type!r} is not a non-empty string"
        )
    return interaction_type.strip().lower()


def effective_weights(request_weights: Mapping[str, float] | None) -> dict[str, float]:
    """The default weights, overridden and extended by the request's (weights are finite and >= 0)."""
    weights = dict(DEFAULT_INTERACTION_WEIGHTS)
    given: dict[str, str] = {}
    for raw_type, raw_weight in (request_weights or {}).items():
        field = f"interaction_weights.weights[{raw_type!r}]"
        interaction_type = normalized_type(raw_type, field)
        if interaction_type in given:
            raise InvalidInputError(
                f"{field}: names the same type as {given[interaction_type]!r} ({interaction_type!r})"
            )
        given[interaction_type] = raw_type
        if isinstance(raw_weight, bool) or not isinstance(raw_weight, int | float):
            raise InvalidInputError(f"{field}: weight {raw_weight!r} is not a number")
        if not math.isfinite(raw_weight) or raw_weight < 0:
            raise InvalidInputError(f"{field}: weight {raw_weight!r} must be finite and >= 0")
        weights[interaction_type] = float(raw_weight)
    return weights


def counted_types(
    interaction_types: Sequence[str] | None, weights: Mapping[str, float]
) -> frozenset[str]:
    """The types whose interactions put a document in I: the filter's types, else every type weighing > 0.

    An empty filter list means no filter. A filter type without a positive weight is an error rather
    than a document with gain 0, which would leave ndcg undefined.
    """
    if not interaction_types:
        counted = frozenset(t for t, w in weights.items() if w > 0)
        if not counted:
            raise InvalidInputError(
                "interaction_weights: no interaction type has a positive weight"
            )
        return counted
    counted = frozenset(
        normalized_type(t, "session_filter.interaction_types") for t in interaction_types
    )
    unweighted = sorted(t for t in counted if weights.get(t, 0.0) <= 0)
    if unweighted:
        raise InvalidInputError(
            f"session_filter.interaction_types: {unweighted} have no positive weight; give them one"
            " in interaction_weights.weights or leave them out"
        )
    return counted


@dataclass(frozen=True)
class _SessionDocuments:
    """One row per (session, interacted document), sorted by key = session * document_count + code."""

    document_ids: pa.Array
    key: np.ndarray
    session: np.ndarray
    gain: np.ndarray
    logged_rank: np.ndarray
    counted: np.ndarray
    clicked: np.ndarray
    purchased: np.ndarray


def score_sessions(
    rankings: RankingsInput,
    interactions: pa.Table,
    weights: Mapping[str, float],
    counted: Collection[str],
    depth: int = DEFAULT_DEPTH,
    cutoffs: Sequence[int] = CUTOFFS,
) -> pa.Table:
    """Per-session alignment scores of one pipeline's rankings; one row per session, in order.

    rankings: one replayed ranking per session (document ids, best first; [] or None for none), as
    Python lists or an Arrow list array. interactions: session_index (0..S-1), document_id,
    interaction_type, position (0-based logged position). ndcg/recall are NaN for a session without
    interacted documents; the caller excludes such sessions.
    """
    _check_depth_and_cutoffs(depth, cutoffs)
    weight_of = {normalized_type(t, "weights"): float(w) for t, w in weights.items()}
    counted_set = frozenset(normalized_type(t, "counted") for t in counted)
    unweighted = sorted(t for t in counted_set if weight_of.get(t, 0.0) <= 0)
    if unweighted:
        raise ValueError(f"counted types {unweighted} have no positive weight")
    lists = ranking_lists(rankings)
    session_count = len(lists)
    docs = _session_documents(interactions, session_count, weight_of, counted_set)
    rank = first_ranks(lists, docs.document_ids, docs.key, depth)

    def per_session(mask: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(
            docs.session[mask],
            weights=None if values is None else values[mask],
            minlength=session_count,
        )

    interacted = docs.counted
    interacted_count = per_session(interacted)
    has_interactions = interacted_count > 0
    discounted_gain = docs.gain / np.log2(rank + 1.0)
    ideal_session, ideal_rank, ideal_discounted_gain = _ideal_order(docs, interacted)
    columns: dict[str, np.ndarray] = {}
    recalls: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in cutoffs:
            in_top_k = interacted & (rank <= min(k, depth))
            dcg = per_session(in_top_k, discounted_gain)
            ideal_top_k = ideal_rank <= k
            idcg = np.bincount(
                ideal_session[ideal_top_k],
                weights=ideal_discounted_gain[ideal_top_k],
                minlength=session_count,
            )
            columns[ndcg_column(k)] = np.where(has_interactions, dcg / idcg, np.nan)
            recalls[recall_column(k)] = np.where(
                has_interactions, per_session(in_top_k) / interacted_count, np.nan
            )
    columns.update(recalls)
    position_delta = rank - docs.logged_rank
    columns["interacted_count"] = interacted_count
    columns["clicked_count"] = per_session(docs.clicked)
    columns["clicked_rank_sum"] = _integral(per_session(docs.clicked, rank))
    columns["purchased_count"] = per_session(docs.purchased)
    columns["purchased_rank_sum"] = _integral(per_session(docs.purchased, rank))
    columns["position_delta_sum"] = _integral(per_session(interacted, position_delta))
    columns["promoted"] = per_session(interacted & (position_delta < 0))
    columns["demoted"] = per_session(interacted & (position_delta > 0))
    return pa.table(
        {
            name: pa.array(
                values, type=pa.float64() if name.startswith(("ndcg", "recall")) else pa.int64()
            )
            for name, values in columns.items()
        }
    )


def _integral(values: np.ndarray) -> np.ndarray:
    return np.rint(values).astype(np.int64)


def _check_depth_and_cutoffs(depth: int, cutoffs: Sequence[int]) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth: {depth!r} is not a positive integer")
    if not cutoffs:
        raise ValueError("cutoffs: at least one cutoff is needed")
    for k in cutoffs:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"cutoffs: {k!r} is not a positive integer")
    if len(set(cutoffs)) != len(cutoffs):
        raise ValueError(f"cutoffs: {list(cutoffs)} repeats a cutoff")


def _string_column(table: pa.Table, name: str) -> pa.Array:
    return string_array(table.column(name), f"interactions.{name}", nullable=False)


def _integer_column(table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name).combine_chunks()
    if pa.types.is_null(column.type):
        column = column.cast(pa.int64())
    if not pa.types.is_integer(column.type):
        raise ValueError(f"interactions.{name}: type {column.type} is not an integer column")
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise ValueError(f"interactions.{name}: row {row} is null")
    return column.to_numpy().astype(np.int64, copy=False)


def _session_documents(
    interactions: pa.Table,
    session_count: int,
    weights: Mapping[str, float],
    counted: frozenset[str],
) -> _SessionDocuments:
    missing = [c for c in INTERACTION_COLUMNS if c not in interactions.column_names]
    if missing:
        raise ValueError(f"interactions: missing columns {missing}")
    session = _integer_column(interactions, "session_index")
    out_of_range = np.flatnonzero((session < 0) | (session >= session_count))
    if out_of_range.size:
        row = int(out_of_range[0])
        raise ValueError(
            f"interactions.session_index: row {row} is {int(session[row])},"
            f" outside 0..{session_count - 1} (one ranking per session)"
        )
    position = _integer_column(interactions, "position")
    negative = np.flatnonzero(position < 0)
    if negative.size:
        row = int(negative[0])
        raise ValueError(f"interactions.position: row {row} is {int(position[row])} (0-based)")
    documents = pc.dictionary_encode(_string_column(interactions, "document_id"))
    types = pc.dictionary_encode(_string_column(interactions, "interaction_type"))
    type_names = [
        normalized_type(t, "interactions.interaction_type") for t in types.dictionary.to_pylist()
    ]
    type_codes = types.indices.to_numpy().astype(np.int64, copy=False)
    weight = np.array([weights.get(t, 0.0) for t in type_names], dtype=np.float64)[type_codes]
    is_counted = np.array([t in counted for t in type_names], dtype=bool)[type_codes]
    is_click = np.array([t == CLICK for t in type_names], dtype=bool)[type_codes]
    is_purchase = np.array([t == PURCHASE for t in type_names], dtype=bool)[type_codes]

    document_count = len(documents.dictionary)
    key = session * document_count + documents.indices.to_numpy().astype(np.int64, copy=False)
    if key.size == 0:
        return _SessionDocuments(
            document_ids=documents.dictionary,
            key=key,
            session=key,
            gain=weight,
            logged_rank=position,
            counted=is_counted,
            clicked=is_click,
            purchased=is_purchase,
        )
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    pair_key = sorted_key[starts]
    return _SessionDocuments(
        document_ids=documents.dictionary,
        key=pair_key,
        session=pair_key // document_count,
        gain=np.maximum.reduceat(weight[order], starts),
        logged_rank=np.minimum.reduceat(position[order], starts) + 1,
        counted=np.logical_or.reduceat(is_counted[order], starts),
        clicked=np.logical_or.reduceat(is_click[order], starts),
        purchased=np.logical_or.reduceat(is_purchase[order], starts),
    )


def _ideal_order(
    docs: _SessionDocuments, interacted: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sessions, ideal 1-based ranks and discounted gains of I sorted by gain, best first, per session."""
    session = docs.session[interacted]
    gain = docs.gain[interacted]
    order = np.lexsort((-gain, session))
    session = session[order]
    gain = gain[order]
    per_session = np.bincount(session, minlength=int(session.max(initial=-1)) + 1)
    starts = np.cumsum(per_session) - per_session
    ideal_rank = np.arange(session.size, dtype=np.int64) - starts[session] + 1
    return session, ideal_rank, gain / np.log2(ideal_rank + 1.0)
