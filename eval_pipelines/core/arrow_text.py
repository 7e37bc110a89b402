"""One way to take a string column from a caller's Arrow data: plain, dictionary, large or all-null, or a clear error."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def string_array(
    column: pa.Array | pa.ChunkedArray, field: str, *, nullable: bool = True
) -> pa.Array:
    """column as one plain string array; ValueError naming field when it is not text (or has a null
    and nullable is False), so callers' columns of any string encoding work the same."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_null(column.type):
        column = column.cast(pa.string())
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise ValueError(f"{field}: type {column.type} is not a string column")
    if not nullable and column.null_count:
        raise ValueError(f"{field}: row {first_null(column)} is null")
    return column.cast(pa.string())


def first_null(column: pa.Array) -> int:
    """Index of the first null in column (which has one)."""
    return int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
