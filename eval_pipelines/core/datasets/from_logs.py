"""Graded judgments derived from the logs, corrected for position, stored as an ordinary dataset.

Each judgment is what users told us about a (query, document) pair across all sessions of the query.

The click model (core/click_model) gives, per normalized query text and document, how often it was
served (impressions), how much examination that amounted to (exposure: the sum of the position's
propensity relative to position 1) and the interaction gain users gave it (gain_sum: per session,
the largest weight among its counted interactions, so click 1, add to cart 2, purchase 5).
relevance = gain_sum / exposure is then the expected gain per examination at position 1: the same
pair shown at the top of the page to 100 users who look at it earns 100 * relevance.

Grades are thresholds on that number (DEFAULT_GRADE_THRESHOLDS, in gain per top impression):
- grade 1 from 0.02: users engage about once in 50 top impressions, more than accidental clicks
  (a demo grade-0 document earns about 0.01);
- grade 2 from 0.08: about one click in 12, or a purchase in 60;
- grade 3 from 0.3: about a third of the users who see it click, or most of its clicks convert.
The steps are geometric (x4) because interaction rates of relevant results span orders of magnitude.

A pair needs DEFAULT_MIN_EXPOSURE of exposure (expected examinations, in position-1 equivalents)
and DEFAULT_MIN_IMPRESSIONS impressions to be judged; pairs below either floor are counted, never
judged. The floor is on exposure because thresholding a noisy estimate is only fair between pairs
with the same evidence: relevance = gain_sum / exposure is unbiased at any position, but its noise
grows as exposure shrinks, so under a floor on impressions alone a document served deep (20
impressions at relative examination 0.1: exposure 2) is graded from a tenth of the evidence of one
served at the top, and its expected grade is lower (a grade-3 pair of relevance 0.3 goes without any
interaction in 0.7**2 = 49% of such logs, against 1.4% at exposure 12). Exposure 10 asks of every
pair, wherever it was served, what 20 impressions at a mean relative examination of 0.5 give near
the top: grade 0 is then evidence (0.7**10 = 2.8%). Measured on the demo worlds (seed 7 at full
scale and the small world, chosen there and reported on the default seed's full world in the
README), a panel of reorderings of equal true grade scores the same as production on condensed lists
with it (-0.003 to +0.002 NDCG@10 for the reordering of the top 24), where a floor of 20
impressions alone costs them -0.035 to -0.06; 5 leaves -0.012 to -0.015, and 20 overshoots (+0.01)
while judging half as many queries. The floor of 10 impressions adds a second guard (no grade from fewer than 10
sessions); with exposure >= 10 it rarely binds.

Without position variation in the logs the click model cannot correct (`available` is false); then
deriving is refused unless uncorrected judgments are asked for: the evidence then counts every
impression as one examination (exposure = impressions, relevance = gain per impression), and the
dataset's derivation says so (such grades favour whatever production showed high).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.click_model import ClickModel, load_or_fit, query_document_evidence
from eval_pipelines.core.datasets.store import (
    JUDGMENTS_SCHEMA,
    QUERIES_SCHEMA,
    DatasetSummary,
    dataset_exists,
    load_side_table,
    store_dataset,
)
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.logs.fields import canonical_json
from eval_pipelines.core.logs.parts import local_parts
from eval_pipelines.core.metrics.alignment import DEFAULT_INTERACTION_WEIGHTS, counted_types
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.query_keys import normalized_text
from eval_pipelines.core.storage import parquet_files

DERIVED_FORMAT = "logs"
EVIDENCE_FILE = "evidence.parquet"
DEFAULT_MIN_IMPRESSIONS = 10
DEFAULT_MIN_EXPOSURE = 10.0
DEFAULT_GRADE_THRESHOLDS: tuple[float, ...] = (0.02, 0.08, 0.3)
DEFAULT_CLIP = 0.05
QUERY_ID_PREFIX = "lq_"
CORRECTED_BASIS = "gain per examination (position-corrected: gain_sum / exposure)"
UNCORRECTED_BASIS = "gain per impression (NOT corrected for position: gain_sum / impressions)"

EVIDENCE_SCHEMA = pa.schema(
    [
        pa.field("query_id", pa.string(), nullable=False),
        pa.field("query_key", pa.string(), nullable=False),
        pa.field("document_id", pa.string(), nullable=False),
        pa.field("impressions", pa.int64(), nullable=False),
        pa.field("exposure", pa.float64(), nullable=False),
        pa.field("gain_sum", pa.float64(), nullable=False),
        pa.field("interacted_sessions", pa.int64(), nullable=False),
        pa.field("relevance", pa.float64(), nullable=False),
        pa.field("interaction_rate", pa.float64(), nullable=False),
        pa.field("grade", pa.int32(), nullable=False),
    ]
)


class CorrectionUnavailableError(InvalidInputError):
    """The click model cannot correct for position, and uncorrected judgments were not asked for."""

    def __init__(self, model_id: str, reason: str | None) -> None:
        self.model_id = model_id
        self.reason = reason or "no reason given"
        super().__init__(
            f"click model {model_id} cannot correct for position ({self.reason}); judgments from"
            " raw interaction rates would favour whatever production showed high"
        )


class NothingToJudgeError(InvalidInputError):
    """No pair reaches the minimum: an empty dataset would only make every evaluation fail later."""

    def __init__(self, min_impressions: int, most: int, min_exposure: float, most_exposure: float):
        self.min_impressions = min_impressions
        self.most = most
        self.min_exposure = min_exposure
        self.most_exposure = most_exposure
        super().__init__(
            f"min_impressions, min_exposure: no (query, document) pair was served"
            f" {min_impressions} times with an exposure of {min_exposure:g} (the most any pair was"
            f" served is {most}, the largest exposure {most_exposure:.4g}); lower them"
        )


@dataclass(frozen=True)
class DerivationSettings:
    """How evidence becomes grades; field names are what errors name."""

    min_impressions: int = DEFAULT_MIN_IMPRESSIONS
    min_exposure: float = DEFAULT_MIN_EXPOSURE
    grade_thresholds: tuple[float, ...] = DEFAULT_GRADE_THRESHOLDS
    allow_uncorrected: bool = False
    clip: float = DEFAULT_CLIP

    def __post_init__(self) -> None:
        if isinstance(self.min_impressions, bool) or not isinstance(self.min_impressions, int):
            raise InvalidInputError(
                f"min_impressions: expected a whole number, got {self.min_impressions!r}"
            )
        if self.min_impressions < 1:
            raise InvalidInputError(f"min_impressions: must be >= 1, got {self.min_impressions}")
        if (
            isinstance(self.min_exposure, bool)
            or not isinstance(self.min_exposure, int | float)
            or not np.isfinite(self.min_exposure)
            or self.min_exposure < 0
        ):
            raise InvalidInputError(
                f"min_exposure: expected a finite number >= 0, got {self.min_exposure!r}"
            )
        check_grade_thresholds(self.grade_thresholds)
        if not 0.0 < self.clip <= 1.0:
            raise InvalidInputError(f"clip: must be in (0, 1], got {self.clip!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_impressions": self.min_impressions,
            "min_exposure": float(self.min_exposure),
            "grade_thresholds": list(self.grade_thresholds),
            "allow_uncorrected": self.allow_uncorrected,
            "clip": self.clip,
        }


def check_grade_thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    """Grades 1..n need n finite, positive, strictly increasing thresholds."""
    values = tuple(thresholds)
    if not values:
        raise InvalidInputError("grade_thresholds: give at least one threshold (grade 1's)")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInputError(f"grade_thresholds: {value!r} is not a number")
        if not np.isfinite(value) or value <= 0:
            raise InvalidInputError(f"grade_thresholds: {value!r} must be finite and > 0")
    if any(later <= earlier for earlier, later in itertools.pairwise(values)):
        raise InvalidInputError(
            f"grade_thresholds: must be strictly increasing (grade 1 first), got {list(values)}"
        )
    return tuple(float(value) for value in values)


def parse_grade_thresholds(text: str) -> tuple[float, ...]:
    """Comma-separated thresholds, e.g. "0.02,0.08,0.3", checked."""
    values = []
    for item in text.split(","):
        try:
            values.append(float(item.strip()))
        except ValueError:
            raise InvalidInputError(
                f"grade_thresholds: {item.strip()!r} is not a number (expected e.g. 0.02,0.08,0.3)"
            ) from None
    return check_grade_thresholds(values)


@dataclass(frozen=True)
class DerivedJudgments:
    """The dataset's tables (stored shapes), the evidence behind each judgment, and how it was made."""

    queries: pa.Table
    judgments: pa.Table
    evidence: pa.Table
    derivation: dict[str, Any]


