"""The demo retrievers, whose true quality is known by construction.

demo_prod serves the logs. demo_better keeps prod's lexical candidates and breaks its many near-ties
with `rating` (a noisy view of latent quality, which the true grades reward): because it mostly
re-orders documents users could see, its gain also shows when replaying logs biased by prod's
ranking. demo_worse lets `popularity` (unrelated to relevance) dominate. demo_prod_copy is prod under another name (A/A
control); demo_http is demo_better behind a loopback HTTP server.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from eval_pipelines.core.demo.catalog import COLLECTION
from eval_pipelines.core.paths import DataPaths, validate_id
from eval_pipelines.core.storage import write_text_atomic

PROD = "demo_prod"
BETTER = "demo_better"
WORSE = "demo_worse"
PROD_COPY = "demo_prod_copy"
HTTP = "demo_http"
DEMO_RETRIEVER_IDS: tuple[str, ...] = (PROD, BETTER, WORSE, PROD_COPY, HTTP)

_LEXICAL = {
    "stage_id": "feature_search",
    "parameters": {"fields": ["title", "description"], "top_k": 100},
}
_LIMIT = {"stage_id": "limit", "parameters": {"n": 100}}


def _pipeline(retriever_id: str, name: str, stages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": retriever_id,
        "name": name,
        "kind": "pipeline",
        "collection": COLLECTION,
        "stages": copy.deepcopy(stages),
    }


def demo_retriever_configs() -> dict[str, dict[str, Any]]:
    """Retriever id -> the YAML document, in a fixed order."""
    prod_stages = [_LEXICAL, _LIMIT]
    return {
        PROD: _pipeline(PROD, "Production BM25 (title + description)", prod_stages),
        BETTER: _pipeline(
            BETTER,
            "BM25 + rating rerank",
            [
                _LEXICAL,
                {
                    "stage_id": "rerank",
                    "parameters": {
                        "score_weight": 1.0,
                        "weights": {"rating": 0.5},
                        "normalize": "minmax",
                    },
                },
                _LIMIT,
            ],
        ),
        WORSE: _pipeline(
            WORSE,
            "BM25 + popularity-dominated rerank",
            [
                _LEXICAL,
                {
                    "stage_id": "rerank",
                    "parameters": {
                        "score_weight": 0.3,
                        "weights": {"popularity": 1.0},
                        "normalize": "minmax",
                    },
                },
                _LIMIT,
            ],
        ),
        PROD_COPY: _pipeline(PROD_COPY, "Production BM25, copy (A/A control)", prod_stages),
        HTTP: {
            "id": HTTP,
            "name": "demo_better over HTTP (loopback server)",
            "kind": "http",
            "http": {
                "url": "http://127.0.0.1:0/search",
                "timeout_s": 5.0,
                "max_retries": 2,
                "concurrency": 4,
                "limit": 100,
            },
            "local_server": {"backend": BETTER},
        },
    }


def write_demo_retrievers(paths: DataPaths) -> dict[str, Any]:
    """Write one YAML per demo retriever under the retrievers directory; returns a summary."""
    written = []
    for retriever_id, config in demo_retriever_configs().items():
        text = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
        path = paths.retrievers_dir / f"{validate_id(retriever_id, 'retriever_id')}.yaml"
        write_text_atomic(text, path)
        written.append(retriever_id)
    return {"retrievers": written, "directory": str(paths.retrievers_dir), "baseline": PROD}
