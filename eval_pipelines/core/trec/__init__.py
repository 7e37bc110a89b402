"""TREC qrels and run files, read and written column-wise (numpy and pyarrow; no per-line Python loop).

qrels: `query_id iteration document_id relevance` (relevance an integer, possibly negative).
run:   `query_id Q0 document_id rank score tag`.
Columns are separated by any run of spaces or tabs; blank lines and a leading UTF-8 byte-order mark
are skipped. iteration, Q0 and tag are not used; rank must be an integer (a swapped rank and score
column is caught) but is not used either: as trec_eval does, read_run orders each query's documents
by score descending, then document id descending (byte order). A (query, document) pair given twice
is refused, as trec_eval refuses it. Bad input raises InvalidInputError listing every bad line as
`file:line: problem`; nothing partial is returned.

columns.py splits the text into columns, presorted.py is the fast path for well-formed runs in any
line order, ordering.py sorts rows into trec_eval's order with Arrow, reading.py reads qrels and runs,
writing.py writes runs.
"""

from eval_pipelines.core.trec.columns import QRELS_FIELDS, RUN_FIELDS, bad_lines_message
from eval_pipelines.core.trec.ordering import trec_ordered
from eval_pipelines.core.trec.reading import read_qrels, read_run, read_run_table
from eval_pipelines.core.trec.writing import (
    DEFAULT_RUN_TAG,
    RankingsInput,
    ScoresInput,
    run_table,
    stream_run,
    write_run,
)

__all__ = [
    "DEFAULT_RUN_TAG",
    "QRELS_FIELDS",
    "RUN_FIELDS",
    "RankingsInput",
    "ScoresInput",
    "bad_lines_message",
    "read_qrels",
    "read_run",
    "read_run_table",
    "run_table",
    "stream_run",
    "trec_ordered",
    "write_run",
]
