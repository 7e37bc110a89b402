"""In-process pipeline retrievers: configured stages run over a loaded collection."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from eval_pipelines.core.retrieval.collections import Collection
from eval_pipelines.core.retrieval.config import PIPELINE, RetrieverConfig
from eval_pipelines.core.retrieval.execution import (
    ERROR_INVALID_QUERY,
    ERROR_STAGE,
    CallRecorder,
    Execution,
    ScoredDocument,
    StageStatistics,
    check_limit,
    query_problem,
)
from eval_pipelines.core.retrieval.stages import Candidates, Stage, build_stage


class PipelineRetriever:
    """Runs the stages in order; a stage that raises fails the execution, never the caller."""

    def __init__(self, config: RetrieverConfig, collection: Collection) -> None:
        if config.kind != PIPELINE:
            raise ValueError(f"retriever {config.id!r} is not a pipeline retriever")
        self.config = config
        self.collection = collection
        self.stages: list[Stage] = [
            build_stage(s.name, s.stage_id, s.parameters, collection) for s in config.stages
        ]

    def search(
        self,
        query_input: dict[str, Any],
        limit: int | None = None,
        execution_id: str | None = None,
    ) -> Execution:
        limit = check_limit(limit)
        call = CallRecorder(
            retriever_id=self.config.id,
            pipeline_hash=self.config.pipeline_hash,
            query_input=query_input,
            execution_id=execution_id,
            total_stages=len(self.stages),
        )
        problem = query_problem(query_input)
        if problem is not None:
            return call.failed(ERROR_INVALID_QUERY, problem)
        candidates = Candidates.everything(self.collection.size)
        statistics: dict[str, StageStatistics] = {}
        for stage in self.stages:
            stage_started = time.perf_counter()
            try:
                output, metadata = stage.run(candidates, query_input)
            except Exception as exc:
                message = (
                    f"stage {stage.name!r} ({stage.stage_id}) failed: {type(exc).__name__}: {exc}"
                )
                statistics[stage.name] = StageStatistics.measured(
                    len(candidates),
                    0,
                    (time.perf_counter() - stage_started) * 1000.0,
                    cache_hit=False,
                    error=message,
                )
                return call.failed(ERROR_STAGE, message, statistics)
            statistics[stage.name] = StageStatistics.measured(
                len(candidates),
                len(output),
                (time.perf_counter() - stage_started) * 1000.0,
                cache_hit=False,
                metadata=metadata,
            )
            candidates = output
        rows, scores = candidates.rows, candidates.scores
        if limit is not None:
            rows, scores = rows[:limit], scores[:limit]
        ids = self.collection.document_ids[rows].tolist()
        documents = [
            ScoredDocument(document_id, score)
            for document_id, score in zip(ids, scores.tolist(), strict=True)
        ]
        return call.completed(documents, statistics)

    def search_many(
        self, query_inputs: Sequence[dict[str, Any]], limit: int | None = None
    ) -> list[Execution]:
        """One execution per query, in order (CPU-bound, so no threads)."""
        check_limit(limit)
        return [self.search(query_input, limit) for query_input in query_inputs]

    def close(self) -> None:
        """Nothing to release; present so every retriever can be closed alike."""
