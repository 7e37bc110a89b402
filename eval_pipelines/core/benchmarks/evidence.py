"""What the whole logs say beyond a benchmark's sample, captured when it is drawn: the click model of
the logs' snapshot and what every user of the sampled queries did with each document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from eval_pipelines.core.benchmarks.estimators import EstimatorChoice
from eval_pipelines.core.benchmarks.request import BenchmarkRequest
from eval_pipelines.core.click_model import load_or_fit, query_document_evidence
from eval_pipelines.core.paths import DataPaths


@dataclass(frozen=True)
class SampleEvidence:
    click_model: dict[str, Any]
    evidence: pa.Table
    choice: EstimatorChoice


def sample_evidence(
    paths: DataPaths, request: BenchmarkRequest, sessions: pa.Table
) -> SampleEvidence:
    """The snapshot's click model (fitted once per snapshot, then read back), the sampled queries'
    query-document evidence under the request's weights, and the estimator they allow."""
    model = load_or_fit(paths)
    evidence = query_document_evidence(
        paths,
        model,
        request.weights,
        request.counted_types,
        sessions.column("query_text"),
        request.propensity_clip,
    )
    described = model.to_dict(timing=False)
    return SampleEvidence(described, evidence, request.estimator_choice(described))
