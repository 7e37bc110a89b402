"""Judgments derived from the logs: grades from position-corrected evidence, counted exclusions and a
refusal when the logs cannot correct for position. Agreement with the demo's true grades, on the
issue's panel: eval_pipelines_tests/test_derived_agreement.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from eval_pipelines.core.click_model import load_or_fit
from eval_pipelines.core.datasets import list_datasets, load_dataset
from eval_pipelines.core.datasets.from_logs import (
    EVIDENCE_FILE,
    CorrectionUnavailableError,
    DerivationSettings,
    derive_dataset,
    derive_judgments,
    grades_for,
    parse_grade_thresholds,
    read_evidence,
)
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.core.datasets.fixed_page_logs import PAGE, write_fixed_page_logs


def test_thresholds_grade_zero_below_the_first_and_reject_bad_values() -> None:
    assert grades_for([0.0, 0.019, 0.02, 0.079, 0.08, 0.3, 7.0], (0.02, 0.08, 0.3)).tolist() == [
        0,
        0,
        1,
        1,
        2,
        3,
        3,
    ]
    assert parse_grade_thresholds(" 0.1, 0.5 ") == (0.1, 0.5)
    for text, problem in [
        ("0.3,0.1", "strictly increasing"),
        ("0.1,x", "'x' is not a number"),
        ("0,0.1", "must be finite and > 0"),
        ("nan", "must be finite"),
    ]:
        with pytest.raises(InvalidInputError, match=f"grade_thresholds: .*{problem}"):
            parse_grade_thresholds(text)
    with pytest.raises(InvalidInputError, match="min_impressions: must be >= 1"):
        DerivationSettings(min_impressions=0)
    for bad in (-0.5, float("nan"), float("inf"), True, "10"):
        with pytest.raises(InvalidInputError, match="min_exposure: expected a finite number >= 0"):
            DerivationSettings(min_exposure=bad)


def test_no_correction_no_judgments_unless_uncorrected_is_asked_for(
    paths: DataPaths, tmp_path: Path
) -> None:
    write_fixed_page_logs(paths, tmp_path)
    model = load_or_fit(paths)
    assert not model.available

    with pytest.raises(CorrectionUnavailableError, match=model.model_id):
        derive_dataset(paths, "from-logs")
    assert not paths.dataset_dir("from-logs").exists()

    summary = derive_dataset(paths, "from-logs", DerivationSettings(allow_uncorrected=True))
    facts = summary.derivation
    assert facts is not None
    assert (facts["corrected"], facts["click_model_id"], facts["snapshot_id"]) == (
        False,
        model.model_id,
        model.snapshot_id,
    )
    assert facts["correction_unavailable_reason"] == model.reason
    assert "NOT corrected" in facts["relevance_basis"]
    # Blue Lamp's 5 pairs (5 impressions each) are counted, not judged, and so is the query.
    assert (facts["pairs_seen"], facts["pairs_below_minimum"]) == (10, 5)
    assert (facts["logged_queries"], facts["queries_below_minimum"]) == (2, 1)

    dataset = load_dataset(paths, "from-logs")
    query_id = "lq_" + hashlib.sha256(b"red sofa").hexdigest()[:16]
    assert dataset.queries.to_pylist() == [
        {"query_id": query_id, "query_input": '{"text":"Red Sofa"}', "query_text": "Red Sofa"}
    ]
    # Per impression (30 each): d1 (14 + 5) / 30 = 0.63, d2 0.1, d3 0.033, d4 and d5 0.
    assert dataset.judgments.to_pylist() == [
        {"query_id": query_id, "document_id": d, "relevance": g}
        for d, g in zip(PAGE, [3, 2, 1, 0, 0], strict=True)
    ]
    evidence = read_evidence(paths, "from-logs")
    assert evidence.column("impressions").to_pylist() == [30] * 5
    assert evidence.column("gain_sum").to_pylist() == [19.0, 3.0, 1.0, 0.0, 0.0]
    assert evidence.column("relevance").to_pylist() == pytest.approx([19 / 30, 0.1, 1 / 30, 0, 0])
    assert (
        evidence.num_rows
        == pq.read_metadata(paths.dataset_dir("from-logs") / EVIDENCE_FILE).num_rows
    )
    assert [s.derivation for s in list_datasets(paths)] == [facts]


def test_the_minimum_and_thresholds_are_the_callers(paths: DataPaths, tmp_path: Path) -> None:
    write_fixed_page_logs(paths, tmp_path)
    derived = derive_judgments(
        paths,
        DerivationSettings(
            min_impressions=5, min_exposure=5, grade_thresholds=(0.5,), allow_uncorrected=True
        ),
    )
    assert derived.derivation["pairs_below_minimum"] == 0
    assert derived.queries.column("query_text").to_pylist() == sorted(
        ["Red Sofa", "Blue Lamp"],
        key=lambda t: "lq_" + hashlib.sha256(t.lower().encode()).hexdigest(),
    )
    assert derived.derivation["grade_counts"] == {"0": 9, "1": 1}


def test_no_logs_is_a_clear_error(paths: DataPaths) -> None:
    with pytest.raises(InvalidInputError, match="no logged executions were ingested"):
        derive_dataset(paths, "from-logs")
    assert not paths.dataset_dir("from-logs").exists()


@pytest.fixture(scope="module")
def derived_world(module_world_copy: DataPaths):
    """The small demo world with a dataset derived from its logs (defaults)."""
    derive_dataset(module_world_copy, "from-logs")
    return module_world_copy, load_dataset(module_world_copy, "from-logs")


def test_deriving_again_from_the_same_logs_gives_the_same_dataset(derived_world) -> None:
    paths, dataset = derived_world
    again = derive_dataset(paths, "again")
    assert again.dataset_id == dataset.summary.dataset_id
    assert again.derivation == dataset.summary.derivation
    evidence = read_evidence(paths, "again")
    assert evidence.column("impressions").to_numpy().min() >= 10
    assert evidence.column("exposure").to_numpy().min() >= 10
    assert (
        evidence.select(["query_id", "document_id"]).to_pylist()
        == dataset.judgments.select(["query_id", "document_id"]).to_pylist()
    )
