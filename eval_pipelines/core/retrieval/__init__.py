"""The retriever engine: YAML configs, collections, BM25, pipeline stages, HTTP, executions and their store.

Plain Python (no Dagster): the asset layer and the CLI both call into this package.
"""

from eval_pipelines.core.retrieval.config import RetrieverConfig, RetrieverConfigError
from eval_pipelines.core.retrieval.execution import (
    Execution,
    Retriever,
    ScoredDocument,
    StageStatistics,
)
from eval_pipelines.core.retrieval.registry import (
    UnknownRetrieverError,
    load_retriever_config,
    load_retriever_configs,
    open_retriever,
    open_retrievers,
)

__all__ = [
    "Execution",
    "Retriever",
    "RetrieverConfig",
    "RetrieverConfigError",
    "ScoredDocument",
    "StageStatistics",
    "UnknownRetrieverError",
    "load_retriever_config",
    "load_retriever_configs",
    "open_retriever",
    "open_retrievers",
]
