"""Each dataset format imports into exactly the expected tables, read back through load_dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eval_pipelines.core.datasets import DatasetInputError, import_dataset, load_dataset
from eval_pipelines.core.paths import DataPaths


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    return write(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def stored(paths: DataPaths, name: str) -> tuple[list[dict], list[tuple[str, str, int]]]:
    dataset = load_dataset(paths, name)
    judgments = dataset.judgments.to_pylist()
    return dataset.queries.to_pylist(), [
        (row["query_id"], row["document_id"], row["relevance"]) for row in judgments
    ]


# --- ground_truth ---------------------------------------------------------------------------------


def test_ground_truth_lines_become_queries_and_graded_judgments(
    paths: DataPaths, tmp_path: Path
) -> None:
    rows = [
        {
            "query_id": "q2",
            "query_input": {"text": "red sofa", "filters": {"color": "red"}},
            "relevant_documents": ["d3", "d1"],
            "relevance_scores": {"d1": 3, "d9": 0, "d7": 2},
        },
        {
            "query_id": "q1",
            "query_input": {"text": "lamp", "filters": None},
            "relevant_documents": [],
        },
        {"query_id": "q3", "query_input": {"text": "café"}, "relevant_documents": []},
    ]
    # Blank lines are skipped.
    source = write(
        tmp_path / "truth.jsonl", "\n\n".join(json.dumps(row, ensure_ascii=False) for row in rows)
    )

    summary = import_dataset(paths, "truth", [source])

    queries, judgments = stored(paths, "truth")
    assert queries == [
        {"query_id": "q1", "query_input": '{"text":"lamp"}', "query_text": "lamp"},
        {
            "query_id": "q2",
            "query_input": '{"filters":{"color":"red"},"text":"red sofa"}',
            "query_text": "red sofa",
        },
        {"query_id": "q3", "query_input": '{"text":"caf\\u00e9"}', "query_text": "café"},
    ]
    assert json.loads(queries[2]["query_input"]) == {"text": "café"}
    # d3 is listed without a score (grade 1); d7 and d9 are only scored (d9 judged not relevant).
    assert judgments == [("q2", "d1", 3), ("q2", "d3", 1), ("q2", "d7", 2), ("q2", "d9", 0)]
    assert summary.to_dict() == {
        "dataset_id": summary.dataset_id,
        "name": "truth",
        "format": "ground_truth",
        "query_count": 3,
        "judgment_count": 4,
        "relevant_count": 3,
        "created_at": summary.created_at,
        "source_files": [str(source.resolve())],
        "ignored_queries": 0,
    }
    assert summary.dataset_id.startswith("ds_") and len(summary.dataset_id) == 15
    assert summary.created_at.endswith("Z")
    assert load_dataset(paths, "truth").summary == summary


def test_ground_truth_reads_several_files_with_bom_and_crlf(
    paths: DataPaths, tmp_path: Path
) -> None:
    first = tmp_path / "a.jsonl"
    first.write_bytes(
        b"\xef\xbb\xbf"
        + json.dumps(
            {"query_id": "q1", "query_input": {"text": "a"}, "relevant_documents": ["d1"]}
        ).encode()
        + b"\r\n"
    )
    second = write_jsonl(
        tmp_path / "b.jsonl",
        [{"query_id": "q2", "query_input": {"text": "b"}, "relevant_documents": ["d2"]}],
    )

    summary = import_dataset(paths, "two", [first, second], fmt="ground_truth")

    queries, judgments = stored(paths, "two")
    assert [q["query_id"] for q in queries] == ["q1", "q2"]
    assert judgments == [("q1", "d1", 1), ("q2", "d2", 1)]
    assert summary.source_files == [str(first.resolve()), str(second.resolve())]


# --- trec -----------------------------------------------------------------------------------------

SGML_TOPICS = """\
<top>
<num> Number: 301
<title> International Organized
Crime

<desc> Description:
Identify organizations that participate in international criminal activity.

<narr> Narrative:
A relevant document must as a minimum identify the organization.
</top>

