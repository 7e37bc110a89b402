"""Ground-truth datasets: import (GroundTruthQuery JSONL, TREC, BEIR), store, list and load.

readers.py documents the formats and how `auto` tells them apart (roles.py), with one module per
format (ground_truth_jsonl.py, trec_files.py, beir_files.py); store.py the layout on disk.
"""

from eval_pipelines.core.datasets.problems import DatasetInputError, Problem
from eval_pipelines.core.datasets.readers import ParsedDataset, read_dataset_files
from eval_pipelines.core.datasets.roles import FORMATS
from eval_pipelines.core.datasets.store import (
    Dataset,
    DatasetSummary,
    dataset_id,
    dataset_tables,
    import_dataset,
    list_datasets,
    load_dataset,
)

__all__ = [
    "FORMATS",
    "Dataset",
    "DatasetInputError",
    "DatasetSummary",
    "ParsedDataset",
    "Problem",
    "dataset_id",
    "dataset_tables",
    "import_dataset",
    "list_datasets",
    "load_dataset",
    "read_dataset_files",
]
