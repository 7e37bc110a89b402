"""judged@10 where the CLI prints evaluation metrics: the demo's evaluation table."""

from pathlib import Path

from eval_pipelines_tests.cli.conftest import CliResult


def test_the_demo_table_shows_judged_at_10(small_demo: tuple[Path, CliResult]) -> None:
    _, result = small_demo
    lines = result.stdout.splitlines()
    header = next(
        i for i, line in enumerate(lines) if line.startswith("retriever ") and "NDCG@10" in line
    )
    columns = lines[header].split()
    assert columns[-2:] == ["judged@10", "evaluated"], lines[header]
    for line in lines[header + 2 : header + 5]:
        judged = float(line.split()[columns.index("judged@10")])
        assert 0.0 < judged <= 1.0, line
