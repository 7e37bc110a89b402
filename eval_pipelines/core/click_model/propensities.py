"""From cells to per-position propensities: what is identified, the EM fit, its bootstrap, the
randomized-traffic estimate, and whether the correction is available.

Identifiability: a pair shown at one position only fits any theta (its gamma absorbs it), so only
pairs served at two or more positions ("varied" pairs; a shuffled top k makes them by design) tell
positions apart. The fit uses the cells of those clicked at least once (one never clicked has gamma 0
at the maximum, whatever theta), and a position is identified only when such pairs link it to
position 1 (a connected component of the position-pair graph).

Availability rule: the correction is available when every position from 1 to
min(REQUIRED_DEPTH, deepest served position) is identified with a bootstrap relative standard error
of at most MAX_RELATIVE_SE. At 0.25 the 95% interval spans about -50%..+50% of the estimate, so an
inverse-propensity weight is known within a factor of about 2; beyond that, the correction would add
more noise than the position bias it removes. REQUIRED_DEPTH is 10 because NDCG@10 is the headline
metric. The reported depth is the number of leading positions that meet the rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.stats import norm

from eval_pipelines.core.click_model.observations import Cells
from eval_pipelines.core.click_model.pbm import PbmFit, fit_pbm

MAX_RELATIVE_SE = 0.25
REQUIRED_DEPTH = 10
Z95 = float(norm.ppf(0.975))
AVAILABILITY_RULE = (
    f"available when every position 1..min({REQUIRED_DEPTH}, deepest served) is linked to position 1 "
    "by clicked (query, document) pairs served at several positions and has a bootstrap relative standard "
    f"error <= {MAX_RELATIVE_SE}"
)

PROPENSITIES_SCHEMA = pa.schema(
    [
        pa.field("position", pa.int32(), nullable=False),
        pa.field("propensity", pa.float64()),
        pa.field("standard_error", pa.float64()),
        pa.field("ci_low", pa.float64()),
        pa.field("ci_high", pa.float64()),
        pa.field("impressions", pa.int64(), nullable=False),
        pa.field("clicks", pa.int64(), nullable=False),
        pa.field("varied_impressions", pa.int64(), nullable=False),
        pa.field("randomized_impressions", pa.int64(), nullable=False),
        pa.field("randomized_clicks", pa.int64(), nullable=False),
        pa.field("randomized_propensity", pa.float64()),
        pa.field("randomized_ci_low", pa.float64()),
        pa.field("randomized_ci_high", pa.float64()),
    ]
)


@dataclass(frozen=True)
class Varied:
    """Cells of pairs served at two or more positions (counted as evidence); of those, the cells of
    pairs with at least one click, which the fit uses (a pair never clicked has gamma 0 at the
    maximum and says nothing about theta), pairs re-indexed; and which positions those link to
    position 1."""

    cells: np.ndarray
    fit_cells: np.ndarray
    pair: np.ndarray
    n_pairs: int
    n_fit_pairs: int
    identified: np.ndarray


def varied_cells(cells: Cells) -> Varied:
    positions_per_pair = np.bincount(cells.pair, minlength=cells.n_pairs)
    varied = positions_per_pair[cells.pair] >= 2
    clicked = np.bincount(cells.pair, cells.clicks, minlength=cells.n_pairs)[cells.pair] > 0
    keep = np.flatnonzero(varied)
    fit_cells = np.flatnonzero(varied & clicked)
    unique_pairs, pair = np.unique(cells.pair[fit_cells], return_inverse=True)
    n_positions = cells.n_positions
    identified = np.zeros(n_positions, bool)
    if fit_cells.size:
        nodes = n_positions + unique_pairs.size
        graph = coo_matrix(
            (np.ones(fit_cells.size), (cells.position[fit_cells], n_positions + pair)),
            shape=(nodes, nodes),
        )
        _, label = connected_components(graph, directed=False)
        shown = np.bincount(cells.position[fit_cells], minlength=n_positions) > 0
        identified = shown & (label[:n_positions] == label[0])
    return Varied(
        keep,
        fit_cells,
        pair,
        int(np.unique(cells.pair[keep]).size),
        int(unique_pairs.size),
        identified,
    )


def fit_varied(
    cells: Cells,
    varied: Varied,
    weights: np.ndarray | None = None,
    start: PbmFit | None = None,
    **options: float,
) -> PbmFit:
    keep = varied.fit_cells
    impressions = cells.impressions[keep]
    clicks = cells.clicks[keep]
    if weights is not None:
        impressions = impressions * weights
        clicks = clicks * weights
    return fit_pbm(
        varied.pair,
        cells.position[keep],
        impressions,
        clicks,
        varied.n_fit_pairs,
        cells.n_positions,
        theta=None if start is None else start.theta,
        gamma=None if start is None else start.gamma,
        **options,
    )


@dataclass(frozen=True)
class Bootstrap:
    relative: np.ndarray
    converged: int

    @property
    def draws(self) -> int:
        return int(self.relative.shape[0])


def bootstrap(cells: Cells, varied: Varied, full: PbmFit, draws: int, seed: int) -> Bootstrap:
    """Queries resampled with replacement (seeded); each draw's EM starts from the full fit."""
    rng = np.random.default_rng(seed)
    query = cells.query[varied.fit_cells]
    relative = np.empty((draws, cells.n_positions))
    converged = 0
    for draw in range(draws):
        counts = np.bincount(
            rng.integers(0, cells.n_queries, cells.n_queries), minlength=cells.n_queries
        )
        fit = fit_varied(
            cells,
            varied,
            counts[query].astype(np.float64),
            full,
            max_iterations=100,
        )
        relative[draw] = fit.relative
        converged += fit.converged
    return Bootstrap(relative, converged)


