"""What users told us about each (query, document) pair over the whole logs, corrected for position.

exposure is the expected number of times the pair was examined: the sum, over every time it was
served, of the clipped relative propensity at its position. relevance = gain_sum / exposure and
interaction_rate = interacted_sessions / exposure are then rates per examination rather than per
impression, so a pair always served at position 20 is not judged by its few clicks there. When the
click model is unavailable no curve is guessed: every impression counts as one examination (the
uncorrected rates), and the caller, which holds the model, says so.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import pyarrow as pa

from eval_pipelines.core.click_model.model import ClickModel
from eval_pipelines.core.click_model.observations import SERVED_SQL, log_connection
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.query_keys import normalized_text

EVIDENCE_SQL = f"""
    WITH served AS ({SERVED_SQL}),
    shown AS (
        SELECT s.query_key, s.document_id, s.position, count(*) AS n FROM served s
        WHERE NOT $filtered OR s.query_key IN (SELECT query_key FROM wanted)
        GROUP BY s.query_key, s.document_id, s.position
    ),
    -- Floating sums in a fixed order: the same logs give the same evidence however DuckDB
    -- splits the scan (the logs are stored one part per day).
    exposure AS (
        SELECT c.query_key, c.document_id, CAST(sum(c.n) AS BIGINT) AS impressions,
            sum(c.n * p.propensity ORDER BY c.position) AS exposure
        FROM shown c JOIN propensity_at p USING (position)
        GROUP BY c.query_key, c.document_id
    ),
    session_gains AS (
        SELECT k.query_key, i.session_id, i.document_id, max(w.weight) AS gain
        FROM log_interactions i
        JOIN type_weights w ON w.interaction_type = i.interaction_type
        JOIN log_executions e ON e.execution_id = i.execution_id
        JOIN query_keys k ON k.query_text = e.query_text
        GROUP BY k.query_key, i.session_id, i.document_id
    ),
    gains AS (
        SELECT query_key, document_id, sum(gain ORDER BY gain) AS gain_sum,
            count(*) AS interacted_sessions
        FROM session_gains GROUP BY query_key, document_id
    )
    SELECT x.query_key, x.document_id, x.impressions, x.exposure,
        coalesce(g.gain_sum, 0.0)::DOUBLE AS gain_sum,
        coalesce(g.interacted_sessions, 0)::BIGINT AS interacted_sessions,
        coalesce(g.gain_sum, 0.0) / x.exposure AS relevance,
        coalesce(g.interacted_sessions, 0) / x.exposure AS interaction_rate
    FROM exposure x LEFT JOIN gains g USING (query_key, document_id)
    ORDER BY x.query_key, x.document_id
"""

EVIDENCE_SCHEMA = pa.schema(
    [
        pa.field("query_key", pa.string()),
        pa.field("document_id", pa.string()),
        pa.field("impressions", pa.int64()),
        pa.field("exposure", pa.float64()),
        pa.field("gain_sum", pa.float64()),
        pa.field("interacted_sessions", pa.int64()),
        pa.field("relevance", pa.float64()),
        pa.field("interaction_rate", pa.float64()),
    ]
)


def query_document_evidence(
    paths: DataPaths,
    model: ClickModel,
    weights: Mapping[str, float],
    counted: Collection[str],
    query_texts: pa.Array | None = None,
    clip: float = 0.05,
) -> pa.Table:
    """One row per (query_key, document_id) ever served for query_texts' queries (all when None).

    gain_sum adds, per session, the largest weight among its counted interactions with the pair;
    interacted_sessions counts sessions with any. Weights of types outside counted are ignored;
    a counted type without a weight is refused.
    """
    with log_connection(paths) as con:
        deepest = con.execute(
            "SELECT coalesce(max(len(documents)), 0) FROM log_executions"
        ).fetchall()[0][0]
        positions = np.arange(max(int(deepest), 1))
        propensity = (
            model.propensity(positions, clip) if model.available else np.ones(positions.size)
        )
        con.register(
            "propensity_at",
            pa.table({"position": pa.array(positions, pa.int32()), "propensity": propensity}),
        )
        unweighted = sorted(t for t in counted if t not in weights)
        if unweighted:
            raise InvalidInputError(
                f"weights: no weight for counted interaction type(s) {', '.join(unweighted)}"
            )
        types = sorted(counted)
        con.register(
            "type_weights",
            pa.table(
                {
                    "interaction_type": pa.array(types, pa.string()),
                    "weight": pa.array([float(weights[t]) for t in types], pa.float64()),
                }
            ),
        )
        wanted = normalized_text(
            query_texts if query_texts is not None else pa.array([], pa.string())
        )
        con.register("wanted", pa.table({"query_key": wanted}))
        table = con.sql(EVIDENCE_SQL, params={"filtered": query_texts is not None}).to_arrow_table()
    return table.cast(EVIDENCE_SCHEMA)
