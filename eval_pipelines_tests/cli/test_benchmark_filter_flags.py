"""Every session_filter field has a flag on `benchmark create` and `benchmark plan`, laid over the
request file; a sample that mixes retrievers' sessions says so in the record."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc

from eval_pipelines.core.benchmarks.sampling import SessionFilter, sample_sessions
from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.cli.conftest import run_cli

FLAGS = [
    "--retriever-filter", "demo_prod",
    "--taxonomy-node", "furniture",
    "--taxonomy-node", "kitchen",
    "--since", "2026-10-10T00:00:00Z",
    "--until", "2026-10-31T23:59:59Z",
    "--interaction-type", "click",
    "--interaction-type", "purchase",
    "--min-interactions", "2",
    "--strategy", "stratified",
]  # fmt: skip


def test_create_takes_every_filter_field_from_its_flags(
    world_copy: DataPaths, tmp_path: Path
) -> None:
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps(
            {
                "benchmark_name": "from a file",
                "baseline_retriever_id": "demo_prod",
                "candidate_retriever_ids": ["demo_better"],
                "session_filter": {
                    "retriever_ids": ["demo_prod_previous"],
                    "time_range": {"start": "2026-09-01T00:00:00Z"},
                    "interaction_weights": {"weights": {"purchase": 8.0}},
                },
            }
        )
    )
    created = run_cli(world_copy.root, "benchmark", "create", str(request), *FLAGS)
    assert created.returncode == 0, created.stderr
    session_filter = json.loads(created.stdout)["session_filter"]
    assert session_filter["retriever_ids"] == ["demo_prod"]  # the flag wins over the file
    assert session_filter["taxonomy_node_ids"] == ["furniture", "kitchen"]
    assert session_filter["time_range"] == {
        "start": "2026-10-10T00:00:00Z",
        "end": "2026-10-31T23:59:59Z",
    }
    assert session_filter["interaction_types"] == ["click", "purchase"]
    assert session_filter["min_interactions"] == 2
    assert session_filter["sample_strategy"] == "stratified"
    assert session_filter["interaction_weights"]["weights"]["purchase"] == 8.0  # kept from the file


def test_a_bad_flag_names_its_field_and_nothing_is_created(world_copy: DataPaths) -> None:
    base = ["benchmark", "create", "--name", "x", "--baseline", "demo_prod"]
    base += ["--candidate", "demo_better"]
    for flags, problem in (
        (["--since", "yesterday"], "session_filter.time_range.start: 'yesterday' is not an ISO"),
        (
            ["--since", "2026-10-31T00:00:00Z", "--until", "2026-10-01T00:00:00Z"],
            "session_filter.time_range: start 2026-10-31T00:00:00Z is after end",
        ),
        (["--min-interactions", "0"], "session_filter.min_interactions"),
    ):
        refused = run_cli(world_copy.root, *base, *flags)
        assert refused.returncode == 2, flags
        assert problem in refused.stderr, (flags, refused.stderr)
    folder = world_copy.root / "benchmarks"
    assert not folder.exists() or not any(folder.iterdir())


def test_plan_takes_the_same_flags(world_copy: DataPaths) -> None:
    def population(*flags: str) -> int:
        planned = run_cli(
            world_copy.root, "benchmark", "plan", "--baseline", "demo_prod", "--sd", "0.2",
            "--icc", "0.05", "--json", *flags,
        )  # fmt: skip
        assert planned.returncode == 0, planned.stderr
        return json.loads(planned.stdout)["population"]["sessions"]

    everything = population()
    served_by_prod = population("--retriever-filter", "demo_prod")
    recent = population("--retriever-filter", "demo_prod", "--since", "2026-10-25T00:00:00Z")
    assert everything > served_by_prod > recent > 0


def test_a_sample_mixing_retrievers_says_so(small_world: DataPaths) -> None:
    mixed = sample_sessions(small_world, SessionFilter(), 300, 0)
    counts = {
        row["values"]: row["counts"]
        for row in pc.value_counts(mixed.sessions.column("retriever_id")).to_pylist()
    }
    assert set(counts) == {"demo_prod", "demo_prod_previous"}
    (warning,) = [w for w in mixed.warnings if w.startswith("the sample mixes")]
    assert warning == (
        "the sample mixes sessions logged by 2 retrievers (demo_prod"
        f" {counts['demo_prod']}, demo_prod_previous {counts['demo_prod_previous']}): filter"
        " session_filter.retriever_ids (--retriever-filter) to replay one ranker's traffic"
    )
    one = sample_sessions(small_world, SessionFilter(retriever_ids=("demo_prod",)), 300, 0)
    assert not [w for w in one.warnings if w.startswith("the sample mixes")]