def randomized_estimate(
    cells: Cells,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Click rate at each position over shuffled traffic relative to position 1, with a 95% interval
    from the delta method on the log ratio (Katz): var log r = (1 - r) / clicks. Under a uniform
    shuffle every position sees the same relevance on average, so the ratio is the examination ratio.
    Returns impressions, clicks, estimate, low, high (NaN where it cannot be computed)."""
    n_positions = cells.n_positions
    shown = np.bincount(cells.position, cells.randomized_impressions, minlength=n_positions)
    clicked = np.bincount(cells.position, cells.randomized_clicks, minlength=n_positions)
    nan = np.full(n_positions, np.nan)
    if n_positions == 0 or clicked[0] == 0:
        return shown, clicked, nan, nan.copy(), nan.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = clicked / shown
        estimate = np.where(clicked > 0, rate / rate[0], np.nan)
        log_se = np.sqrt((1 - rate) / clicked + (1 - rate[0]) / clicked[0])
    log_se[0] = 0.0
    estimate[0] = 1.0
    return (
        shown,
        clicked,
        estimate,
        estimate * np.exp(-Z95 * log_se),
        estimate * np.exp(Z95 * log_se),
    )


def per_position(values: np.ndarray, position: np.ndarray, n_positions: int) -> np.ndarray:
    return np.bincount(position, values, minlength=n_positions).round().astype(np.int64)


def availability(
    propensity: np.ndarray,
    standard_error: np.ndarray,
    identified: np.ndarray,
    varied_impressions: np.ndarray,
    randomized_impressions: np.ndarray,
    cells: Cells,
    varied_pairs: int,
) -> tuple[int, int, str | None]:
    """(depth, required depth, reason when unavailable) under the module's availability rule."""
    n_positions = propensity.size
    required = min(REQUIRED_DEPTH, n_positions)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative_se = standard_error / propensity
    enough = identified & (relative_se <= MAX_RELATIVE_SE)
    if n_positions:
        enough[0] = identified[0]
    depth = int(np.argmin(enough)) if not enough.all() else n_positions
    if depth >= required and required > 0:
        return depth, required, None
    if varied_pairs == 0 and cells.randomized_searches == 0:
        return (
            depth,
            required,
            (
                f"0 of {cells.n_pairs:,} (query, document) pairs were served at more than one position and "
                "no search was randomized: examination cannot be separated from relevance"
            ),
        )
    if n_positions == 0:
        return 0, 0, "no served documents in the logs"
    at = depth
    evidence = (
        f"{int(varied_impressions[at]):,} varied and {int(randomized_impressions[at]):,} randomized "
        "impressions"
    )
    if not identified[at]:
        why = f"is not linked to position 1 by any clicked (query, document) pair served at several positions ({evidence})"
    else:
        why = f"has a bootstrap relative standard error of {relative_se[at]:.2f} (> {MAX_RELATIVE_SE}) from {evidence}"
    return (
        depth,
        required,
        (
            f"position {at + 1} {why}: the correction needs enough evidence at every position up to "
            f"{required} and the logs have it up to position {depth}"
        ),
    )
