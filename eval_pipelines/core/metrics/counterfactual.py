"""Counterfactual session metrics: what users would have done with a ranking, not how much it copies
the logged page.

For session s and document d, the gain estimate is
- where s's user was shown d: the largest counted weight among the user's interactions with d,
  divided by the examination propensity of the position d was served at (inverse propensity
  weighting; the propensity clipped below, the clipped weights counted);
- otherwise, what every user of the same query did with d over the whole logs: gain per unit of
  examination (gain_sum / exposure, the position-based click model's relevance);
- nothing, when nobody was ever shown d for the query: it counts 0 and is reported as uncovered, and
  an optimistic variant scores it as the query's best document (by what all its users did), so no
  verdict rests on it.
NDCG@k is DCG@k over these gains divided by the sample's mean ideal DCG@k, not the session's own: the
mean is a ratio of sums (self-normalized), so a rare click's weight does not cancel within its
session. Recall@k does the same with interaction indicators in place of gains; the mean rank of
what users interacted with weighs each interacted document by its inverse propensity.
With normalize="session" and no query evidence or propensities, the gains are the logged order's.
A session's own documents and its query's evidence are kept apart (a query's evidence once, not
once per session), so scoring a pipeline only looks up the documents of its top ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.metrics.rankings import (
    RankingsInput,
    first_ranks,
    ranking_lists,
)

COVERAGE_CUTOFF = 10
UNSEEN_DISCOUNT = f"unseen_discount_at_{COVERAGE_CUTOFF}"
EVIDENCE_COLUMNS: tuple[str, ...] = (
    "query_key",
    "document_id",
    "exposure",
    "gain_sum",
    "interacted_sessions",
)


@dataclass(frozen=True)
class Propensities:
    """Examination propensity by 0-based position relative to the top, clipped below at `clip`."""

    relative: np.ndarray
    clip: float

    def __post_init__(self) -> None:
        if not 0 < self.clip <= 1:
            raise ValueError(f"clip: {self.clip!r} must lie in (0, 1]")
        if self.relative.size == 0 or not np.all(np.isfinite(self.relative)):
            raise ValueError("propensities: need at least one finite value per position")

    def at(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(clipped propensity, whether it was clipped) at 0-based positions; deeper positions than
        fitted take the deepest fitted value."""
        raw = self.relative[np.minimum(positions, self.relative.size - 1)]
        return np.maximum(raw, self.clip), raw < self.clip


