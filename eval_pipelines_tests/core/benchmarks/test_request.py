"""A request is validated completely before anything exists, and every problem is named at once."""

from pathlib import Path

import pytest

from eval_pipelines.core.benchmarks.request import RequestValidationError, parse_request
from eval_pipelines.core.paths import DataPaths

VALID = {
    "benchmark_name": "nightly",
    "baseline_retriever_id": "prod",
    "candidate_retriever_ids": ["cand"],
}


@pytest.fixture
def paths(two_http_retrievers: DataPaths) -> DataPaths:
    return two_http_retrievers


def problems(data: object, paths: DataPaths) -> list[str]:
    with pytest.raises(RequestValidationError) as caught:
        parse_request(data, paths)
    return caught.value.problems


def test_a_valid_request_gets_the_documented_defaults(paths: DataPaths) -> None:
    request = parse_request(VALID, paths)
    assert request.session_count == 1000
    assert request.sample_strategy == "random"
    assert request.min_interactions == 1
    assert request.seed == 0 and request.replay_depth == 100 and request.epsilon == 0.01
    assert request.weights == {"click": 1.0, "add_to_cart": 2.0, "bookmark": 1.5, "purchase": 5.0}
    assert request.counted_types == {"click", "add_to_cart", "bookmark", "purchase"}
    assert request.retriever_ids == ("prod", "cand")


def test_custom_weights_override_and_extend_the_defaults(paths: DataPaths) -> None:
    request = parse_request(
        {
            **VALID,
            "session_filter": {"interaction_weights": {"weights": {"click": 0.5, "share": 3}}},
        },
        paths,
    )
    assert request.weights["click"] == 0.5
    assert request.weights["share"] == 3.0
    assert "share" in request.counted_types


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"benchmark_name": ""}, "benchmark_name"),
        ({"benchmark_name": "x" * 256}, "benchmark_name"),
        ({"candidate_retriever_ids": []}, "candidate_retriever_ids"),
        ({"session_count": 9}, "session_count"),
        ({"session_count": 10001}, "session_count"),
        ({"session_count": "100"}, "session_count"),
        ({"session_filter": {"sample_strategy": "newest"}}, "session_filter.sample_strategy"),
        ({"session_filter": {"min_interactions": 0}}, "session_filter.min_interactions"),
        ({"baseline_retriever_id": "nope"}, "baseline_retriever_id: unknown retriever 'nope'"),
        (
            {"candidate_retriever_ids": ["cand", "ghost"]},
            "candidate_retriever_ids.1: unknown retriever 'ghost'",
        ),
        ({"candidate_retriever_ids": ["cand", "cand"]}, "listed more than once"),
        ({"candidate_retriever_ids": ["prod"]}, "is the baseline too"),
        (
            {
                "session_filter": {
                    "time_range": {"start": "2026-10-02T00:00:00Z", "end": "2026-10-01T00:00:00Z"}
                }
            },
            "session_filter.time_range: start 2026-10-02T00:00:00Z is after end",
        ),
        (
            {"session_filter": {"time_range": {"start": "yesterday"}}},
            "session_filter.time_range.start",
        ),
        (
            {"session_filter": {"interaction_weights": {"weights": {"click": -1}}}},
            "session_filter.interaction_weights.weights.click: expected a finite number >= 0",
        ),
        (
            {"session_filter": {"interaction_weights": {"weights": {"click": float("nan")}}}},
            "session_filter.interaction_weights.weights.click",
        ),
        (
            {"session_filter": {"interaction_types": []}},
            "session_filter.interaction_types: an empty list",
        ),
        ({"session_filter": {"interaction_types": ["view"]}}, "session_filter.interaction_types"),
        ({"seed": -1}, "seed"),
        ({"replay_depth": 0}, "replay_depth"),
        ({"epsilon": float("inf")}, "epsilon"),
        ({"sesion_count": 100}, "sesion_count: unknown field"),
    ],
)
def test_each_rule_names_its_field(paths: DataPaths, change: dict, expected: str) -> None:
    found = problems({**VALID, **change}, paths)
    assert any(expected in problem for problem in found), found


def test_every_violation_is_listed_in_one_error(paths: DataPaths) -> None:
    found = problems(
        {
            "benchmark_name": "",
            "baseline_retriever_id": "nope",
            "candidate_retriever_ids": ["ghost"],
            "session_count": 5,
            "session_filter": {
                "time_range": {"start": "2026-10-02T00:00:00Z", "end": "2026-10-01T00:00:00Z"}
            },
        },
        paths,
    )
    joined = "\n".join(found)
    for field in (
        "benchmark_name",
        "session_count",
        "time_range",
        "baseline_retriever_id",
        "candidate_retriever_ids.0",
    ):
        assert field in joined
    assert len(found) >= 5


def test_not_an_object_and_no_retrievers(tmp_path: Path) -> None:
    empty = DataPaths(tmp_path / "empty")
    assert problems([1, 2], empty) == ["(request): expected a JSON object, got list"]
    assert any("no retrievers are configured" in p for p in problems(VALID, empty))
