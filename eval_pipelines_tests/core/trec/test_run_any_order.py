"""Issue 14 point 4: a well-formed run reads on the fast path whatever the order of its lines.

Before the fix only a run already in trec_eval's order (each query's lines together, best first)
took the fast path; any other order (queries' lines interleaved, or a query's lines not best
first) went the general way, several times slower. Values and error messages must not change.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.trec import presorted, read_run, read_run_table, trec_ordered
from eval_pipelines.core.trec_eval import trec_eval
from eval_pipelines_tests.cli.conftest import run_cli
from eval_pipelines_tests.core.metrics.test_ground_truth import PYTREC_CUT, PYTREC_UNCUT

Row = tuple[str, str, float, str]
Read = tuple[list[str], list[list[str]]]
MEASURES = [f"{family}.1,3,5,10" for family in PYTREC_CUT] + list(PYTREC_UNCUT)


def trec_order_rows(rng: np.random.Generator, queries: int, depth: int) -> list[Row]:
    """(query, docno, score, score text) in trec_eval's order, queries numbered q1, q2, ...

    Half the queries have integer scores, so ties (broken by docno descending) are common; docnos
    mix ASCII and multi-byte characters, so byte order and code-point order must agree.
    """
    rows: list[Row] = []
    for query in range(1, queries + 1):
        size = int(rng.integers(1, depth + 1))
        documents = [
            f"{'dé文'[int(rng.integers(3))]}{n}" for n in rng.choice(10 * depth, size, False)
        ]
        if query % 2:
            scores = rng.integers(-2, 3, size=size).astype(float)
        else:
            scores = np.round(rng.normal(size=size), 3)
        texts = [f"{s:g}" if query % 4 < 2 else f"{s:.6e}" for s in scores]
        by_trec = sorted(
            zip(scores.tolist(), documents, texts, strict=True),
            key=lambda row: (row[0], row[1].encode()),
            reverse=True,
        )
        rows += [(f"q{query}", document, score, text) for score, document, text in by_trec]
    return rows


def layouts(rng: np.random.Generator) -> dict[str, Callable[[list[Row]], list[Row]]]:
    """Ways a system may write the same run."""

    def by_query(
        rows: list[Row], queries: Callable[[list[str]], list[str]], lines: int = 1
    ) -> list[Row]:
        groups: dict[str, list[Row]] = {}
        for row in rows:
            groups.setdefault(row[0], []).append(row)
        return [row for query in queries(list(groups)) for row in groups[query][::lines]]

    return {
        "queries in numeric order": lambda rows: rows,
        "queries in reverse order": lambda rows: by_query(rows, lambda q: q[::-1]),
        "each query worst first": lambda rows: by_query(rows, lambda q: q, lines=-1),
        "lines shuffled": lambda rows: [rows[i] for i in rng.permutation(len(rows))],
    }


def write_rows(path: Path, rows: list[Row]) -> Path:
    path.write_text(
        "".join(
            f"{query} Q0 {document} {rank} {text} run\n"
            for rank, (query, document, _, text) in enumerate(rows, start=1)
        ),
        encoding="utf-8",
    )
    return path


def python_reading(rows: list[Row]) -> Read:
    """trec_eval's order by hand: queries in byte order, score desc, then docno desc (bytes)."""
    by_query: dict[str, list[tuple[float, bytes]]] = {}
    for query, document, score, _ in rows:
        by_query.setdefault(query, []).append((score, document.encode()))
    queries = sorted(by_query, key=str.encode)
    return queries, [[d.decode() for _, d in sorted(by_query[q], reverse=True)] for q in queries]


def general_reading(path: Path) -> Read:
    table = read_run_table(path)
    query_ids, rankings = trec_ordered(
        table.column("query_id").combine_chunks(),
        table.column("document_id").combine_chunks(),
        table.column("score").to_numpy(),
    )
    return query_ids.to_pylist(), rankings.to_pylist()


