"""The demo's raw logs as JSON Lines text, built column-wise in Arrow (no Python loop per row).

Values are JSON text already (see json_strings); a null value leaves its field out of that line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.demo.retrievers import PROD
from eval_pipelines.core.demo.traffic import (
    PREVIOUS_METADATA,
    PREVIOUS_RETRIEVER,
    DemoLogStructure,
    Traffic,
)
from eval_pipelines.core.demo.users import INTERACTION_TYPES, SimulatedInteractions
from eval_pipelines.core.logs.tables import IMPRESSION

JsonColumn = pa.Array | pa.ChunkedArray
EXECUTION_PREFIX = "exec_demo_"
SESSION_PREFIX = "sess_demo_"
# An impression is logged when its page of results renders: the first soon after the search, each
# further page later (before any click on it, whose delay starts at 2 s + 1.5 s per position).
IMPRESSION_DELAY_S = 0.5


def json_strings(values: JsonColumn | np.ndarray) -> pa.Array:
    """Strings as JSON string literals (quotes and backslashes escaped; ids hold no control chars)."""
    text = pa.array(values, pa.string()) if isinstance(values, np.ndarray) else values
    text = pc.replace_substring(pc.replace_substring(text, "\\", "\\\\"), '"', '\\"')
    return pc.binary_join_element_wise('"', text, '"', "")


def json_lists(values: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """Rows of a string matrix as JSON lists, row r holding its first lengths[r] values."""
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    kept = np.arange(values.shape[1])[None, :] < lengths[:, None]
    items = pa.ListArray.from_arrays(offsets, json_strings(values[kept]))
    joined = pc.binary_join_element_wise("[", pc.binary_join(items, ", "), "]", "")
    return joined


def json_integers(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values, pa.int64()), pa.string())


def json_lines(fields: Sequence[tuple[str, JsonColumn]]) -> str:
    """One JSON object per row, fields in the given order; the first field must never be null."""
    parts = []
    for number, (name, values) in enumerate(fields):
        lead = "{" if number == 0 else ", "
        parts.append(
            pc.binary_join_element_wise(f'{lead}"{name}": ', values, "", null_handling="emit_null")
        )
    lines = pc.binary_join_element_wise(*parts, "}\n", "", null_handling="skip")
    whole = pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines)
    return pc.binary_join(whole, "")[0].as_py()


def iso_times(times: np.ndarray) -> np.ndarray:
    """datetime64[ms] values as ISO 8601 UTC text."""
    return np.char.add(np.datetime_as_string(times, unit="ms"), "Z")


def numbered_ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """prefix + zero-padded number, e.g. exec_demo_000001."""
    return np.char.add(prefix, np.char.zfill(numbers.astype(str), width))


@dataclass(frozen=True)
class InteractionLines:
    """The interactions' JSONL text and what it holds."""

    text: str
    count: int
    counts_by_type: dict[str, int]


class DemoLogLines:
    """The demo's executions and interactions as JSONL; ids and times shared by both files."""

    def __init__(
        self,
        n_executions: int,
        n_users: int,
        user_of: np.ndarray,
        created: np.ndarray,
        document_ids: np.ndarray,
    ) -> None:
        width = max(6, len(str(n_executions)))
        numbers = np.arange(1, n_executions + 1)
        self.execution_ids = numbered_ids(EXECUTION_PREFIX, numbers, width)
        self.session_ids = numbered_ids(SESSION_PREFIX, numbers, width)
        self.user_ids = numbered_ids("user_demo_", np.arange(n_users), 5)[user_of]
        self.created = created
        self.created_at = iso_times(created)
        self.document_ids = document_ids

    def executions(
        self,
        structure: DemoLogStructure,
        traffic: Traffic,
        page_of: np.ndarray,
        used: np.ndarray,
        texts: np.ndarray,
        leaf_ids: np.ndarray,
    ) -> str:
        """One line per search: the ranker that served it, what it served, and its metadata."""
        retrievers = np.array([PROD, PREVIOUS_RETRIEVER, PROD], dtype=object)
        metadata = pa.array(
            [None, json.dumps(PREVIOUS_METADATA), json.dumps(structure.exploration_metadata())],
            pa.string(),
        )
        query_json = pa.array([json.dumps({"text": str(texts[i])}) for i in used], pa.string())
        leaf_json = pa.array([json.dumps([str(leaf_ids[i])]) for i in used], pa.string())
        served = traffic.served
        page = pa.array(page_of, pa.int64())
        return json_lines(
            [
                ("execution_id", json_strings(self.execution_ids)),
                ("retriever_id", json_strings(retrievers[traffic.kind])),
                ("session_id", json_strings(self.session_ids)),
                ("user_id", json_strings(self.user_ids)),
                ("query_input", query_json.take(page)),
                (
                    "documents",
                    json_lists(self.document_ids[np.maximum(served, 0)], (served >= 0).sum(1)),
                ),
                ("taxonomy_node_ids", leaf_json.take(page)),
                ("created_at", json_strings(self.created_at)),
                ("metadata", metadata.take(pa.array(traffic.kind, pa.int64()))),
            ]
        )

    def interactions(
        self,
        simulated: SimulatedInteractions,
        impressions: np.ndarray,
        served: np.ndarray,
        page_size: int,
    ) -> InteractionLines:
        """Clicks, carts and purchases, plus one impression per rendered slot where logged; ordered
        by search, position, then type."""
        impression_code = len(INTERACTION_TYPES)
        execution = np.concatenate([simulated.execution, impressions[:, 0]])
        position = np.concatenate([simulated.position, impressions[:, 1]])
        type_code = np.concatenate(
            [simulated.type_code, np.full(len(impressions), impression_code)]
        )
        delay_s = np.concatenate(
            [simulated.delay_s, IMPRESSION_DELAY_S * (1 + impressions[:, 1] // page_size)]
        )
        order = np.lexsort((type_code, position, execution))
        execution, position = execution[order], position[order]
        type_code, delay_s = type_code[order], delay_s[order]
        names = np.array([*INTERACTION_TYPES, IMPRESSION], dtype=object)
        times = self.created[execution] + np.round(delay_s * 1000).astype("timedelta64[ms]")
        text = json_lines(
            [
                (
                    "interaction_id",
                    json_strings(numbered_ids("int_demo_", np.arange(1, len(order) + 1), 7)),
                ),
                ("execution_id", json_strings(self.execution_ids[execution])),
                ("document_id", json_strings(self.document_ids[served[execution, position]])),
                ("interaction_type", json_strings(names[type_code])),
                ("position", json_integers(position)),
                ("session_id", json_strings(self.session_ids[execution])),
                ("user_id", json_strings(self.user_ids[execution])),
                ("timestamp", json_strings(iso_times(times))),
            ]
        )
        counts = np.bincount(type_code, minlength=len(names))
        return InteractionLines(
            text, len(order), {str(name): int(counts[i]) for i, name in enumerate(names)}
        )
