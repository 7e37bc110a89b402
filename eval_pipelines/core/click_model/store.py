"""Click models stored under the data root, one per log snapshot: <data>/click_models/<snapshot_id>/.

A snapshot is the set of stored log parts. Parts are named by their content digest and never
rewritten, so their sorted names identify the logs' content: a new ingest makes a new snapshot and so
a new model. model.json is written last, so a folder with it is complete. The fit's wall time lives in
timing.json, apart, so the same logs and seed give the same bytes in model.json and
propensities.parquet.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pyarrow.parquet as pq

from eval_pipelines.core.click_model.model import TIMING_KEYS, ClickModel, fit_without_timing
from eval_pipelines.core.paths import DataPath, DataPaths
from eval_pipelines.core.storage import (
    parquet_files,
    read_whole,
    write_parquet_atomic,
    write_text_atomic,
)

MODEL_FILE = "model.json"
PROPENSITIES_FILE = "propensities.parquet"
TIMING_FILE = "timing.json"


def click_models_dir(paths: DataPaths) -> DataPath:
    return paths.root / "click_models"


def log_snapshot_id(paths: DataPaths) -> str:
    """sha256 of the sorted stored log part names (executions and interactions)."""
    names = [
        f"{table}/{part.name}"
        for table in ("executions", "interactions")
        for part in parquet_files(paths.log_table_dir(table))
    ]
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()


def model_id_of(snapshot_id: str) -> str:
    return f"pbm-{snapshot_id[:12]}"


def model_dir(paths: DataPaths, snapshot_id: str) -> DataPath:
    return click_models_dir(paths) / snapshot_id


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, allow_nan=False) + "\n"


def save(paths: DataPaths, model: ClickModel) -> DataPath:
    directory = model_dir(paths, model.snapshot_id)
    fit = fit_without_timing(model.fit)
    timing = {k: model.fit[k] for k in TIMING_KEYS if k in model.fit}
    write_parquet_atomic(model.propensities, directory / PROPENSITIES_FILE)
    write_text_atomic(_json(timing), directory / TIMING_FILE)
    record = {
        "model_id": model.model_id,
        "snapshot_id": model.snapshot_id,
        "available": model.available,
        "reason": model.reason,
        "fit": fit,
    }
    write_text_atomic(_json(record), directory / MODEL_FILE)
    return directory


def _read_text(file: DataPath) -> str:
    """Whole (a concurrent fit of the same snapshot may rewrite timing.json meanwhile)."""
    return read_whole(file).decode("utf-8")


def load(paths: DataPaths, snapshot_id: str) -> ClickModel | None:
    """The stored model of snapshot_id, None when there is none (or it is incomplete)."""
    directory = model_dir(paths, snapshot_id)
    try:
        record = json.loads(_read_text(directory / MODEL_FILE))
        table = pq.read_table(str(directory / PROPENSITIES_FILE))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    try:
        timing = json.loads(_read_text(directory / TIMING_FILE))
    except (FileNotFoundError, json.JSONDecodeError):
        timing = {}
    return ClickModel(
        record["model_id"],
        record["snapshot_id"],
        record["available"],
        record["reason"],
        table,
        {**record["fit"], **timing},
    )
