"""Logs drawn from a known position-based click model, written as JSONL and ingested like real logs.

Each query has a fixed page (its documents in one order); a share of searches shows a uniformly
shuffled top k, recorded in the execution's metadata as real systems record exploration. A user
examines position p with probability THETA[p] and clicks an examined document with probability
gamma[query, document]; a click is followed by add_to_cart with probability CART_SHARE.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from eval_pipelines.core.logs.ingest import ingest_files
from eval_pipelines.core.paths import DataPaths

THETA = np.array([1.0, 0.8, 0.66, 0.56, 0.48, 0.42, 0.37, 0.33, 0.3, 0.27, 0.25, 0.23])
CART_SHARE = 0.3
_START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Truth:
    theta: np.ndarray
    gamma: dict[tuple[str, str], float]


def write_logs(
    paths: DataPaths,
    directory: Path,
    *,
    searches: int = 6000,
    queries: int = 40,
    randomized_share: float = 0.3,
    seed: int = 1,
    prefix: str = "",
) -> Truth:
    """Write and ingest the logs; returns the truth they were drawn from."""
    rng = np.random.default_rng(seed)
    depth = THETA.size
    gamma = rng.uniform(0.05, 0.6, (queries, depth))
    query_of = rng.integers(0, queries, searches)
    shuffled = rng.random(searches) < randomized_share
    order = np.tile(np.arange(depth), (searches, 1))
    for row in np.flatnonzero(shuffled):
        order[row] = rng.permutation(depth)
    examined = rng.random((searches, depth)) < THETA
    relevant = rng.random((searches, depth)) < gamma[query_of[:, None], order]
    clicked = examined & relevant
    carted = clicked & (rng.random((searches, depth)) < CART_SHARE)
    executions, interactions = [], []
    for s in range(searches):
        execution_id = f"{prefix}e{s}"
        q = int(query_of[s])
        created = _START + timedelta(seconds=s)
        documents = [f"q{q}-d{int(d)}" for d in order[s]]
        row = {
            "execution_id": execution_id,
            "retriever_id": "prod",
            "session_id": f"{prefix}s{s}",
            "query_input": {"text": f"  Query {q} " if s % 2 else f"query {q}"},
            "documents": documents,
            "created_at": created.isoformat(),
        }
        if shuffled[s]:
            row["metadata"] = {"exploration": {"method": "shuffle_top_k", "k": depth}}
        executions.append(json.dumps(row))
        for p in np.flatnonzero(clicked[s]):
            types = ["click", "add_to_cart"] if carted[s, p] else ["click"]
            interactions.append(
                json.dumps(
                    {
                        "execution_id": execution_id,
                        "document_id": documents[p],
                        "interaction_type": types,
                        "position": int(p),
                        "timestamp": (created + timedelta(seconds=1)).isoformat(),
                    }
                )
            )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{prefix}executions.jsonl").write_text("\n".join(executions) + "\n")
    (directory / f"{prefix}interactions.jsonl").write_text("\n".join(interactions) + "\n")
    ingest_files(paths, "executions", [directory / f"{prefix}executions.jsonl"])
    ingest_files(paths, "interactions", [directory / f"{prefix}interactions.jsonl"])
    truth = {
        (f"query {q}", f"q{q}-d{d}"): float(gamma[q, d])
        for q in range(queries)
        for d in range(depth)
    }
    return Truth(THETA, truth)