<top>
<num> Number: 302 </num>
<title> Topic: Poliomyelitis and Post-Polio </title>
</top>
<top>
<num> Number: 303
<title> Hubble Telescope Achievements
</top>
"""

QRELS = """\
301 0 FBIS3-10082 1
301 0 FBIS3-10169 0
302\t0\tFT944-1\t2
301 Q0 LA010189-0001 -1
"""


def test_trec_qrels_with_sgml_topics(paths: DataPaths, tmp_path: Path) -> None:
    topics = write(tmp_path / "topics.301-303", SGML_TOPICS)
    qrels = write(tmp_path / "qrels.301-303", QRELS)

    summary = import_dataset(paths, "robust", [qrels, topics])

    queries, judgments = stored(paths, "robust")
    assert [(q["query_id"], q["query_text"]) for q in queries] == [
        ("301", "International Organized Crime"),
        ("302", "Poliomyelitis and Post-Polio"),
        ("303", "Hubble Telescope Achievements"),  # no judgments: kept, nothing relevant
    ]
    assert queries[0]["query_input"] == '{"text":"International Organized Crime"}'
    assert judgments == [
        ("301", "FBIS3-10082", 1),
        ("301", "FBIS3-10169", 0),
        ("301", "LA010189-0001", -1),  # grades as given
        ("302", "FT944-1", 2),
    ]
    assert (summary.format, summary.query_count, summary.judgment_count) == ("trec", 3, 4)
    assert summary.relevant_count == 2


def test_trec_qrels_with_tsv_topics_and_header(paths: DataPaths, tmp_path: Path) -> None:
    topics = write(tmp_path / "topics.tsv", "qid\ttext\nq1\t  wireless mouse \nq2\tusb hub\n")
    qrels = write(tmp_path / "test.qrels", "q1 0 d1 2\nq2 0 d2 1\nq2 0 d3 0\n")

    summary = import_dataset(paths, "tsv", [topics, qrels], fmt="trec")

    queries, judgments = stored(paths, "tsv")
    assert queries == [
        {
            "query_id": "q1",
            "query_input": '{"text":"wireless mouse"}',
            "query_text": "wireless mouse",
        },
        {"query_id": "q2", "query_input": '{"text":"usb hub"}', "query_text": "usb hub"},
    ]
    assert judgments == [("q1", "d1", 2), ("q2", "d2", 1), ("q2", "d3", 0)]
    assert (summary.relevant_count, summary.ignored_queries) == (2, 0)


# --- beir -----------------------------------------------------------------------------------------


def test_beir_queries_and_qrels_keep_the_judged_queries(paths: DataPaths, tmp_path: Path) -> None:
    queries_file = write_jsonl(
        tmp_path / "queries.jsonl",
        [
            {
                "_id": "0",
                "text": "0-dimensional biomaterials lack inductive properties.",
                "metadata": {},
            },
            {"_id": "2", "text": "1 in 5 million in UK have abnormal PrP positivity."},
            {"_id": "13", "text": "not in this split", "metadata": {"split": "train"}},
        ],
    )
    qrels = tmp_path / "test.tsv"
    qrels.write_bytes(
        b"query-id\tcorpus-id\tscore\r\n0\t31715818\t1\r\n2\t13734012\t1\r\n2\t4\t0\r\n"
    )

    summary = import_dataset(paths, "scifact", [qrels, queries_file])

    queries, judgments = stored(paths, "scifact")
    assert queries == [
        {
            "query_id": "0",
            "query_input": '{"text":"0-dimensional biomaterials lack inductive properties."}',
            "query_text": "0-dimensional biomaterials lack inductive properties.",
        },
        {
            "query_id": "2",
            "query_input": '{"text":"1 in 5 million in UK have abnormal PrP positivity."}',
            "query_text": "1 in 5 million in UK have abnormal PrP positivity.",
        },
    ]
    assert judgments == [("0", "31715818", 1), ("2", "13734012", 1), ("2", "4", 0)]
    assert (summary.format, summary.ignored_queries, summary.relevant_count) == ("beir", 1, 2)


# --- auto -----------------------------------------------------------------------------------------


def test_auto_refuses_files_of_different_formats(paths: DataPaths, tmp_path: Path) -> None:
    truth = write_jsonl(
        tmp_path / "truth.jsonl",
        [{"query_id": "q1", "query_input": {"text": "a"}, "relevant_documents": []}],
    )
    qrels = write(tmp_path / "x.qrels", "q1 0 d1 1\n")

    with pytest.raises(DatasetInputError) as caught:
        import_dataset(paths, "mixed", [truth, qrels])

    assert [str(p) for p in caught.value.problems] == [
        f"format: the files look like different formats: {truth} (ground_truth JSON lines),"
        f" {qrels} (TREC qrels); pass --format ground_truth, trec or beir"
    ]
    assert not paths.datasets_dir.exists()


def test_auto_refuses_a_first_line_it_cannot_place(paths: DataPaths, tmp_path: Path) -> None:
    both = write(tmp_path / "both.jsonl", '{"query_id": "q1", "_id": "q1"}\n')
    odd = write(tmp_path / "odd.txt", "just some words here and there\n")

    with pytest.raises(DatasetInputError) as caught:
        import_dataset(paths, "odd", [both, odd])

    messages = [str(p) for p in caught.value.problems]
    assert [m.split(": format: ")[0] for m in messages] == [f"{both}:1", f"{odd}:1"]
    assert all("cannot tell what this file is" in m and "pass --format" in m for m in messages)


def test_an_explicit_format_reads_files_as_that_format(paths: DataPaths, tmp_path: Path) -> None:
    truth = write_jsonl(
        tmp_path / "truth.jsonl",
        [{"query_id": "q1", "query_input": {"text": "a"}, "relevant_documents": ["d1"]}],
    )

    with pytest.raises(DatasetInputError) as caught:
        import_dataset(paths, "x", [truth], fmt="beir")

    assert [str(p) for p in caught.value.problems] == [
        "format: beir needs a qrels TSV file with the header query-id<TAB>corpus-id<TAB>score;"
        f" got {truth}"
    ]


# --- the demo's own dataset, in every shape -------------------------------------------------------


def test_the_demo_dataset_imports_the_same_from_every_shape(
    paths: DataPaths, tmp_path: Path, demo_dataset: tuple[dict[str, Path], dict]
) -> None:
    files, step = demo_dataset
    records = [json.loads(line) for line in files["jsonl"].read_text(encoding="utf-8").splitlines()]
    beir_queries = write_jsonl(
        tmp_path / "queries.jsonl",
        [{"_id": r["query_id"], "text": r["query_input"]["text"]} for r in records],
    )
    beir_qrels = write(
        tmp_path / "test.tsv",
        "query-id\tcorpus-id\tscore\n"
        + "".join(
            f"{r['query_id']}\t{doc}\t{r['relevance_scores'][doc]}\n"
            for r in records
            for doc in r["relevant_documents"]
        ),
    )

    from_jsonl = import_dataset(paths, "demo-jsonl", [files["jsonl"]])
    from_trec = import_dataset(paths, "demo-trec", [files["qrels"], files["topics"]])
    from_beir = import_dataset(paths, "demo-beir", [beir_queries, beir_qrels])

    assert [s.format for s in (from_jsonl, from_trec, from_beir)] == [
        "ground_truth",
        "trec",
        "beir",
    ]
    assert from_jsonl.dataset_id == from_trec.dataset_id == from_beir.dataset_id
    jsonl, trec, beir = (load_dataset(paths, n) for n in ("demo-jsonl", "demo-trec", "demo-beir"))
    assert jsonl.queries.equals(trec.queries) and jsonl.queries.equals(beir.queries)
    assert jsonl.judgments.equals(trec.judgments) and jsonl.judgments.equals(beir.judgments)
    assert from_jsonl.query_count == step["queries"] == 100
    assert from_jsonl.judgment_count == from_jsonl.relevant_count == step["judged_documents"]
    grades = jsonl.judgments.column("relevance").to_pylist()
    assert {str(g): grades.count(g) for g in (1, 2, 3)} == step["grade_counts"]
    expected = sorted(
        (r["query_id"], doc, r["relevance_scores"][doc])
        for r in records
        for doc in r["relevant_documents"]
    )
    assert stored(paths, "demo-trec")[1] == expected
