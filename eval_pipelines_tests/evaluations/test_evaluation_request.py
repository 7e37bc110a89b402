"""An evaluation request is checked in full before anything is created."""

from pathlib import Path

import pytest

from eval_pipelines.core.datasets import import_dataset
from eval_pipelines.core.evaluations.request import EvaluationRequestError, parse_evaluation_request
from eval_pipelines.core.paths import DataPaths


@pytest.fixture
def paths(two_http_retrievers: DataPaths, tmp_path: Path) -> DataPaths:
    qrels = tmp_path / "tiny.qrels"
    qrels.write_text("q1 0 d1 1\n")
    topics = tmp_path / "tiny.topics.tsv"
    topics.write_text("q1\tred sofa\n")
    import_dataset(two_http_retrievers, "tiny", [qrels, topics], fmt="trec")
    return two_http_retrievers


def problems(data: object, paths: DataPaths) -> list[str]:
    with pytest.raises(EvaluationRequestError) as caught:
        parse_evaluation_request(data, paths)
    return caught.value.problems


def test_defaults_follow_the_seeds(paths: DataPaths) -> None:
    request = parse_evaluation_request({"retriever_id": "prod", "dataset_name": "tiny"}, paths)
    assert request.config == {
        "k_values": [1, 5, 10, 20],
        "metrics": ["precision", "recall", "f1", "map", "ndcg", "mrr"],
    }


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"retriever_id": "ghost", "dataset_name": "tiny"},
            "retriever_id: unknown retriever 'ghost'",
        ),
        ({"retriever_id": "prod", "dataset_name": "nope"}, "dataset_name: unknown dataset 'nope'"),
        ({"retriever_id": "prod", "dataset_name": ""}, "dataset_name: required"),
        (
            {
                "retriever_id": "prod",
                "dataset_name": "tiny",
                "evaluation_config": {"k_values": [0]},
            },
            "k_values.0",
        ),
        (
            {"retriever_id": "prod", "dataset_name": "tiny", "evaluation_config": {"k_values": []}},
            "k_values",
        ),
        (
            {
                "retriever_id": "prod",
                "dataset_name": "tiny",
                "evaluation_config": {"k_values": [5, 5]},
            },
            "listed twice",
        ),
        (
            {
                "retriever_id": "prod",
                "dataset_name": "tiny",
                "evaluation_config": {"metrics": ["ndcg", "bleu"]},
            },
            "evaluation_config.metrics.1: unknown metric 'bleu'",
        ),
        ({"retriever_id": "prod", "dataset_name": "tiny", "limit": 3}, "limit: unknown field"),
    ],
)
def test_each_rule_names_its_field(paths: DataPaths, data: dict, expected: str) -> None:
    found = problems(data, paths)
    assert any(expected in p for p in found), found


def test_every_problem_at_once(paths: DataPaths) -> None:
    found = problems(
        {
            "retriever_id": "ghost",
            "dataset_name": "nope",
            "evaluation_config": {"k_values": [0], "metrics": ["x"]},
        },
        paths,
    )
    assert len(found) == 4
