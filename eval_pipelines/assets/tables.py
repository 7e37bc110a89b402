"""A core table (typed columns and rows) as Dagster's table metadata, so the UI shows a record's
numbers in typed columns instead of a markdown picture of them."""

from collections.abc import Mapping, Sequence
from typing import Any

from dagster import MetadataValue, TableColumn, TableMetadataValue, TableRecord, TableSchema

from eval_pipelines.core.reports.verdict_table import Column

# The core's column types under the names Dagster's schema (and its UI) uses.
DAGSTER_TYPES = {"str": "string", "int": "int", "float": "float", "bool": "bool"}


def table_schema(columns: Sequence[Column]) -> TableSchema:
    return TableSchema(
        columns=[TableColumn(c.name, DAGSTER_TYPES[c.type], c.description) for c in columns]
    )


def table_metadata(
    columns: Sequence[Column], rows: Sequence[Mapping[str, Any]]
) -> TableMetadataValue:
    """Every row, each with exactly the schema's columns (a row missing one is a KeyError: the
    core's row builder and its columns disagree, which no view may paper over)."""
    return MetadataValue.table(
        [TableRecord({c.name: row[c.name] for c in columns}) for row in rows],
        table_schema(columns),
    )
