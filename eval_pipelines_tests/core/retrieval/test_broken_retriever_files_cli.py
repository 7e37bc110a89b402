"""Through the real CLI: one broken retriever file stops only the requests that need it (issue 10,
point 12). A data directory with the demo retrievers, a file with a bad stage, a file that is not
YAML, and a second file defining demo_worse: benchmarks and evaluations on the good ids run to
completion; a request for the broken, unreadable or duplicated one exits 2 naming the file.
"""

from __future__ import annotations

import json
import shutil

from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.cli.conftest import run_cli

UNREADABLE = "id: [unclosed\nkind: pipeline\n"


def test_cli_requests_for_good_retrievers_run_and_the_broken_one_exits_2(
    world_copy: DataPaths,
) -> None:
    retrievers = world_copy.retrievers_dir
    broken = retrievers / "broken.yaml"
    broken.write_text(
        "id: broken\nkind: pipeline\ncollection: products\nstages:\n  - stage_id: magic\n"
    )
    unreadable = retrievers / "unreadable.yaml"
    unreadable.write_text(UNREADABLE)
    shutil.copy(retrievers / "demo_worse.yaml", retrievers / "demo_worse_again.yaml")
    root = world_copy.root

    benchmark = run_cli(
        root, "benchmark", "create", "--name", "good ones", "--baseline", "demo_prod",
        "--candidate", "demo_better", "--sessions", "40", "--wait",
    )  # fmt: skip
    assert benchmark.returncode == 0, benchmark.stderr[-3000:]
    assert json.loads(benchmark.stdout)["status"] == "completed"
    evaluation = run_cli(
        root, "evaluation", "run", "demo_prod", "--dataset", "demo-judgments", "--wait"
    )
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    assert json.loads(evaluation.stdout)["status"] == "completed"

    before = sorted(p.name for p in (root / "benchmarks").iterdir())
    refused = run_cli(
        root, "benchmark", "create", "--name", "needs the broken one", "--baseline", "demo_prod",
        "--candidate", "broken",
    )  # fmt: skip
    assert refused.returncode == 2
    assert "candidate_retriever_ids.0: retriever 'broken' cannot be used: " in refused.stderr
    assert f"{broken}: stages[0].stage_id: unknown stage 'magic'" in refused.stderr
    assert "no retrievers are configured" not in refused.stderr
    assert sorted(p.name for p in (root / "benchmarks").iterdir()) == before

    for retriever_id, fragments in {
        "broken": ["retriever_id: retriever 'broken' cannot be used", f"{broken}: stages[0]"],
        "ghost": ["1 retriever file could not be read and may define it", f"{unreadable}: yaml"],
        "demo_worse": ["duplicate id 'demo_worse'", "demo_worse_again.yaml"],
    }.items():
        result = run_cli(root, "evaluation", "run", retriever_id, "--dataset", "demo-judgments")
        assert result.returncode == 2, (retriever_id, result.stderr)
        for fragment in fragments:
            assert fragment in result.stderr, (retriever_id, result.stderr)

    listed = run_cli(root, "retrievers", "list")
    assert listed.returncode == 2
    assert "demo_prod" in listed.stdout and "demo_better" in listed.stdout
    for fragment in ("broken.yaml: stages[0]", "unreadable.yaml: yaml", "duplicate id"):
        assert fragment in listed.stderr
