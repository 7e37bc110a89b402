"""Vectorised lookups over the demo world's tables: ids to rows, and true grades of pairs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


class IdIndex:
    """Maps ids to their row, vectorised (one sort, then binary search)."""

    def __init__(self, ids: np.ndarray, field: str) -> None:
        self.ids = ids
        self.field = field
        self.order = np.argsort(ids)
        self.sorted_ids = ids[self.order]

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, wanted: np.ndarray) -> np.ndarray:
        """Row of each wanted id; raises naming an id that is unknown."""
        found = np.minimum(np.searchsorted(self.sorted_ids, wanted), len(self.order) - 1)
        rows = self.order[found]
        missing = self.ids[rows] != wanted
        if np.any(missing):
            raise ValueError(
                f"{self.field} {wanted[np.argmax(missing)]!r} is not in the demo world"
            )
        return rows


class GradeLookup:
    """True grade of (intent position, product position) pairs, 0 when not stored (vectorised)."""

    def __init__(self, grades: pa.Table, intents: IdIndex, documents: IdIndex) -> None:
        self.n_documents = len(documents)
        owner = intents.positions(grades.column("intent_id").to_numpy(False))
        position = documents.positions(grades.column("document_id").to_numpy(False))
        keys = owner.astype(np.int64) * self.n_documents + position
        order = np.argsort(keys)
        self.keys = keys[order]
        self.grades = grades.column("grade").to_numpy().astype(np.int64)[order]

    def __call__(self, intent: np.ndarray, document: np.ndarray) -> np.ndarray:
        keys = np.asarray(intent, dtype=np.int64) * self.n_documents + np.asarray(document)
        found = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where(self.keys[found] == keys, self.grades[found], 0)