@pytest.mark.parametrize("seed", range(4))
def test_every_layout_reads_on_the_fast_path_as_trec_eval_orders_it(
    tmp_path: Path, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    rows = trec_order_rows(rng, queries=40, depth=30)
    expected = python_reading(rows)
    for name, layout in layouts(rng).items():
        path = write_rows(tmp_path / "run.txt", layout(rows))
        fast = presorted.run_in_any_order(path.read_bytes())
        assert fast is not None, name
        assert (fast[0].to_pylist(), fast[1].to_pylist()) == expected, name
        query_ids, rankings = read_run(path)
        assert (query_ids.to_pylist(), rankings.to_pylist()) == expected, name
        assert general_reading(path) == expected, name


def test_a_shuffled_run_with_bad_lines_is_reported_line_by_line_as_before(
    tmp_path: Path,
) -> None:
    rows = trec_order_rows(np.random.default_rng(5), queries=20, depth=10)
    rows = [rows[i] for i in np.random.default_rng(6).permutation(len(rows))]
    first_query, first_document = rows[3][0], rows[3][1]
    rows.insert(11, (first_query, first_document, -50.0, "-50"))
    rows.insert(17, (rows[0][0], "late", 0.0, "high"))
    path = write_rows(tmp_path / "run.txt", rows)
    assert presorted.run_in_any_order(path.read_bytes()) is None
    with pytest.raises(InvalidInputError) as caught:
        read_run(path)
    assert str(caught.value).splitlines() == [
        f"{path}: 2 bad line(s), nothing was read:",
        f"{path}:12: query {first_query!r} retrieved document {first_document!r} again"
        " (first at line 4)",
        f"{path}:18: score 'high' is not a number",
    ]
    (tmp_path / "qrels.txt").write_text(f"{first_query} 0 {first_document} 1\n")
    result = run_cli(tmp_path / "data", "trec-eval", str(tmp_path / "qrels.txt"), str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert str(caught.value) in result.stderr


def test_a_repeat_with_different_scores_far_apart_is_caught_in_any_order(
    tmp_path: Path,
) -> None:
    rows = trec_order_rows(np.random.default_rng(8), queries=30, depth=20)
    query, document = rows[5][0], rows[5][1]
    shuffled = [rows[i] for i in np.random.default_rng(9).permutation(len(rows))]
    shuffled.append((query, document, 1e9, "1e9"))
    path = write_rows(tmp_path / "run.txt", shuffled)
    assert presorted.run_in_any_order(path.read_bytes()) is None
    first = 1 + next(i for i, row in enumerate(shuffled) if row[:2] == (query, document))
    with pytest.raises(
        InvalidInputError, match=rf":{len(shuffled)}: .* again \(first at line {first}\)"
    ):
        read_run(path)


def test_every_layout_scores_identically_and_as_pytrec_eval_scores_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    rows = trec_order_rows(rng, queries=60, depth=25)
    qrels: dict[str, dict[str, int]] = {}
    for query, document, _, _ in rows:
        if rng.random() < 0.4:
            qrels.setdefault(query, {})[document] = int(rng.integers(-1, 4))
    qrels_path = tmp_path / "qrels.txt"
    qrels_path.write_text(
        "".join(f"{q} 0 {d} {g}\n" for q, judged in qrels.items() for d, g in judged.items()),
        encoding="utf-8",
    )
    run = {}
    for query, document, score, _ in rows:
        run.setdefault(query, {})[document] = score
    theirs = pytrec_eval.RelevanceEvaluator(qrels, set(MEASURES)).evaluate(run)
    results = {}
    for name, layout in layouts(rng).items():
        path = write_rows(tmp_path / f"{name.replace(' ', '_')}.txt", layout(rows))
        results[name] = trec_eval(qrels_path, path, MEASURES, per_query=True)
    reference = results["queries in numeric order"]
    assert all(result == reference for result in results.values())
    assert reference["per_query"].keys() == theirs.keys()
    for query, expected in theirs.items():
        for measure, value in expected.items():
            assert reference["per_query"][query][measure] == pytest.approx(value, abs=1e-12)
    shuffled = tmp_path / "lines_shuffled.txt"
    cli = run_cli(tmp_path / "data", "trec-eval", str(qrels_path), str(shuffled), "-q", "-m", "map")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == trec_eval(qrels_path, shuffled, ["map"], per_query=True)


def _cpu_seconds(path: Path, rounds: int = 3) -> float:
    """The least CPU time (every thread) read_run took over a few rounds: load-insensitive."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        read_run(path)
        best = min(best, time.process_time() - start)
    return best


def test_a_shuffled_run_reads_at_about_the_speed_of_a_sorted_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    queries, depth = 4_000, 100
    query = np.repeat(np.arange(1, queries + 1), depth)
    rank = np.tile(np.arange(1, depth + 1), queries)
    document = rng.integers(0, 10**9, size=query.size) * depth + rank
    lines = np.char.add(
        np.char.add(np.char.add("q", query.astype(str)), " Q0 d"),
        np.char.add(np.char.add(document.astype(str), " "), rank.astype(str)),
    )
    lines = np.char.add(lines, np.char.add(" ", np.char.add((1000 - rank).astype(str), " run\n")))
    sorted_path, shuffled_path = tmp_path / "sorted.txt", tmp_path / "shuffled.txt"
    sorted_path.write_text("".join(lines.tolist()))
    shuffled_path.write_text("".join(lines[rng.permutation(lines.size)].tolist()))
    assert read_run(sorted_path)[1].equals(read_run(shuffled_path)[1])
    ratio = _cpu_seconds(shuffled_path) / _cpu_seconds(sorted_path)
    assert ratio < 3.0, f"a shuffled run read {ratio:.1f}x slower than the same run sorted"
