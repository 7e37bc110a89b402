"""TREC qrels and run files: parsing, trec_eval's tie order, every bad line reported, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.trec import (
    columns,
    presorted,
    read_qrels,
    read_run,
    read_run_table,
    trec_ordered,
    write_run,
)

RUN_ROWS = [
    ["q2", "Q0", "a", "1", "1.5", "t"],
    ["q1", "Q0", "d1", "1", "2", "t"],
    ["q1", "Q0", "d2", "2", "2", "t"],
    ["q1", "Q0", "x", "3", "-1e-3", "t"],
]
LAYOUTS = {
    "single spaces": (" ", "\n", True),
    "single spaces, CRLF": (" ", "\r\n", True),
    "single tabs": ("\t", "\n", True),
    "mixed separators": (" \t", "\n", False),
    "double spaces": ("  ", "\n", False),
}


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def test_qrels_any_whitespace_crlf_blank_lines_and_negative_grades(tmp_path: Path) -> None:
    qrels = read_qrels(
        write(tmp_path / "qrels", "q1 0 d1 1\n\tq1\t0\td2  0\r\n\n   \n q2 0 doc-é -1 \nq2 x d9 +3")
    )
    assert qrels.schema == pa.schema(
        [("query_id", pa.string()), ("document_id", pa.string()), ("relevance", pa.int64())]
    )
    assert qrels.to_pylist() == [
        {"query_id": "q1", "document_id": "d1", "relevance": 1},
        {"query_id": "q1", "document_id": "d2", "relevance": 0},
        {"query_id": "q2", "document_id": "doc-é", "relevance": -1},
        {"query_id": "q2", "document_id": "d9", "relevance": 3},
    ]


def test_empty_files_read_as_empty(tmp_path: Path) -> None:
    assert read_qrels(write(tmp_path / "qrels", "")).num_rows == 0
    query_ids, rankings = read_run(write(tmp_path / "run", "\n\n"))
    assert len(query_ids) == 0 and len(rankings) == 0


def test_every_bad_qrels_line_is_listed_and_nothing_is_returned(tmp_path: Path) -> None:
    path = write(
        tmp_path / "qrels",
        "q1 0 d1 1\nq1 0 d2\nq1 0 d3 high\nq1 0 d4 1.5\nq1 0 d1 2\nq2 0 d1 1 extra\nq2 0 d5 2\n",
    )
    with pytest.raises(InvalidInputError) as caught:
        read_qrels(path)
    lines = str(caught.value).splitlines()
    assert lines == [
        f"{path}: 5 bad line(s), nothing was read:",
        f"{path}:2: expected 4 columns (query_id iteration document_id relevance), found 3",
        f"{path}:3: relevance 'high' is not an integer",
        f"{path}:4: relevance '1.5' is not an integer",
        f"{path}:5: query 'q1' judged document 'd1' again (first at line 1)",
        f"{path}:6: expected 4 columns (query_id iteration document_id relevance), found 5",
    ]


def test_run_is_ordered_by_score_then_document_id_descending(tmp_path: Path) -> None:
    path = write(
        tmp_path / "run",
        "\n".join(
            [
                "q2 Q0 a 1 1.0 tag",
                "q10 Q0 d1 1 2.5 tag",
                "q10 Q0 d10 2 2.5 tag",
                "q10 Q0 d9 3 2.50 tag",
                "q10 Q0 top 9 1e1 tag",
                "q2 Q0 b 2 -0.0 tag",
                "q2 Q0 c 3 0 tag",
                "q10 Q0 D9 4 2.5 tag",
                "q10 Q0 low 5 -3 tag",
            ]
        ),
    )
    query_ids, rankings = read_run(path)
    assert query_ids.to_pylist() == ["q10", "q2"]
    assert rankings.to_pylist() == [["top", "d9", "d10", "d1", "D9", "low"], ["a", "c", "b"]]
    table = read_run_table(path)
    assert table.column("score").to_pylist()[:4] == [1.0, 2.5, 2.5, 2.5]


def test_many_ties_across_many_queries_sort_like_python(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    rows = [
        (f"q{q}", f"d{d}", float(rng.integers(0, 3)))
        for q in range(40)
        for d in rng.choice(300, size=int(rng.integers(1, 30)), replace=False)
    ]
    order = rng.permutation(len(rows))
    path = write(
        tmp_path / "run",
        "".join(f"{rows[i][0]} Q0 {rows[i][1]} 0 {rows[i][2]} t\n" for i in order),
    )
    query_ids, rankings = read_run(path)
    expected: dict[str, list[tuple[float, str]]] = {}
    for query, document, score in rows:
        expected.setdefault(query, []).append((score, document))
    assert query_ids.to_pylist() == sorted(expected)
    assert rankings.to_pylist() == [
        [d for _, d in sorted(expected[q], reverse=True)] for q in sorted(expected)
    ]


def test_every_bad_run_line_is_listed(tmp_path: Path) -> None:
    path = write(
        tmp_path / "run",
        "q1 Q0 d1 1 2.5 t\n"
        "q1 Q0 d2 one 2.0 t\n"
        "q1 Q0 d3 3 abc t\n"
        "q1 Q0 d4 4 nan t\n"
        "q1 Q0 d5 5 1e999 t\n"
        "q1 Q0 d1 6 1.0 t\n"
        "q1 Q0 d6 7 1.0\n"
        "q2 Q0 d1 1 1.0 t\n",
    )
    with pytest.raises(InvalidInputError) as caught:
        read_run(path)
    assert str(caught.value).splitlines()[1:] == [
        f"{path}:2: rank 'one' is not an integer",
        f"{path}:3: score 'abc' is not a number",
        f"{path}:4: score 'nan' is not a number",
        f"{path}:5: score is too large to be a finite number",
        f"{path}:6: query 'q1' retrieved document 'd1' again (first at line 1)",
        f"{path}:7: expected 6 columns (query_id Q0 document_id rank score tag), found 5",
    ]


def test_invalid_utf8_and_missing_files_are_input_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "qrels", b"q1 0 d1 1\nq1 0 d\xff 1\nq1 0 \xc3 0\n")
    with pytest.raises(InvalidInputError) as caught:
        read_qrels(path)
    assert str(caught.value).splitlines()[1:] == [
        f"{path}:2: is not valid UTF-8",
        f"{path}:3: is not valid UTF-8",
    ]
    with pytest.raises(InvalidInputError, match="no such file"):
        read_run(tmp_path / "missing")


def test_write_run_round_trips_in_order_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "exports" / "run.txt"
    rankings = [["b", "a", "c"], [], ["z"]]
    assert write_run(path, ["q1", "q2", "q3"], rankings, tag="bm25") == path
    assert path.read_text().splitlines() == [
        "q1 Q0 b 1 3 bm25",
        "q1 Q0 a 2 2 bm25",
        "q1 Q0 c 3 1 bm25",
        "q3 Q0 z 1 1 bm25",
    ]
    query_ids, read_back = read_run(path)
    assert query_ids.to_pylist() == ["q1", "q3"]
    assert read_back.to_pylist() == [["b", "a", "c"], ["z"]]
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.txt"]


def test_write_run_with_scores_keeps_them_exactly(tmp_path: Path) -> None:
    path = tmp_path / "run.txt"
    scores = [[1 / 3, 0.1, -2.5e-7], [12.0]]
    write_run(path, pa.array(["q1", "q2"]), pa.array([["x", "y", "w"], ["v"]]), scores)
    assert path.read_text().splitlines()[0] == "q1 Q0 x 1 0.3333333333333333 eval_pipelines"
    table = read_run_table(path)
    assert table.column("score").to_pylist() == [s for row in scores for s in row]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"rankings": [["has space"]]}, r"contain whitespace.*\['has space'\]"),
        ({"rankings": [[""]]}, "empty or contain whitespace"),
        ({"query_ids": ["q 1"]}, "query id"),
        ({"scores": [[1.0, 2.0]]}, r"scores\[0\] \(query 'q1'\): 2 scores for 1 documents"),
        ({"scores": [[float("inf")]]}, "finite"),
        ({"scores": [[1.0], [2.0]]}, "2 score lists for 1 rankings"),
        ({"tag": "my tag"}, "tag"),
        ({"query_ids": ["q1", "q2"]}, "1 rankings for 2 query ids"),
    ],
)
def test_write_run_refuses_what_a_trec_file_cannot_hold(
    tmp_path: Path, arguments: dict, message: str
) -> None:
    path = tmp_path / "run.txt"
    with pytest.raises(InvalidInputError, match=message):
        write_run(**({"path": path, "query_ids": ["q1"], "rankings": [["d"]]} | arguments))
    assert not path.exists()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_reads_the_same(tmp_path: Path, layout: str) -> None:
    separator, newline, fast = LAYOUTS[layout]
    text = "".join(separator.join(row) + newline for row in RUN_ROWS)
    assert (
        columns.single_spaced_fields(text.encode(), [f"c{i}" for i in range(6)]) is not None
    ) == fast
    query_ids, rankings = read_run(write(tmp_path / "run", text))
    assert query_ids.to_pylist() == ["q1", "q2"]
    assert rankings.to_pylist() == [["d2", "d1", "x"], ["a"]]


@pytest.mark.parametrize(
    "text",
    [
        " q1 0 d1 1\nq1 0 d2 0\n",
        "q1 0 d1 1\n\nq1 0 d2 0\n",
        "q1 0 d1 1\rq1 0 d2 0\n",
        "q1 0 d1 1 \nq1 0 d2 0\n",
    ],
)
def test_layouts_the_fast_reader_declines_go_the_general_way(tmp_path: Path, text: str) -> None:
    assert columns.single_spaced_fields(text.encode(), ["a", "b", "c", "d"]) is None
    if "\r" in text:
        with pytest.raises(InvalidInputError, match=r":1: expected 4 columns .* found 8"):
            read_qrels(write(tmp_path / "qrels", text))
    else:
        assert read_qrels(write(tmp_path / "qrels", text)).column("document_id").to_pylist() == [
            "d1",
            "d2",
        ]


def test_value_problems_in_a_single_spaced_file_keep_their_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path / "run",
        "q1 Q0 d1 1 2.5 t\nq1 Q0 d2 2 high t\nq1 Q0 d3 3 1 t\nq1 Q0 d1 4 0.5 t\n",
    )
    assert columns.single_spaced_fields(path.read_bytes(), [f"c{i}" for i in range(6)]) is not None
    with pytest.raises(InvalidInputError) as caught:
        read_run(path)
    assert str(caught.value).splitlines()[1:] == [
        f"{path}:2: score 'high' is not a number",
        f"{path}:4: query 'q1' retrieved document 'd1' again (first at line 1)",
    ]


def test_a_leading_byte_order_mark_is_not_part_of_the_first_query_id(tmp_path: Path) -> None:
    for text in ("\ufeffq1 0 d1 1\n", "\ufeffq1\t0  d1 1\n"):
        assert read_qrels(write(tmp_path / "qrels", text)).column("query_id").to_pylist() == ["q1"]


def _sorted_the_general_way(path: Path) -> tuple[list[str], list[list[str]]]:
    table = read_run_table(path)
    query_ids, rankings = trec_ordered(
        table.column("query_id").combine_chunks(),
        table.column("document_id").combine_chunks(),
        table.column("score").to_numpy(),
    )
    return query_ids.to_pylist(), rankings.to_pylist()


@pytest.mark.parametrize("seed", range(6))
def test_runs_already_in_trec_order_read_as_the_general_sort_gives(
    tmp_path: Path, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    lines = []
    for query in rng.permutation(30):
        documents = rng.choice(500, size=int(rng.integers(1, 40)), replace=False)
        scores = np.sort(rng.integers(0, 6, size=documents.size))[::-1].astype(float)
        rows = sorted(zip(scores, [f"doc{d:03d}" for d in documents], strict=True), reverse=True)
        lines += [f"q{query} Q0 {d} {r} {s:g} run" for r, (s, d) in enumerate(rows, start=1)]
    path = write(tmp_path / "run", "\n".join(lines) + "\n")
    fast = presorted.run_in_trec_order(path.read_bytes())
    assert fast is not None
    query_ids, rankings = read_run(path)
    assert (query_ids.to_pylist(), rankings.to_pylist()) == _sorted_the_general_way(path)
    assert fast[0].to_pylist() == query_ids.to_pylist()


@pytest.mark.parametrize(
    ("why", "text"),
    [
        ("queries interleaved", "q1 Q0 a 1 3 t\nq2 Q0 b 1 3 t\nq1 Q0 c 2 2 t\n"),
        ("scores rising", "q1 Q0 a 1 1 t\nq1 Q0 b 2 2 t\n"),
        ("tie not by id descending", "q1 Q0 a 1 2 t\nq1 Q0 b 2 2 t\n"),
        ("signed rank", "q1 Q0 b 1 2 t\nq1 Q0 a +2 1 t\n"),
    ],
)
def test_valid_runs_out_of_trec_order_are_sorted_the_general_way(
    tmp_path: Path, why: str, text: str
) -> None:
    path = write(tmp_path / "run", text)
    assert presorted.run_in_trec_order(path.read_bytes()) is None, why
    query_ids, rankings = read_run(path)
    assert (query_ids.to_pylist(), rankings.to_pylist()) == _sorted_the_general_way(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("q1 Q0 a 1 3 t\nq1  b 2 2 t\n", ":2: expected 6 columns .* found 5"),
        ("q1 Q0 a 1 3 t\nq1 Q0 b 2 2 \n", ":2: expected 6 columns .* found 5"),
        ("q1 Q0 a 1 3 t\nq1 Q0 b 0x10 2 t\n", ":2: rank '0x10' is not an integer"),
        ("q1 Q0 a 1 inf t\nq1 Q0 b 2 2 t\n", ":1: score 'inf' is not a number"),
        ("q1 Q0 a 1 3 t\n\nq1 Q0 b 2 2 t\n", None),
        ("q1 Q0 a 1 3 t\nq1 Q0 b 2 2 t\nq1 Q0 a 3 1 t\n", ":3: query 'q1' retrieved document 'a'"),
    ],
)
def test_what_the_fast_path_declines_is_judged_by_the_general_one(
    tmp_path: Path, text: str, problem: str | None
) -> None:
    path = write(tmp_path / "run", text)
    assert presorted.run_in_trec_order(path.read_bytes()) is None
    if problem is None:
        assert read_run(path)[1].to_pylist() == [["a", "b"]]
        return
    with pytest.raises(InvalidInputError, match=problem):
        read_run(path)


def test_long_ids_differing_only_in_the_middle_are_not_mistaken_for_repeats(
    tmp_path: Path,
) -> None:
    documents = [f"collection-{'x' * 20}-{i:04d}-{'y' * 20}" for i in range(50)]
    documents += [f"short{i}" for i in range(50)] + ["", "exactly8", "sixteen-bytes-id"][1:]
    rows = [f"q1 Q0 {d} {r} {1000 - r} t" for r, d in enumerate(documents, start=1)]
    path = write(tmp_path / "run", "\n".join(rows) + "\n")
    query_ids, rankings = read_run(path)
    assert query_ids.to_pylist() == ["q1"]
    assert rankings.to_pylist() == [documents]
