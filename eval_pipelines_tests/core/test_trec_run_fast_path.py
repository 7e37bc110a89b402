"""read_run's fast path (runs in trec_eval order, repeats screened by 64-bit docno fingerprints)
against the exact path, a plain-Python reading and pytrec_eval, on many random small runs.

Issue 10 point 9: a short docno at the very end of a run whose earlier docnos are longer than 8
bytes made the fingerprint read past the buffer (IndexError), so `trec-eval` crashed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import pytrec_eval

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.trec import (
    presorted,
    read_run,
    read_run_table,
    trec_ordered,
)
from eval_pipelines.core.trec_eval import trec_eval
from eval_pipelines_tests.cli.conftest import run_cli
from eval_pipelines_tests.core.metrics.test_ground_truth import PYTREC_CUT, PYTREC_UNCUT

ISSUE_QRELS = "q1 0 a 1\n"
ISSUE_RUN = "q1 Q0 abcdefghi 1 2 t\nq1 Q0 a 2 1 t\n"
ASCII_PIECES = [*"abcxyzABZ019-_.:/#\"'"]
PIECES = [*ASCII_PIECES, "é", "ß", "中", "文", "😀", "\u00a0"]
SHARED_PREFIX = "prefix08"
CUTOFFS = "1,2,3,5,10"
MEASURES = [f"{family}.{CUTOFFS}" for family in PYTREC_CUT] + list(PYTREC_UNCUT)
CASES = 300

Rows = list[tuple[str, str, float, str]]
Read = tuple[list[str], list[list[str]]] | str


def docno(rng: np.random.Generator, size: int) -> str:
    """A docno of exactly size UTF-8 bytes, mixing one- to four-byte characters."""
    text = ""
    while len(text.encode()) < size:
        piece = PIECES[int(rng.integers(len(PIECES)))]
        if len((text + piece).encode()) > size:
            piece = ASCII_PIECES[int(rng.integers(len(ASCII_PIECES)))]
        text += piece
    return text


def docno_pool(rng: np.random.Generator) -> list[str]:
    """Ids of 0 to 20 bytes, several sharing their first 8 bytes (and one equal to those 8)."""
    pool = [docno(rng, int(rng.integers(0, 21))) for _ in range(int(rng.integers(3, 12)))]
    pool += [SHARED_PREFIX + docno(rng, int(rng.integers(0, 13))) for _ in range(3)]
    pool += [SHARED_PREFIX, SHARED_PREFIX[:7], "a"]
    return list(dict.fromkeys(pool))


def score_text(score: float, rng: np.random.Generator) -> str:
    """The score as a run file may spell it: repr, exponent, explicit sign, no leading zero."""
    spelling = int(rng.integers(4))
    if spelling == 1:
        return f"{score:.4e}"
    if spelling == 2:
        return f"{score:+g}"
    if spelling == 3:
        return repr(score).replace("0.", ".", 1) if abs(score) < 1 else f"{score:g}"
    return repr(score)


def random_run(rng: np.random.Generator, in_trec_order: bool) -> Rows:
    """(query, docno, score, score text) rows; repeats a docno within a query now and then."""
    pool = docno_pool(rng)
    rows: Rows = []
    for query in rng.permutation(["q1", "q10", "q2", "é"])[: int(rng.integers(1, 5))]:
        size = int(rng.integers(1, len(pool) + 1))
        chosen = [pool[i] for i in rng.choice(len(pool), size=size, replace=rng.random() < 0.15)]
        if rng.random() < 0.5:
            scores = rng.integers(0, 3, size=size).astype(float)
        else:
            scores = np.round(rng.normal(size=size), int(rng.integers(1, 6)))
        texts = [score_text(float(s), rng) for s in scores]
        query_rows = [(str(query), d, float(t), t) for d, t in zip(chosen, texts, strict=True)]
        if in_trec_order:
            query_rows.sort(key=lambda row: (row[2], row[1].encode()), reverse=True)
        rows += query_rows
    if not in_trec_order:
        rows = [rows[i] for i in rng.permutation(len(rows))]
    return rows


def run_text(rows: Rows, rng: np.random.Generator) -> str:
    separator = "\t" if rng.random() < 0.2 else " "
    newline = "\r\n" if rng.random() < 0.2 else "\n"
    return "".join(
        separator.join([query, "Q0", document, str(rank), score, "tag"]) + newline
        for rank, (query, document, _, score) in enumerate(rows, start=1)
    )


def python_reading(rows: Rows) -> Read:
    """trec_eval's order by hand: queries in byte order, score desc, then docno desc (bytes)."""
    if any(not document for _, document, _, _ in rows):
        return "empty docno"
    if len({(query, document) for query, document, _, _ in rows}) < len(rows):
        return "repeated docno"
    by_query: dict[str, list[tuple[float, bytes]]] = {}
    for query, document, score, _ in rows:
        by_query.setdefault(query, []).append((score, document.encode()))
    queries = sorted(by_query, key=str.encode)
    return queries, [[d.decode() for _, d in sorted(by_query[q], reverse=True)] for q in queries]