@dataclass(frozen=True)
class SessionGains:
    """What every session's documents are worth: its own (keyed session * n + document code,
    sorted) and its query's (keyed query * n + document code, sorted), and per-session totals."""

    session_count: int
    document_ids: pa.Array
    shown_key: np.ndarray
    shown_gain: np.ndarray
    shown_interacted: np.ndarray
    acted_ids: pa.Array  # the interacted documents, coded apart so ranking them stays cheap
    acted_key: np.ndarray  # session * len(acted_ids) + code, sorted
    acted_weight: np.ndarray  # each one's inverse propensity
    session_query: np.ndarray  # the session's query code, -1 without query evidence
    evidence_key: np.ndarray
    evidence_gain: np.ndarray
    evidence_interacted: np.ndarray
    ideal_dcg: dict[int, np.ndarray]
    mass: np.ndarray
    rank_weight: np.ndarray
    best_gain: np.ndarray  # the best query-level gain (in-session, without query evidence)
    normalize: Literal["sample", "session"]
    clipped: np.ndarray  # per session: interacted documents whose propensity was clipped

    @property
    def codes(self) -> int:
        return max(len(self.document_ids), 1)

    @property
    def scorable(self) -> np.ndarray:
        """Sessions with any evidence of relevance: without it every ranking scores alike."""
        return self.mass > 0

    def normalizer(self, per_session: np.ndarray) -> np.ndarray:
        """What a session's sum is divided by: its own ideal, or the sample's mean ideal."""
        if self.normalize == "session":
            return per_session
        scorable = self.scorable
        mean = per_session[scorable].mean() if scorable.any() else 0.0
        return np.full(self.session_count, mean)

    def values(
        self, session: np.ndarray, code: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(gain, interacted, shown to the session's user, seen by anyone) of (session, document)
        pairs; a code of -1 (a document the logs never named) has neither."""
        n = self.codes
        shown, slot = _lookup(self.shown_key, session * n + code)
        query = self.session_query[session]
        evidence, other = _lookup(self.evidence_key, query * n + code)
        evidence &= query >= 0
        shown &= code >= 0
        evidence &= code >= 0
        gain = np.where(
            shown,
            _at(self.shown_gain, slot),
            np.where(evidence, _at(self.evidence_gain, other), 0.0),
        )
        interacted = np.where(
            shown,
            _at(self.shown_interacted, slot),
            np.where(evidence, _at(self.evidence_interacted, other), 0.0),
        )
        return gain, interacted, shown, shown | evidence

    def summary(self) -> dict[str, float | int]:
        return {
            "documents_weighted": int(self.acted_key.size),
            "weights_clipped": int(self.clipped.sum()),
            "scorable_sessions": int(self.scorable.sum()),
        }


def _lookup(keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(found, slot) of each wanted key in sorted keys."""
    if keys.size == 0:
        return np.zeros(wanted.size, dtype=bool), np.zeros(wanted.size, dtype=np.int64)
    slot = np.minimum(np.searchsorted(keys, wanted), keys.size - 1)
    return keys[slot] == wanted, slot


def _at(values: np.ndarray, slot: np.ndarray) -> np.ndarray:
    return values[slot] if values.size else np.zeros(slot.size)


def session_gains(
    logged_documents: RankingsInput,
    interactions: pa.Table,
    weights: Mapping[str, float],
    counted: Collection[str],
    cutoffs: Sequence[int],
    *,
    propensities: Propensities | None = None,
    session_queries: pa.Array | None = None,
    evidence: pa.Table | None = None,
    normalize: Literal["sample", "session"] = "sample",
) -> SessionGains:
    """The gain of every document with evidence in every session (see the module docstring).

    interactions: session_index, document_id, interaction_type (lower-case), position (0-based).
    evidence (with session_queries, one normalized query text per session): EVIDENCE_COLUMNS."""
    served = ranking_lists(logged_documents)
    session_count = len(served)
    served_session = pc.list_parent_indices(served).to_numpy().astype(np.int64)
    served_flat = pc.list_flatten(served)
    lengths = pc.fill_null(pc.list_value_length(served), 0).to_numpy().astype(np.int64)
    served_position = np.arange(len(served_flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    types = pc.utf8_lower(interactions.column("interaction_type").combine_chunks())
    weight_of = pa.array([float(weights.get(t, 0.0)) for t in types.to_pylist()], pa.float64())
    is_counted = pc.is_in(types, value_set=pa.array(sorted(counted), pa.string()))
    kept = interactions.filter(is_counted)
    kept_weight = weight_of.filter(is_counted).to_numpy()
    with_evidence = evidence is not None and session_queries is not None

    others = [kept.column("document_id").combine_chunks()]
    if with_evidence:
        others.append(evidence.column("document_id").combine_chunks())
    served_codes, dictionary = _encoded(served_flat.cast(pa.string()), others)
    n = max(len(dictionary), 1)

    def codes(values: pa.Array) -> np.ndarray:
        return pc.index_in(values, value_set=dictionary).to_numpy().astype(np.int64)

    shown_key, shown_position = _first_per_key(served_session * n + served_codes, served_position)
    acted = _acted_pairs(kept, kept_weight, codes, n)
    key, position = shown_key, shown_position  # the served position wins
    unserved = ~_lookup(shown_key, acted.key)[0]  # an interaction off the served list
    if unserved.any():
        key = np.concatenate([shown_key, acted.key[unserved]])
        position = np.concatenate([shown_position, acted.position[unserved]])
        order = np.argsort(key, kind="stable")
        key, position = key[order], position[order]
    acted_slot = np.searchsorted(key, acted.key)
    gain = np.zeros(key.size)
    gain[acted_slot] = acted.gain
    interacted = (gain > 0).astype(np.float64)
    clipped = np.zeros(session_count, dtype=np.int64)
    if propensities is not None:
        propensity, was_clipped = propensities.at(position)
        gain, interacted = gain / propensity, interacted / propensity
        clipped = np.bincount(
            key[was_clipped & (interacted > 0)] // n, minlength=session_count
        ).astype(np.int64)
    acted_weight = interacted[acted_slot]
    acted_ids, acted_key, by_small = acted.recoded(dictionary, n)
    session = key // n
    best_gain = _per_session_max(session, gain, session_count)
    query = QueryEvidence.empty(session_count)
    if with_evidence:
        query = QueryEvidence.of(evidence, session_queries, codes, n)
        best_gain = query.best_gain
    kmax = max(cutoffs)
    candidates = query.ideal_candidates(session, key, gain, interacted, kmax, n)
    return SessionGains(
        session_count=session_count,
        document_ids=dictionary,
        shown_key=key,
        shown_gain=gain,
        shown_interacted=interacted,
        acted_ids=acted_ids,
        acted_key=acted_key,
        acted_weight=acted_weight[by_small],
        session_query=query.session_query,
        evidence_key=query.key,
        evidence_gain=query.gain,
        evidence_interacted=query.interacted,
        ideal_dcg=_ideal_dcg(candidates[0], candidates[1], cutoffs, session_count),
        mass=candidates[2],
        rank_weight=np.bincount(acted.key // n, acted_weight, session_count),
        best_gain=best_gain,
        normalize=normalize,
        clipped=clipped,
    )


@dataclass(frozen=True)
class _ActedPairs:
    """Each (session, interacted document) once: its largest weight and first logged position."""

    key: np.ndarray
    gain: np.ndarray
    position: np.ndarray
    ids: pa.Array

    def recoded(self, dictionary: pa.Array, n: int) -> tuple[pa.Array, np.ndarray, np.ndarray]:
        """(ids, keys over those ids only, the order that sorts them): ranking the few interacted
        documents then hashes a small set, not every document named."""
        small = pc.index_in(dictionary.take(pa.array(self.key % n)), value_set=self.ids)
        key = (self.key // n) * max(len(self.ids), 1) + small.to_numpy().astype(np.int64)
        order = np.argsort(key, kind="stable")
        return self.ids, key[order], order


def _acted_pairs(
    kept: pa.Table, weight: np.ndarray, codes: Callable[[pa.Array], np.ndarray], n: int
) -> _ActedPairs:
    documents = kept.column("document_id").combine_chunks()
    raw = kept.column("session_index").to_numpy().astype(np.int64) * n + codes(documents)
    order = np.argsort(raw, kind="stable")
    key, starts = np.unique(raw[order], return_index=True)
    positions = kept.column("position").to_numpy().astype(np.int64)[order]
    return _ActedPairs(
        key=key,
        gain=np.maximum.reduceat(weight[order], starts) if key.size else weight,
        position=np.minimum.reduceat(positions, starts) if key.size else positions,
        ids=pc.unique(documents.cast(pa.string())),
    )


@dataclass(frozen=True)
class QueryEvidence:
    """Query-level gains keyed query * n + document code (sorted), and each session's query."""

    session_query: np.ndarray
    key: np.ndarray
    gain: np.ndarray
    interacted: np.ndarray
    best_gain: np.ndarray

    @classmethod
    def empty(cls, session_count: int) -> QueryEvidence:
        none = np.zeros(0)
        return cls(np.full(session_count, -1, np.int64), none.astype(np.int64), none, none, none)

    @classmethod
    def of(
        cls,
        evidence: pa.Table,
        session_queries: pa.Array,
        codes: Callable[[pa.Array], np.ndarray],
        n: int,
    ) -> QueryEvidence:
        missing = [c for c in EVIDENCE_COLUMNS if c not in evidence.column_names]
        if missing:
            raise ValueError(f"evidence: missing columns {missing}")
        exposure = evidence.column("exposure").to_numpy().astype(np.float64)
        usable = np.flatnonzero(exposure > 0)
        queries = pc.unique(evidence.column("query_key").combine_chunks())
        query = pc.index_in(evidence.column("query_key"), value_set=queries).to_numpy()[usable]
        session_query = pc.fill_null(pc.index_in(session_queries, value_set=queries), -1)
        document = codes(evidence.column("document_id").combine_chunks())[usable]
        gain = evidence.column("gain_sum").to_numpy().astype(np.float64)[usable] / exposure[usable]
        rate = evidence.column("interacted_sessions").to_numpy().astype(np.float64)[usable]
        key = query.astype(np.int64) * n + document
        order = np.argsort(key, kind="stable")
        best = np.zeros(len(queries))
        np.maximum.at(best, query, gain)
        session_query = session_query.to_numpy().astype(np.int64)
        best_gain = np.where(session_query >= 0, best[np.maximum(session_query, 0)], 0.0)
        return cls(
            session_query, key[order], gain[order], (rate / exposure[usable])[order], best_gain
        )

    def ideal_candidates(
        self,
        session: np.ndarray,
        key: np.ndarray,
        gain: np.ndarray,
        interacted: np.ndarray,
        kmax: int,
        n: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(session, gain) of the documents that can make a session's ideal top kmax (its own,
        and its query's best that it was not shown), and each session's total interaction mass."""
        count = self.session_query.size
        mass = np.bincount(session, interacted, count)
        if self.key.size == 0:
            return session[gain > 0], gain[gain > 0], mass
        query_of_key = self.key // n
        queries = max(int(query_of_key.max()), int(self.session_query.max())) + 1
        per_query = np.bincount(query_of_key, minlength=queries)
        query_starts = np.cumsum(per_query) - per_query
        query_mass = np.bincount(query_of_key, self.interacted, per_query.size)
        by_gain = np.lexsort((-self.gain, query_of_key))  # each query's entries, best first
        positive = np.bincount(query_of_key[self.gain > 0], minlength=queries)
        has = np.flatnonzero(self.session_query >= 0)
        q = self.session_query[has]
        own = np.bincount(session, minlength=count)[has]
        take = np.minimum(positive[q], kmax + own)  # a gain of 0 adds nothing to an ideal
        rows = np.repeat(query_starts[q], take) + _offsets(take)
        owner = np.repeat(has, take)
        entry = by_gain[rows]
        document = self.key[entry] - query_of_key[entry] * n
        fresh = ~_lookup(key, owner * n + document)[0]
        # The session's own evidence replaces the query's for the documents it was shown.
        shown_in_query, slot = _lookup(self.key, self.session_query[session] * n + key % n)
        shown_in_query &= self.session_query[session] >= 0
        mass = mass + np.where(
            self.session_query >= 0, query_mass[np.maximum(self.session_query, 0)], 0
        )
        mass -= np.bincount(
            session[shown_in_query], _at(self.interacted, slot)[shown_in_query], count
        )
        useful = gain > 0
        return (
            np.concatenate([session[useful], owner[fresh]]),
            np.concatenate([gain[useful], self.gain[entry][fresh]]),
            np.maximum(mass, 0.0),
        )


def _offsets(lengths: np.ndarray) -> np.ndarray:
    return np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def _encoded(served: pa.Array, others: list[pa.Array]) -> tuple[np.ndarray, pa.Array]:
    """The served documents' codes and a dictionary of every document named anywhere, hashing the
    (long) served list once."""
    encoded = pc.dictionary_encode(served)
    dictionary = encoded.dictionary
    rest = pa.concat_arrays([o.cast(pa.string()) for o in others]) if others else None
    if rest is not None and len(rest):
        new = pc.unique(rest.filter(pc.invert(pc.is_in(rest, value_set=dictionary))))
        dictionary = pa.concat_arrays([dictionary, new])
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), dictionary


def _first_per_key(keys: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each distinct key (sorted) and its smallest position, with one sort."""
    if keys.size == 0:
        return keys, positions
    width = int(positions.max()) + 1
    combined = np.sort(keys * width + positions)
    ordered = combined // width
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    return ordered[first], combined[first] % width


def _per_session_max(session: np.ndarray, values: np.ndarray, session_count: int) -> np.ndarray:
    best = np.zeros(session_count)
    np.maximum.at(best, session, values)
    return best


def _ideal_dcg(
    session: np.ndarray, gain: np.ndarray, cutoffs: Sequence[int], session_count: int
) -> dict[int, np.ndarray]:
    order = np.lexsort((-gain, session))
    ordered_session = session[order]
    per_session = np.bincount(ordered_session, minlength=session_count)
    starts = np.cumsum(per_session) - per_session
    rank = np.arange(order.size) - starts[ordered_session] + 1
    discounted = gain[order] / np.log2(rank + 1.0)
    return {
        k: np.bincount(
            ordered_session[rank <= k], weights=discounted[rank <= k], minlength=session_count
        )
        for k in cutoffs
    }


def counterfactual_scores(
    rankings: RankingsInput, gains: SessionGains, depth: int, cutoffs: Sequence[int]
) -> dict[str, np.ndarray]:
    """Per session: ndcg_at_k, recall_at_k (NaN where nothing has evidence), rank_sum (each
    interacted document's rank times its inverse propensity, absent = depth + 1), and the top-10
    coverage: shown_at_10 (share the session's user was shown), seen_at_10 (share with any
    evidence), unseen_at_10 and unseen_discount_at_10 (the discounts the unseen entries sit at,
    for if_unseen_best)."""
    lists = ranking_lists(rankings, gains.session_count)
    count = gains.session_count
    head = pc.list_slice(lists, 0, min(max(*cutoffs, COVERAGE_CUTOFF), depth))
    session = pc.list_parent_indices(head).to_numpy().astype(np.int64)
    lengths = pc.fill_null(pc.list_value_length(head), 0).to_numpy().astype(np.int64)
    position = _offsets(lengths)
    code = pc.fill_null(pc.index_in(pc.list_flatten(head), value_set=gains.document_ids), -1)
    code = code.to_numpy().astype(np.int64)
    first = _first_occurrences(session * gains.codes + code, position, code >= 0)
    gain, interacted, shown, seen = gains.values(session, code)
    gain, interacted = gain * first, interacted * first
    discount = 1.0 / np.log2(position + 2.0)
    scorable = gains.scorable
    mass_normalizer = gains.normalizer(gains.mass)
    columns: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in cutoffs:
            top = position < min(k, depth)
            dcg = np.bincount(session[top], (gain * discount)[top], count)
            columns[f"ndcg_at_{k}"] = np.where(
                scorable, dcg / gains.normalizer(gains.ideal_dcg[k]), np.nan
            )
            found = np.bincount(session[top], interacted[top], count)
            columns[f"recall_at_{k}"] = np.where(scorable, found / mass_normalizer, np.nan)
        acted_rank = first_ranks(lists, gains.acted_ids, gains.acted_key, depth)
        columns["rank_sum"] = np.bincount(
            gains.acted_key // max(len(gains.acted_ids), 1), gains.acted_weight * acted_rank, count
        ).astype(np.float64)
        top = position < COVERAGE_CUTOFF
        entries = np.bincount(session[top], minlength=count).astype(np.float64)
        unseen = top & ~seen
        columns[f"shown_at_{COVERAGE_CUTOFF}"] = (
            np.bincount(session[top & shown], minlength=count) / entries
        )
        columns[f"seen_at_{COVERAGE_CUTOFF}"] = (
            np.bincount(session[top & seen], minlength=count) / entries
        )
        columns[f"unseen_at_{COVERAGE_CUTOFF}"] = np.bincount(session[unseen], minlength=count)
        columns[UNSEEN_DISCOUNT] = np.bincount(session[unseen], discount[unseen], count)
    return columns


def if_unseen_best(
    ndcg_at_10: np.ndarray, unseen_discount: np.ndarray, gains: SessionGains
) -> np.ndarray:
    """NDCG@10 again with each unseen document of the top 10 given the best gain of its session
    under `gains` (its query's best, with query evidence): the most they could add."""
    normalizer = gains.normalizer(gains.ideal_dcg[COVERAGE_CUTOFF])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            gains.scorable, ndcg_at_10 + unseen_discount * gains.best_gain / normalizer, np.nan
        )


def _first_occurrences(key: np.ndarray, position: np.ndarray, known: np.ndarray) -> np.ndarray:
    """1.0 where an entry is its document's first in its ranking, else 0.0 (a repeat earns nothing)."""
    order = np.lexsort((position, key))
    ordered = key[order]
    first = np.ones(key.size)
    repeat = np.r_[False, ordered[1:] == ordered[:-1]] if key.size else np.zeros(0, dtype=bool)
    first[order[repeat]] = 0.0
    return np.where(known, first, 1.0)
