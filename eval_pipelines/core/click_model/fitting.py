"""fit_click_model: the stored logs' cells -> EM fit, bootstrap, randomized estimate -> ClickModel."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from eval_pipelines.core.click_model import propensities as est
from eval_pipelines.core.click_model import store
from eval_pipelines.core.click_model.model import ClickModel, agreement, monotone_violations
from eval_pipelines.core.click_model.observations import Cells, load_cells
from eval_pipelines.core.click_model.pbm import TOLERANCE
from eval_pipelines.core.paths import DataPaths

DEFAULT_SEED = 13
DEFAULT_DRAWS = 100
_SNAPSHOT_ATTEMPTS = 3


def _nullable(values: np.ndarray, keep: np.ndarray) -> pa.Array:
    return pa.array(np.where(keep, values, np.nan), pa.float64(), mask=~keep | np.isnan(values))


def fit_cells(
    cells: Cells, *, seed: int = DEFAULT_SEED, draws: int = DEFAULT_DRAWS
) -> tuple[bool, str | None, pa.Table, dict]:
    """(available, reason, propensities, fit) from cells; no file is read or written."""
    started = time.perf_counter()
    varied = est.varied_cells(cells)
    n_positions = cells.n_positions
    identified = varied.identified
    if varied.fit_cells.size:
        full = est.fit_varied(cells, varied)
        boot = est.bootstrap(cells, varied, full, draws, seed)
        relative = full.relative
        standard_error = (
            boot.relative.std(axis=0, ddof=1) if boot.draws > 1 else np.full(n_positions, np.nan)
        )
        low, high = np.percentile(boot.relative, [2.5, 97.5], axis=0)
        em = {
            "iterations": full.iterations,
            "converged": full.converged,
            "log_likelihood": full.log_likelihood,
        }
        boot_facts = {"bootstrap_draws": boot.draws, "bootstrap_converged": boot.converged}
    else:
        relative = standard_error = low = high = np.full(n_positions, np.nan)
        em = {"iterations": 0, "converged": True, "log_likelihood": None}
        boot_facts = {"bootstrap_draws": 0, "bootstrap_converged": 0}
    varied_impressions = est.per_position(
        cells.impressions[varied.cells], cells.position[varied.cells], n_positions
    )
    shown, clicked, rand, rand_low, rand_high = est.randomized_estimate(cells)
    has_rand = ~np.isnan(rand)
    table = pa.table(
        {
            "position": pa.array(np.arange(1, n_positions + 1), pa.int32()),
            "propensity": _nullable(relative, identified),
            "standard_error": _nullable(standard_error, identified),
            "ci_low": _nullable(low, identified),
            "ci_high": _nullable(high, identified),
            "impressions": est.per_position(cells.impressions, cells.position, n_positions),
            "clicks": est.per_position(cells.clicks, cells.position, n_positions),
            "varied_impressions": varied_impressions,
            "randomized_impressions": shown.round().astype(np.int64),
            "randomized_clicks": clicked.round().astype(np.int64),
            "randomized_propensity": _nullable(rand, has_rand),
            "randomized_ci_low": _nullable(rand_low, has_rand),
            "randomized_ci_high": _nullable(rand_high, has_rand),
        },
        schema=est.PROPENSITIES_SCHEMA,
    )
    depth, required, reason = est.availability(
        relative, standard_error, identified, varied_impressions, shown, cells, varied.n_pairs
    )
    fit = {
        "method": "pbm_em_fisher_scoring",
        **em,
        "tolerance": TOLERANCE,
        **boot_facts,
        "seed": seed,
        "depth": depth,
        "required_depth": required,
        "max_relative_se": est.MAX_RELATIVE_SE,
        "availability_rule": est.AVAILABILITY_RULE,
        "agreement": agreement(table),
        "monotone_violations": monotone_violations(table),
        "searches": cells.searches,
        "randomized_searches": cells.randomized_searches,
        "unrecognized_exploration_searches": cells.unrecognized_exploration,
        "queries": cells.n_queries,
        "pairs": cells.n_pairs,
        "varied_pairs": varied.n_pairs,
        "cells": int(cells.position.size),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return reason is None, reason, table, fit


def fit_click_model(
    paths: DataPaths,
    *,
    seed: int = DEFAULT_SEED,
    max_position: int | None = None,
    draws: int = DEFAULT_DRAWS,
) -> ClickModel:
    """The position-based model of the stored logs as they are now (nothing written)."""
    started = time.perf_counter()
    for _ in range(_SNAPSHOT_ATTEMPTS):
        snapshot = store.log_snapshot_id(paths)
        cells = load_cells(paths, max_position)
        if store.log_snapshot_id(paths) == snapshot:
            break
    else:
        raise RuntimeError(f"{paths.logs_dir}: logs kept changing while the click model read them")
    available, reason, table, fit = fit_cells(cells, seed=seed, draws=draws)
    fit["max_position"] = max_position
    fit["seconds"] = round(time.perf_counter() - started, 3)
    return ClickModel(store.model_id_of(snapshot), snapshot, available, reason, table, fit)


def load_or_fit(paths: DataPaths) -> ClickModel:
    """The current snapshot's model (default seed and draws): from disk when fitted before, else
    fitted now and stored."""
    cached = store.load(paths, store.log_snapshot_id(paths))
    if cached is not None:
        return cached
    model = fit_click_model(paths)
    store.save(paths, model)
    return model