def exact_reading(path: Path) -> Read:
    try:
        table = read_run_table(path)
    except InvalidInputError as error:
        return str(error)
    query_ids, rankings = trec_ordered(
        table.column("query_id").combine_chunks(),
        table.column("document_id").combine_chunks(),
        table.column("score").to_numpy(),
    )
    return query_ids.to_pylist(), rankings.to_pylist()


def read_run_reading(path: Path) -> Read:
    try:
        query_ids, rankings = read_run(path)
    except InvalidInputError as error:
        return str(error)
    return query_ids.to_pylist(), rankings.to_pylist()


def test_the_issue_run_reads_on_the_fast_path_in_score_order(tmp_path: Path) -> None:
    path = tmp_path / "run"
    path.write_text(ISSUE_RUN)
    fast = presorted.run_in_trec_order(path.read_bytes())
    assert fast is not None
    assert (fast[0].to_pylist(), fast[1].to_pylist()) == (["q1"], [["abcdefghi", "a"]])
    assert read_run_reading(path) == exact_reading(path)


def test_fingerprints_of_equal_ids_are_equal_wherever_they_sit_in_the_buffer() -> None:
    ids = ["abcdefghi", "a", "abcdefghijklmnopqrst", "a", "é", "abcdefghi", "é"]
    for start in range(len(ids)):
        values = pa.array(ids)[start:]
        fingerprints = presorted.fingerprints(values).tolist()
        for i, left in enumerate(values.to_pylist()):
            for j, right in enumerate(values.to_pylist()):
                if left == right:
                    assert fingerprints[i] == fingerprints[j], (left, start)


@pytest.mark.parametrize("in_trec_order", [True, False], ids=["trec order", "shuffled"])
def test_fast_path_exact_path_and_python_agree_on_random_runs(
    tmp_path: Path, in_trec_order: bool
) -> None:
    rng = np.random.default_rng(91 if in_trec_order else 92)
    path = tmp_path / "run"
    fast_taken = valid = 0
    for case in range(CASES):
        rows = random_run(rng, in_trec_order)
        path.write_text(run_text(rows, rng), encoding="utf-8")
        expected = python_reading(rows)
        exact = exact_reading(path)
        fast = presorted.run_in_trec_order(path.read_bytes())
        context = (case, path.read_text(encoding="utf-8"))
        if isinstance(expected, str):
            assert fast is None, context
            assert isinstance(exact, str) and path.name in exact, context
        else:
            valid += 1
            assert exact == expected, context
            if fast is not None:
                fast_taken += 1
                assert (fast[0].to_pylist(), fast[1].to_pylist()) == expected, context
            elif in_trec_order:
                pytest.fail(f"a valid run in trec_eval order left the fast path: {context}")
        assert read_run_reading(path) == exact, context
    assert valid > CASES // 2
    if in_trec_order:
        assert fast_taken == valid


@pytest.mark.parametrize("in_trec_order", [True, False], ids=["trec order", "shuffled"])
def test_random_runs_score_as_pytrec_eval_scores_them(tmp_path: Path, in_trec_order: bool) -> None:
    rng = np.random.default_rng(93 if in_trec_order else 94)
    qrels_path, run_path = tmp_path / "qrels", tmp_path / "run"
    compared = 0
    while compared < CASES // 3:
        rows = random_run(rng, in_trec_order)
        if isinstance(python_reading(rows), str):
            continue
        run: dict[str, dict[str, float]] = {}
        for query, document, score, _ in rows:
            run.setdefault(query, {})[document] = score
        qrels = {
            query: {
                d: int(rng.integers(-1, 3)) for d in {*scored, *filter(None, docno_pool(rng)[:3])}
            }
            for query, scored in run.items()
        }
        run_path.write_text(run_text(rows, rng), encoding="utf-8")
        qrels_path.write_text(
            "".join(f"{q} 0 {d} {g}\n" for q, judged in qrels.items() for d, g in judged.items()),
            encoding="utf-8",
        )
        ours = trec_eval(qrels_path, run_path, MEASURES, per_query=True)["per_query"]
        theirs = pytrec_eval.RelevanceEvaluator(qrels, set(MEASURES)).evaluate(run)
        assert ours.keys() == theirs.keys()
        for query, expected in theirs.items():
            assert ours[query].keys() == expected.keys()
            for measure, value in expected.items():
                assert ours[query][measure] == pytest.approx(value, abs=1e-9), (
                    query,
                    measure,
                    run_path.read_text(encoding="utf-8"),
                )
        compared += 1


def test_the_cli_scores_the_issue_fixture(tmp_path: Path) -> None:
    qrels, run = tmp_path / "qrels", tmp_path / "run"
    qrels.write_text(ISSUE_QRELS)
    run.write_text(ISSUE_RUN)
    result = run_cli(tmp_path / "data", "trec-eval", str(qrels), str(run), "-m", "map")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"all": {"map": 0.5}}