def query_id_for(query_key: str) -> str:
    """Stable across derivations and log snapshots: a digest of the normalized query text."""
    return QUERY_ID_PREFIX + hashlib.sha256(query_key.encode("utf-8")).hexdigest()[:16]


def grades_for(relevance: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """The number of thresholds each relevance reaches: 0 below the first."""
    return np.searchsorted(np.asarray(thresholds, dtype=np.float64), relevance, side="right")


def derive_judgments(
    paths: DataPaths, settings: DerivationSettings | None = None, model: ClickModel | None = None
) -> DerivedJudgments:
    """Judgments for every logged query from the click model fitted on these logs (or `model`)."""
    settings = settings or DerivationSettings()
    if not parquet_files(paths.log_table_dir("executions")):
        raise InvalidInputError(
            f"no logged executions were ingested (no Parquet files in"
            f" {paths.log_table_dir('executions')}); ingest logs first with"
            " `eval-pipelines ingest executions FILE...`"
        )
    model = model if model is not None else load_or_fit(paths)
    if not model.available and not settings.allow_uncorrected:
        raise CorrectionUnavailableError(model.model_id, model.reason)
    weights = dict(DEFAULT_INTERACTION_WEIGHTS)
    counted = counted_types(None, weights)
    evidence = query_document_evidence(paths, model, weights, counted, clip=settings.clip)
    return _judgments(paths, evidence, model, settings, weights, counted)


def _judgments(
    paths: DataPaths,
    evidence: pa.Table,
    model: ClickModel,
    settings: DerivationSettings,
    weights: dict[str, float],
    counted: frozenset[str],
) -> DerivedJudgments:
    impressions = evidence.column("impressions").to_numpy(zero_copy_only=False).astype(np.int64)
    exposure = evidence.column("exposure").to_numpy(zero_copy_only=False).astype(np.float64)
    served_enough = impressions >= settings.min_impressions
    enough = served_enough & (exposure >= settings.min_exposure)
    if not enough.any():
        raise NothingToJudgeError(
            settings.min_impressions,
            int(impressions.max(initial=0)),
            settings.min_exposure,
            float(exposure.max(initial=0.0)),
        )
    kept = evidence.filter(pa.array(enough)).sort_by(
        [("query_key", "ascending"), ("document_id", "ascending")]
    )
    corrected = bool(model.available)
    relevance = kept.column("relevance").to_numpy(zero_copy_only=False).astype(np.float64)
    grades = grades_for(relevance, settings.grade_thresholds).astype(np.int32)

    keys = kept.column("query_key").to_pylist()
    ids_by_key = {key: query_id_for(key) for key in dict.fromkeys(keys)}
    query_ids = pa.array([ids_by_key[key] for key in keys], pa.string())
    judged = pa.table(
        {
            "query_id": query_ids,
            "query_key": kept.column("query_key"),
            "document_id": kept.column("document_id"),
            "impressions": kept.column("impressions").cast(pa.int64()),
            "exposure": kept.column("exposure").cast(pa.float64()),
            "gain_sum": kept.column("gain_sum").cast(pa.float64()),
            "interacted_sessions": kept.column("interacted_sessions").cast(pa.int64()),
            "relevance": pa.array(relevance, pa.float64()),
            "interaction_rate": kept.column("interaction_rate").cast(pa.float64()),
            "grade": pa.array(grades, pa.int32()),
        },
        schema=EVIDENCE_SCHEMA,
    ).sort_by([("query_id", "ascending"), ("document_id", "ascending")])
    judgments = pa.table(
        {
            "query_id": judged.column("query_id"),
            "document_id": judged.column("document_id"),
            "relevance": judged.column("grade"),
        },
        schema=JUDGMENTS_SCHEMA,
    )
    queries = _queries(paths, ids_by_key)
    all_keys = pc.unique(evidence.column("query_key"))
    derivation = {
        "source": "logs",
        "click_model_id": model.model_id,
        "snapshot_id": model.snapshot_id,
        "corrected": corrected,
        "correction_unavailable_reason": None if corrected else model.reason,
        "relevance_basis": CORRECTED_BASIS if corrected else UNCORRECTED_BASIS,
        **settings.to_dict(),
        "interaction_weights": weights,
        "counted_types": sorted(counted),
        "logged_queries": len(all_keys),
        "pairs_seen": evidence.num_rows,
        "pairs_below_minimum": int((~enough).sum()),
        "pairs_below_min_impressions": int((~served_enough).sum()),
        "pairs_below_min_exposure": int((served_enough & ~enough).sum()),
        "queries_below_minimum": len(all_keys) - len(ids_by_key),
        "grade_counts": {
            str(g): int(c)
            for g, c in enumerate(np.bincount(grades, minlength=len(settings.grade_thresholds) + 1))
        },
        "judged_impressions": _spread(judged.column("impressions")),
        "judged_exposure": _spread(judged.column("exposure")),
        "evidence_file": EVIDENCE_FILE,
    }
    return DerivedJudgments(queries, judgments, judged, derivation)


def _spread(values: pa.ChunkedArray) -> dict[str, float | None]:
    array = values.to_numpy().astype(np.float64)
    if not len(array):
        return {"min": None, "median": None, "max": None}
    return {
        "min": float(array.min()),
        "median": float(np.median(array)),
        "max": float(array.max()),
    }


def _queries(paths: DataPaths, ids_by_key: dict[str, str]) -> pa.Table:
    """One query per key, its text the most frequent logged spelling (ties: the smallest text)."""
    texts = most_frequent_texts(paths)
    text_of = dict(
        zip(
            texts.column("query_key").to_pylist(),
            texts.column("query_text").to_pylist(),
            strict=True,
        )
    )
    rows = sorted((query_id, text_of[key]) for key, query_id in ids_by_key.items())
    return pa.table(
        {
            "query_id": [row[0] for row in rows],
            "query_input": [canonical_json({"text": row[1]}) for row in rows],
            "query_text": [row[1] for row in rows],
        },
        schema=QUERIES_SCHEMA,
    )


def most_frequent_texts(paths: DataPaths) -> pa.Table:
    """query_key -> the logged query_text most often searched under it."""
    files = [str(f) for f in local_parts(paths, "executions")]
    with duckdb.connect(":memory:") as con:
        counts = con.sql(
            "SELECT query_text, count(*) AS n FROM read_parquet($files) GROUP BY query_text",
            params={"files": files},
        ).to_arrow_table()
        keyed = counts.append_column("query_key", normalized_text(counts.column("query_text")))
        con.register("keyed", keyed)
        return con.sql(
            "SELECT query_key, query_text FROM keyed QUALIFY row_number()"
            " OVER (PARTITION BY query_key ORDER BY n DESC, query_text) = 1"
        ).to_arrow_table()


def derive_dataset(
    paths: DataPaths,
    name: str,
    settings: DerivationSettings | None = None,
    replace: bool = False,
    model: ClickModel | None = None,
) -> DatasetSummary:
    """Derive and store dataset `name` (evidence per judgment in its evidence.parquet)."""
    if dataset_exists(paths, name) and not replace:
        raise InvalidInputError(f"dataset {name} exists; use --replace")
    derived = derive_judgments(paths, settings, model)
    return store_dataset(
        paths,
        name,
        derived.queries,
        derived.judgments,
        fmt=DERIVED_FORMAT,
        source_files=[str(paths.logs_dir.resolve())],
        replace=replace,
        derivation=derived.derivation,
        side_tables={EVIDENCE_FILE: derived.evidence},
    )


def read_evidence(paths: DataPaths, name: str) -> pa.Table:
    """The impressions, exposure and relevance behind each judgment of a derived dataset."""
    table = load_side_table(paths, name, EVIDENCE_FILE)
    if table is None:
        raise InvalidInputError(f"dataset {name}: no {EVIDENCE_FILE} (not derived from logs)")
    return table.cast(EVIDENCE_SCHEMA)
