"""Click models on disk: one per log snapshot, deterministic, refused on unreadable logs."""

from __future__ import annotations

import pytest

from eval_pipelines.core.click_model import load_or_fit, log_snapshot_id
from eval_pipelines.core.click_model.store import model_dir
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.core.click_model.conftest import copy_logs
from eval_pipelines_tests.core.click_model.pbm_logs import write_logs


def test_same_logs_and_seed_give_the_same_bytes_on_disk(randomized_world, tmp_path):
    paths, _ = randomized_world
    first = copy_logs(paths, tmp_path / "one")
    second = copy_logs(paths, tmp_path / "two")
    a, b = load_or_fit(first), load_or_fit(second)
    assert a.model_id == b.model_id == f"pbm-{log_snapshot_id(first)[:12]}"
    for name in ("model.json", "propensities.parquet"):
        assert (model_dir(first, a.snapshot_id) / name).read_bytes() == (
            model_dir(second, b.snapshot_id) / name
        ).read_bytes()


def test_the_model_is_cached_per_snapshot_and_a_new_ingest_makes_a_new_one(tmp_path):
    paths = DataPaths(tmp_path / "data")
    write_logs(paths, tmp_path / "raw", searches=1500)
    fitted = load_or_fit(paths)
    loaded = load_or_fit(paths)
    assert loaded.model_id == fitted.model_id
    assert loaded.to_dict() == fitted.to_dict()
    write_logs(paths, tmp_path / "raw", searches=300, seed=2, prefix="later-")
    refitted = load_or_fit(paths)
    assert refitted.model_id != fitted.model_id
    assert refitted.fit["searches"] == 1800
    assert sorted(p.name for p in (paths.root / "click_models").iterdir()) == sorted(
        [fitted.snapshot_id, refitted.snapshot_id]
    )


def test_no_logs_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidInputError, match="no logged executions; ingest logs first"):
        load_or_fit(DataPaths(tmp_path / "data"))


def test_an_unreadable_log_part_is_named_and_nothing_is_stored(randomized_world, tmp_path):
    paths = copy_logs(randomized_world[0], tmp_path / "data")
    part = sorted(paths.log_table_dir("interactions").glob("*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:100])
    with pytest.raises(InvalidInputError, match=str(part)):
        load_or_fit(paths)
    assert not (paths.root / "click_models").exists()
