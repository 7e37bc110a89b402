"""Bad dataset files: every problem is listed as `file:line: field: problem`, and nothing is stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eval_pipelines.core.datasets import DatasetInputError, import_dataset
from eval_pipelines.core.paths import DataPaths


def jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text(
        "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows),
        encoding="utf-8",
    )
    return path


def text(path: Path, content: str) -> Path:
    path.write_text(content, encoding="utf-8")
    return path


def rejected(paths: DataPaths, files: list[Path], fmt: str = "auto") -> list[str]:
    """The problems an import reports; also checks that nothing at all was written."""
    with pytest.raises(DatasetInputError) as caught:
        import_dataset(paths, "bad", files, fmt=fmt)
    assert not paths.datasets_dir.exists()
    problems = [str(problem) for problem in caught.value.problems]
    assert str(caught.value).splitlines()[1:] == [f"  {p}" for p in problems[:50]] + (
        [f"  ... and {len(problems) - 50} more"] if len(problems) > 50 else []
    )
    return problems


def query(query_id: Any = "q1", **fields: Any) -> dict[str, Any]:
    return {
        "query_id": query_id,
        "query_input": {"text": "lamp"},
        "relevant_documents": [],
        **fields,
    }


# --- ground_truth ---------------------------------------------------------------------------------


def test_grades_must_be_integers_from_0_to_5(paths: DataPaths, tmp_path: Path) -> None:
    file = jsonl(
        tmp_path / "t.jsonl",
        [
            query("q1", relevant_documents=["d1"], relevance_scores={"d1": 7, "d2": -1}),
            query("q2", relevance_scores={"d1": 2.5, "d2": "3", "d3": True, "d4": 2.0}),
            query("q3", relevance_scores=[1, 2]),
        ],
    )

    assert rejected(paths, [file]) == [
        f'{file}:1: relevance_scores["d1"]: grade 7 is out of range 0..5',
        f'{file}:1: relevance_scores["d2"]: grade -1 is out of range 0..5',
        f'{file}:2: relevance_scores["d1"]: expected an integer grade 0..5, got a number (2.5)',
        f'{file}:2: relevance_scores["d2"]: expected an integer grade 0..5, got a string',
        f'{file}:2: relevance_scores["d3"]: expected an integer grade 0..5, got a boolean (true)',
        f'{file}:2: relevance_scores["d4"]: expected an integer grade 0..5, got a number (2.0)',
        f"{file}:3: relevance_scores: expected an object {{document id: grade 0..5}}, got a list",
    ]


def test_a_listed_document_graded_0_is_a_contradiction(paths: DataPaths, tmp_path: Path) -> None:
    file = jsonl(
        tmp_path / "t.jsonl",
        [query(relevant_documents=["d1", "d2", "d1"], relevance_scores={"d2": 0})],
    )

    assert rejected(paths, [file]) == [
        f"{file}:1: relevant_documents[2]: 'd1' is listed twice",
        f'{file}:1: relevance_scores["d2"]: grade 0 (not relevant) contradicts the document\'s'
        " place in relevant_documents",
    ]


def test_fields_are_checked_by_name(paths: DataPaths, tmp_path: Path) -> None:
    file = jsonl(
        tmp_path / "t.jsonl",
        [
            {"query_id": "q1", "query_input": {"text": "a"}, "relevant_docs": ["d1"]},
            {"query_id": "q2", "query_input": "plain text", "relevant_documents": "d1"},
            {"query_id": 3, "query_input": {"text": "a", "filter": {"c": 1}, "filters": [1]}},
            {"query_input": {"text": 5}, "relevant_documents": ["", "has space", 9]},
            '{"query_id": "q5", "query_id": "q6", "query_input": {}, "relevant_documents": []}',
        ],
    )

    assert rejected(paths, [file]) == [
        f"{file}:1: relevant_docs: unknown field (expected query_id, query_input,"
        " relevant_documents, relevance_scores)",
        f"{file}:1: relevant_documents: required field is missing (use [] for none)",
        f"{file}:2: query_input: expected an object with a string 'text' (and optional 'filters'),"
        " got a string",
        f"{file}:2: relevant_documents: expected a list of document ids, got a string",
        f"{file}:3: query_id: expected a string id, got a number (3)",
        f"{file}:3: query_input.filter: unknown field (expected text, filters)",
        f"{file}:3: query_input.filters: expected an object, got a list",
        f"{file}:3: relevant_documents: required field is missing (use [] for none)",
        f"{file}:4: query_id: required field is missing",
        f"{file}:4: query_input.text: expected a string, got a number (5)",
        f"{file}:4: relevant_documents[0]: the id is empty",
        f"{file}:4: relevant_documents[1]: 'has space': an id must not contain whitespace"
        " (it could not round-trip through TREC files)",
        f"{file}:4: relevant_documents[2]: expected a string id, got a number (9)",
        f"{file}:5: query_id: the key appears more than once",
        f"{file}:5: query_input.text: required field is missing",
    ]


def test_query_ids_are_unique_across_files(paths: DataPaths, tmp_path: Path) -> None:
    first = jsonl(tmp_path / "a.jsonl", [query("q1"), query("q2"), query("q1")])
    second = jsonl(tmp_path / "b.jsonl", [query("q2")])

    assert rejected(paths, [first, second]) == [
        f"{first}:3: query_id: 'q1' repeats the query id of {first}:1",
        f"{second}:1: query_id: 'q2' repeats the query id of {first}:2",
    ]


def test_broken_json_and_non_objects(paths: DataPaths, tmp_path: Path) -> None:
    file = jsonl(tmp_path / "t.jsonl", [query("q1"), '{"query_id": "q2",', "[1, 2]", query("q4")])

    assert rejected(paths, [file], fmt="ground_truth") == [
        f"{file}:2: json: invalid JSON (Expecting property name enclosed in double quotes"
        " at column 19)",
        f"{file}:3: json: expected a JSON object, got a list",
    ]


# --- every format ---------------------------------------------------------------------------------


def test_empty_unreadable_and_non_utf8_files(paths: DataPaths, tmp_path: Path) -> None:
    empty = text(tmp_path / "empty.jsonl", "\n  \n")
    missing = tmp_path / "missing.jsonl"
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(
        json.dumps(query("q1")).encode() + b"\n" + '{"query_id": "café"}'.encode("latin-1") + b"\n"
    )

    assert rejected(paths, [empty, missing, latin], fmt="ground_truth") == [
        f"{empty}: the file is empty",
        f"{missing}: cannot read the file (No such file or directory)",
        f"{latin}:2: encoding: not UTF-8 text (byte 0xe9 at column 18)",
    ]


def test_the_list_is_capped_but_every_problem_is_kept(paths: DataPaths, tmp_path: Path) -> None:
    file = jsonl(
        tmp_path / "t.jsonl", [query(f"q{n}", relevance_scores={"d": 9}) for n in range(60)]
    )

    problems = rejected(paths, [file])

    assert len(problems) == 60
    assert problems[59] == f'{file}:60: relevance_scores["d"]: grade 9 is out of range 0..5'


# --- trec -----------------------------------------------------------------------------------------


def test_trec_column_counts_grades_and_repeats(paths: DataPaths, tmp_path: Path) -> None:
    topics = text(tmp_path / "topics.tsv", "q1\tlamp\nq2\tsofa\textra\nq1\tlamp again\n")
    qrels = text(
        tmp_path / "x.qrels",
        "q1 0 d1 1\nq1 0 d2\nq1 0 d3 1.0\nq1 0 d1 2\nq1 0 d4 99999999999\n",
    )

    assert rejected(paths, [qrels, topics]) == [
        f"{topics}:2: columns: expected 2 tab-separated columns (qid<TAB>text), got 3",
        f"{topics}:3: qid: 'q1' repeats the query id of {topics}:1",
        f"{qrels}:2: columns: expected 4 whitespace-separated columns (qid iter docno rel), got 3",
        f"{qrels}:3: rel: expected an integer grade, got '1.0'",
        f"{qrels}:4: docno: document 'd1' of query 'q1' is already judged at {qrels}:1",
        f"{qrels}:5: rel: expected an integer grade, got '99999999999'",
    ]


def test_trec_judgments_need_a_topic(paths: DataPaths, tmp_path: Path) -> None:
    topics = text(tmp_path / "topics.tsv", "q1\tlamp\n")
    qrels = text(tmp_path / "x.qrels", "q1 0 d1 1\nq7 0 d1 1\nq9 0 d1 0\nq7 0 d2 1\n")

    assert rejected(paths, [topics, qrels]) == [
        f"{qrels}:2: qid: query 'q7' has 2 judgments but is not in the topics files",
        f"{qrels}:3: qid: query 'q9' has 1 judgment but is not in the topics files",
    ]


def test_trec_needs_both_files(paths: DataPaths, tmp_path: Path) -> None:
    qrels = text(tmp_path / "x.qrels", "q1 0 d1 1\n")

    assert rejected(paths, [qrels], fmt="trec") == [
        f"format: trec needs a topics file (TSV or SGML); got {qrels}"
    ]


def test_sgml_topic_problems(paths: DataPaths, tmp_path: Path) -> None:
    topics = text(
        tmp_path / "topics.txt",
        "<top>\n<num> Number: 0\n<title> fine\n</top>\n"  # lines 1-4
        "stray text\n"  # 5
        "<top>\n<title> no number\n</top>\n"  # 6-8
        "<top>\n<num> Number: 1 2\n<title> x\n</top>\n"  # 9-12
        "<top>\n<num> Number: 3\n</top>\n"  # 13-15
        "<top>\n<num> Number: 4\n<title> a\n<title> b\n</top>\n"  # 16-20
        "<top>\n<num> Number: 5\n<title> open\n",  # 21-23
    )
    qrels = text(tmp_path / "x.qrels", "4 0 d1 1\n")

    assert rejected(paths, [topics, qrels]) == [
        f"{topics}:5: top: text outside a <top> ... </top> block",
        f"{topics}:6: num: this <top> block has no <num>",
        f"{topics}:10: num: expected 'Number: <qid>', got 'Number: 1 2'",
        f"{topics}:13: title: topic '3' has no <title>",
        f"{topics}:19: title: <title> appears twice in this <top> block",
        f"{topics}:21: top: <top> is never closed by </top>",
    ]


def test_with_an_explicit_format_the_first_line_must_still_fit(
    paths: DataPaths, tmp_path: Path
) -> None:
    topics = text(tmp_path / "topics.txt", "stray text\n<top>\n<num> Number: 1\n</top>\n")
    qrels = text(tmp_path / "x.qrels", "1 0 d1 1\n")

    assert rejected(paths, [topics, qrels], fmt="trec") == [
        f"{topics}:1: format: cannot tell what this file is; the first line should be <top>,"
        " qid<TAB>text (topics) or qid iter docno rel (qrels)",
    ]


# --- beir -----------------------------------------------------------------------------------------


def test_beir_problems(paths: DataPaths, tmp_path: Path) -> None:
    queries = jsonl(
        tmp_path / "queries.jsonl",
        [
            {"_id": "1", "text": "ok"},
            {"_id": 2, "text": "number id"},
            {"_id": "3", "title": "wrong key", "metadata": []},
        ],
    )
    qrels = text(
        tmp_path / "test.tsv",
        "query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\n1\t\tx\n8\td1\t1\n",
    )

    assert rejected(paths, [queries, qrels]) == [
        f"{queries}:2: _id: expected a string id, got a number (2)",
        f"{queries}:3: title: unknown field (expected _id, text, metadata)",
        f"{queries}:3: text: required field is missing",
        f"{queries}:3: metadata: expected an object, got a list",
        f"{qrels}:3: columns: expected 3 tab-separated columns (query-id, corpus-id, score), got 2",
        f"{qrels}:4: corpus-id: the id is empty",
        f"{qrels}:4: score: expected an integer grade, got 'x'",
        f"{qrels}:5: query-id: query '8' has 1 judgment but is not in the queries files",
    ]


def test_beir_qrels_need_their_header(paths: DataPaths, tmp_path: Path) -> None:
    queries = jsonl(tmp_path / "queries.jsonl", [{"_id": "1", "text": "ok"}])
    qrels = text(tmp_path / "test.tsv", "1\td1\t1\n")

    assert rejected(paths, [queries, qrels], fmt="beir") == [
        f"{qrels}:1: format: cannot tell what this file is; the first line should be a JSON object"
        " (queries.jsonl) or the header query-id<TAB>corpus-id<TAB>score (qrels)",
    ]


def test_beir_qrels_need_judgments(paths: DataPaths, tmp_path: Path) -> None:
    queries = jsonl(tmp_path / "queries.jsonl", [{"_id": "1", "text": "ok"}])
    qrels = text(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\n")

    assert rejected(paths, [queries, qrels]) == [
        f"{qrels}: the file holds the header but no judgments"
    ]
