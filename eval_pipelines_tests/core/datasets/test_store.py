"""Storing datasets: --replace, stable ids, listing, loading, and a folder that is swapped whole."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from eval_pipelines.core.datasets import (
    DatasetInputError,
    import_dataset,
    list_datasets,
    load_dataset,
)
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths

ROWS = [
    {"query_id": "q1", "query_input": {"text": "lamp"}, "relevant_documents": ["d1", "d2"]},
    {
        "query_id": "q2",
        "query_input": {"text": "sofa"},
        "relevant_documents": ["d3"],
        "relevance_scores": {"d3": 2, "d4": 0},
    },
]


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def folder_entries(paths: DataPaths) -> list[str]:
    """Everything in the datasets folder, hidden staging folders included."""
    return sorted(p.name for p in paths.datasets_dir.iterdir())


def test_stored_files_and_listing(paths: DataPaths, tmp_path: Path) -> None:
    source = write_rows(tmp_path / "truth.jsonl", ROWS)
    beta = import_dataset(paths, "beta", [source])
    alpha = import_dataset(paths, "alpha", [source])

    assert folder_entries(paths) == ["alpha", "beta"]
    assert sorted(p.name for p in (paths.datasets_dir / "beta").iterdir()) == [
        "dataset.json",
        "judgments.parquet",
        "queries.parquet",
    ]
    stored_summary = json.loads((paths.datasets_dir / "beta" / "dataset.json").read_text())
    assert stored_summary == beta.to_dict()
    assert list_datasets(paths) == [alpha, beta]
    assert alpha.dataset_id == beta.dataset_id  # the id is the content's, not the name's


def test_listing_skips_staging_folders_and_an_empty_data_dir(
    paths: DataPaths, tmp_path: Path
) -> None:
    assert list_datasets(paths) == []
    import_dataset(paths, "kept", [write_rows(tmp_path / "truth.jsonl", ROWS)])
    (paths.datasets_dir / ".kept.abc123.new").mkdir()
    (paths.datasets_dir / "no-summary").mkdir()

    assert [s.name for s in list_datasets(paths)] == ["kept"]


def test_an_existing_name_needs_replace(paths: DataPaths, tmp_path: Path) -> None:
    first = import_dataset(paths, "truth", [write_rows(tmp_path / "a.jsonl", ROWS)])
    changed = write_rows(tmp_path / "b.jsonl", ROWS[:1])

    with pytest.raises(InvalidInputError, match=r"^dataset truth exists; use --replace$"):
        import_dataset(paths, "truth", [changed])
    assert load_dataset(paths, "truth").summary == first

    second = import_dataset(paths, "truth", [changed], replace=True)

    assert second.dataset_id != first.dataset_id
    loaded = load_dataset(paths, "truth")
    assert loaded.summary == second
    assert loaded.queries.column("query_id").to_pylist() == ["q1"]
    assert folder_entries(paths) == ["truth"]  # the old version and the staging folder are gone


def test_replace_with_bad_files_keeps_the_old_dataset(paths: DataPaths, tmp_path: Path) -> None:
    first = import_dataset(paths, "truth", [write_rows(tmp_path / "a.jsonl", ROWS)])
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"query_id": "q1"\n', encoding="utf-8")

    with pytest.raises(DatasetInputError):
        import_dataset(paths, "truth", [broken], replace=True)

    assert load_dataset(paths, "truth").summary == first
    assert folder_entries(paths) == ["truth"]


def test_the_id_depends_on_content_only(paths: DataPaths, tmp_path: Path) -> None:
    original = import_dataset(paths, "a", [write_rows(tmp_path / "a.jsonl", ROWS)])
    again = import_dataset(paths, "a", [write_rows(tmp_path / "a.jsonl", ROWS)], replace=True)
    reordered = import_dataset(paths, "b", [write_rows(tmp_path / "b.jsonl", ROWS[::-1])])
    (tmp_path / "topics.tsv").write_text("q1\tlamp\nq2\tsofa\n", encoding="utf-8")
    (tmp_path / "x.qrels").write_text(
        "q2 0 d4 0\nq2 0 d3 2\nq1 0 d2 1\nq1 0 d1 1\n", encoding="utf-8"
    )
    as_trec = import_dataset(paths, "c", [tmp_path / "topics.tsv", tmp_path / "x.qrels"])
    regraded = [dict(ROWS[0]), {**ROWS[1], "relevance_scores": {"d3": 3, "d4": 0}}]
    other = import_dataset(paths, "d", [write_rows(tmp_path / "d.jsonl", regraded)])

    assert original.dataset_id == again.dataset_id == reordered.dataset_id == as_trec.dataset_id
    assert other.dataset_id != original.dataset_id
    assert re.fullmatch(r"ds_[0-9a-f]{12}", original.dataset_id)


def test_unknown_dataset_lists_the_known_ones(paths: DataPaths, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"'nope' not found \(known: none imported"):
        load_dataset(paths, "nope")
    source = write_rows(tmp_path / "a.jsonl", ROWS)
    import_dataset(paths, "zeta", [source])
    import_dataset(paths, "eta", [source])

    with pytest.raises(InvalidInputError) as caught:
        load_dataset(paths, "nope")

    assert str(caught.value) == "dataset: 'nope' not found (known: eta, zeta)"


@pytest.mark.parametrize("name", ["../escape", ".hidden", "a b", ""])
def test_names_must_be_safe_ids(paths: DataPaths, tmp_path: Path, name: str) -> None:
    source = write_rows(tmp_path / "a.jsonl", ROWS)

    with pytest.raises(InvalidInputError, match=r"^dataset: .* is not a valid id"):
        import_dataset(paths, name, [source])
    with pytest.raises(InvalidInputError, match=r"^dataset: .* is not a valid id"):
        load_dataset(paths, name)
    assert not paths.datasets_dir.exists()


def test_format_and_file_list_are_checked(paths: DataPaths, tmp_path: Path) -> None:
    source = write_rows(tmp_path / "a.jsonl", ROWS)

    with pytest.raises(InvalidInputError, match=r"^format: 'csv' is not one of auto, ground_truth"):
        import_dataset(paths, "a", [source], fmt="csv")
    with pytest.raises(InvalidInputError, match=r"^files: give at least one dataset file$"):
        import_dataset(paths, "a", [])
    assert not paths.datasets_dir.exists()
