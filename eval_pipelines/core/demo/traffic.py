"""The structure of the demo's logged traffic, as real logs have it: which ranker served each search,
which searches were randomized (exploration) and which recorded impressions.

Without it every (query, document) pair sits at one position and no click model could separate position
bias from relevance. With it the same pair is seen at several positions over time (an earlier ranker),
on a few percent of searches the top k is shuffled (recorded in the execution's metadata as real
systems record exploration), and some searches log which results were rendered (UBI impressions).
Everything is drawn from the world's seed, vectorised over searches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from eval_pipelines.core.demo.users import ClickModel
from eval_pipelines.core.logs.tables import EXPLORATION_KEY

PREVIOUS_RETRIEVER = "demo_prod_previous"
PREVIOUS_METADATA: dict[str, str] = {"ranker_version": "previous"}
EXPLORATION_METHOD = "shuffle_top_k"
EXAMINATION_FILE = "examination.parquet"

# What served a search, by code.
PRODUCTION, PREVIOUS, EXPLORATION = 0, 1, 2
KIND_NAMES: tuple[str, ...] = ("production", "previous_ranker", "exploration")
LogStructureName = Literal["varied", "fixed"]


@dataclass(frozen=True)
class DemoLogStructure:
    """How the logged traffic varies; the defaults are the structure of real logs."""

    previous_ranker_days: int = 12
    previous_candidates: int = 36
    previous_rank_noise_sd: float = 6.0
    exploration_share: float = 0.05
    exploration_k: int = 12
    impression_share: float = 0.10

    @classmethod
    def fixed(cls) -> DemoLogStructure:
        """One fixed page per query: no earlier ranker, no exploration, no impressions."""
        return cls(previous_ranker_days=0, exploration_share=0.0, impression_share=0.0)

    @classmethod
    def named(cls, name: LogStructureName) -> DemoLogStructure:
        if name not in ("varied", "fixed"):
            raise ValueError(f"log_structure: expected 'varied' or 'fixed', got {name!r}")
        return cls.fixed() if name == "fixed" else cls()

    def __post_init__(self) -> None:
        for name in ("previous_ranker_days", "previous_candidates", "exploration_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"DemoLogStructure.{name}: expected an integer >= 0, got {value!r}"
                )
        for name in ("exploration_share", "impression_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"DemoLogStructure.{name}: expected a share in [0, 1], got {value!r}"
                )
        if not self.previous_rank_noise_sd >= 0:
            raise ValueError("DemoLogStructure.previous_rank_noise_sd: expected a number >= 0")

    def exploration_metadata(self) -> dict[str, Any]:
        return {EXPLORATION_KEY: {"method": EXPLORATION_METHOD, "k": self.exploration_k}}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Traffic:
    """Per search: what served it (kind code), the served catalog positions (-1: empty slot), and
    whether it logs impressions."""

    kind: np.ndarray
    served: np.ndarray
    impressions: np.ndarray


def previous_pages(
    rng: np.random.Generator, top: np.ndarray, depth: int, noise_sd: float
) -> np.ndarray:
    """The earlier ranker: each query's top candidates re-ranked once by rank + Normal(0, sd), cut
    to depth (padded with empty slots when there are fewer candidates)."""
    keys = np.arange(top.shape[1]) + rng.normal(0.0, noise_sd, size=top.shape)
    order = np.argsort(np.where(top >= 0, keys, np.inf), axis=1, kind="stable")[:, :depth]
    pages = np.take_along_axis(top, order, axis=1)
    return np.pad(pages, ((0, 0), (0, depth - pages.shape[1])), constant_values=-1)


def shuffle_top_k(rng: np.random.Generator, served: np.ndarray, k: int) -> np.ndarray:
    """Each row's first k served documents in a uniformly random order (empty slots stay last)."""
    head = served[:, :k]
    order = np.argsort(np.where(head >= 0, rng.random(head.shape), np.inf), axis=1)
    shuffled = served.copy()
    shuffled[:, :k] = np.take_along_axis(head, order, axis=1)
    return shuffled


def assign_traffic(
    rng: np.random.Generator,
    structure: DemoLogStructure,
    days_in: np.ndarray,
    page_of: np.ndarray,
    top: np.ndarray,
    depth: int,
) -> Traffic:
    """Who served each search: the earlier ranker before previous_ranker_days, then production, a
    share of it shuffled; a share of all searches logs impressions.

    days_in: each search's time since the logs start, in days; page_of: its query's row in top
    (queries x candidates, production order, -1 for empty slots).
    """
    previous = days_in < structure.previous_ranker_days
    explored = ~previous & (rng.random(len(page_of)) < structure.exploration_share)
    kind = np.where(previous, PREVIOUS, np.where(explored, EXPLORATION, PRODUCTION)).astype(np.int8)
    served = top[page_of, :depth]
    if previous.any():
        earlier = previous_pages(
            rng,
            top[:, : structure.previous_candidates],
            depth,
            structure.previous_rank_noise_sd,
        )
        served = np.where(previous[:, None], earlier[page_of], served)
    if explored.any() and structure.exploration_k > 1:
        served[explored] = shuffle_top_k(rng, served[explored], structure.exploration_k)
    impressions = rng.random(len(page_of)) < structure.impression_share
    return Traffic(kind, served, impressions)


def rendered_slots(traffic: Traffic, rendered_pages: np.ndarray, page_size: int) -> np.ndarray:
    """(search, position) of every impression: the served slots the user rendered, on searches that
    log impressions, ordered by search then position."""
    positions = np.arange(traffic.served.shape[1])
    mask = (
        traffic.impressions[:, None]
        & (traffic.served >= 0)
        & (positions[None, :] < (rendered_pages * page_size)[:, None])
    )
    return np.argwhere(mask)


def examination_truth(model: ClickModel, depth: int) -> pa.Table:
    """The user model's true examination by 1-based position; no estimator reads it."""
    examination = model.examination(depth)
    return pa.table(
        {
            "position": pa.array(np.arange(1, depth + 1), pa.int32()),
            "examination": pa.array(examination, pa.float64()),
            "rendered": pa.array(model.rendered(depth), pa.float64()),
            "relative_examination": pa.array(examination / examination[0], pa.float64()),
        }
    )


def structure_summary(
    structure: DemoLogStructure, traffic: Traffic, impressions: int, pairs_at_positions: int
) -> dict[str, Any]:
    """The `structure` block of steps/logs.json: the settings and how much traffic of each kind."""
    counts = np.bincount(traffic.kind, minlength=len(KIND_NAMES))
    return {
        **structure.to_dict(),
        "previous_retriever_id": PREVIOUS_RETRIEVER,
        "exploration": structure.exploration_metadata()[EXPLORATION_KEY],
        "executions_by_kind": {name: int(counts[i]) for i, name in enumerate(KIND_NAMES)},
        "executions_with_impressions": int(traffic.impressions.sum()),
        "impressions": impressions,
        "query_document_pairs_at_several_positions": pairs_at_positions,
    }


def pairs_at_several_positions(page_of: np.ndarray, served: np.ndarray) -> int:
    """How many (query, document) pairs were served at more than one position."""
    rows, positions = np.nonzero(served >= 0)
    depth = served.shape[1]
    pair = page_of[rows].astype(np.int64) * (int(served.max()) + 1) + served[rows, positions]
    triples = np.unique(pair * depth + positions)
    _, per_pair = np.unique(triples // depth, return_counts=True)
    return int((per_pair > 1).sum())
