"""Measure names as trec_eval prints them, plus our own F1_k, F2_k, recip_rank_cut_k (MRR@k), set_F2
and judged_k (ir_measures' Judged@k: the share of the top k that has any judgment; trec_eval has none).

A cut family (P, recall, F1, F2, map_cut, ndcg_cut, recip_rank_cut) is named `family_k`; an uncut
measure by its trec_eval name alone. Requests may name a whole family (expanded at the caller's
cutoffs) or use trec_eval's `-m family.k1,k2` form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eval_pipelines.core.errors import InvalidInputError

CUT_FAMILIES: tuple[str, ...] = ("P", "recall", "F1", "F2", "map_cut", "ndcg_cut", "recip_rank_cut")
UNCUT_MEASURES: tuple[str, ...] = (
    "map",
    "ndcg",
    "recip_rank",
    "set_P",
    "set_recall",
    "set_F",
    "set_F2",
    "num_ret",
    "num_rel",
    "num_rel_ret",
)
# Named on request only: not part of "every measure", so trec_eval's default output is unchanged.
JUDGED = "judged"
NAMED_CUT_FAMILIES: tuple[str, ...] = (*CUT_FAMILIES, JUDGED)
COUNT_MEASURES: frozenset[str] = frozenset({"num_ret", "num_rel", "num_rel_ret"})
DEFAULT_K_VALUES: tuple[int, ...] = (1, 5, 10, 20)

_FAMILY_ORDER = {family: index for index, family in enumerate(NAMED_CUT_FAMILIES + UNCUT_MEASURES)}
_FAMILIES = "|".join(sorted(NAMED_CUT_FAMILIES, key=len, reverse=True))
_AT_CUTOFF = re.compile(rf"^({_FAMILIES})_([0-9]+)$")
_AT_CUTOFF_LIST = re.compile(rf"^({_FAMILIES})\.([0-9]+(?:,[0-9]+)*)$")


@dataclass(frozen=True)
class Measure:
    """One output column: a family and its cutoff (None for the uncut measures)."""

    family: str
    cutoff: int | None = None

    @property
    def name(self) -> str:
        return self.family if self.cutoff is None else f"{self.family}_{self.cutoff}"

    @property
    def is_count(self) -> bool:
        return self.family in COUNT_MEASURES


def checked_cutoffs(k_values: Iterable[int], field: str = "k_values") -> tuple[int, ...]:
    """Cutoffs as positive integers without repeats, in the given order."""
    cutoffs = tuple(k_values)
    for k in cutoffs:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidInputError(f"{field}: {k!r} is not a positive integer cutoff")
    if len(set(cutoffs)) != len(cutoffs):
        raise InvalidInputError(f"{field}: {list(cutoffs)} repeats a cutoff")
    return cutoffs


def canonical_order(measures: Iterable[Measure]) -> list[Measure]:
    """Distinct measures in a fixed order (family, then cutoff), whatever order they were asked in."""
    return sorted(set(measures), key=lambda m: (_FAMILY_ORDER[m.family], m.cutoff or 0))


def all_measures(
    k_values: Sequence[int] = DEFAULT_K_VALUES,
    families: Sequence[str] = CUT_FAMILIES,
    uncut: Sequence[str] = UNCUT_MEASURES,
) -> list[Measure]:
    """Every cut family at every cutoff, then the uncut measures."""
    cutoffs = checked_cutoffs(k_values)
    return canonical_order(
        [Measure(family, k) for family in families for k in cutoffs]
        + [Measure(name) for name in uncut]
    )


def parse_measure_names(names: Iterable[str], k_values: Sequence[int]) -> list[Measure]:
    """Measures from names (`P_5`, `P.5,10`, `P` = the family at k_values, `map`), canonical order.

    Every unknown name is reported at once, with the valid forms.
    """
    cutoffs = checked_cutoffs(k_values)
    if isinstance(names, str):
        names = [names]
    measures: list[Measure] = []
    unknown: list[str] = []
    for raw in names:
        name = raw.strip() if isinstance(raw, str) else raw
        if not isinstance(name, str):
            unknown.append(repr(raw))
        elif name in UNCUT_MEASURES:
            measures.append(Measure(name))
        elif name in NAMED_CUT_FAMILIES:
            measures.extend(Measure(name, k) for k in cutoffs)
        elif match := _AT_CUTOFF.match(name) or _AT_CUTOFF_LIST.match(name):
            family, listed = match.groups()
            ks = [int(k) for k in listed.split(",")]
            if min(ks) < 1:
                unknown.append(f"{name!r} (cutoffs must be positive)")
            else:
                measures.extend(Measure(family, k) for k in ks)
        else:
            unknown.append(repr(name))
    if unknown:
        raise InvalidInputError(
            f"measures: unknown {', '.join(unknown)}; valid: the cut families"
            f" {', '.join(NAMED_CUT_FAMILIES)} (alone for the default cutoffs, as family_k, or as"
            f" family.k1,k2), and {', '.join(UNCUT_MEASURES)}"
        )
    if not measures:
        raise InvalidInputError("measures: no measure was named")
    return canonical_order(measures)
