"""What `eval-pipelines trec-eval QRELS RUN [-q] [-m MEASURE ...]` computes: trec_eval's numbers as JSON.

Mirrors trec_eval (and pytrec_eval) on what is averaged: the queries present in both files. A query
whose judgments hold no relevant document (every grade <= 0) is still evaluated, scores 0 on every
measure and counts in the means, as trec_eval does; queries only in the qrels are ignored (trec_eval
without -c). The counts num_ret, num_rel and num_rel_ret are summed over queries, as trec_eval prints
them; every other measure is the mean. Means are not rounded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.metrics.ground_truth import (
    COUNT_MEASURES,
    all_measures,
    evaluate_rankings,
    parse_measure_names,
)
from eval_pipelines.core.trec import read_qrels, read_run

TREC_EVAL_CUTOFFS: tuple[int, ...] = (5, 10, 15, 20, 30, 100, 200, 500, 1000)
DEFAULT_CUTOFFS: tuple[int, ...] = (1, 5, 10, 20)
DEFAULT_FAMILIES: tuple[str, ...] = ("P", "recall", "F1", "F2", "map_cut", "ndcg_cut")
DEFAULT_UNCUT: tuple[str, ...] = ("map", "ndcg", "recip_rank", "set_P", "set_recall", "set_F")


def parse_measures(names: Sequence[str] | None) -> list[str]:
    """`-m` values as measure names: P_5 as is, P.5,10 as listed, a family alone at trec_eval's cutoffs.

    None: P, recall, F1, F2, map_cut, ndcg_cut at 1, 5, 10, 20, then map, ndcg, recip_rank, set_P,
    set_recall, set_F. An unknown name raises InvalidInputError naming it and the valid ones.
    """
    if names is None:
        measures = all_measures(DEFAULT_CUTOFFS, DEFAULT_FAMILIES, DEFAULT_UNCUT)
    else:
        measures = parse_measure_names(names, TREC_EVAL_CUTOFFS)
    return [m.name for m in measures]


def trec_eval(
    qrels_path: Path,
    run_path: Path,
    measures: Sequence[str] | None = None,
    per_query: bool = False,
) -> dict:
    """{"all": {measure: value}}, plus {"per_query": {query_id: {measure: value}}} when per_query.

    Problems in both files are reported together; no query in both files is an error too.
    """
    names = parse_measures(measures)
    qrels, (query_ids, rankings) = _read_both(Path(qrels_path), Path(run_path))
    judged = pc.is_in(query_ids, value_set=pc.unique(qrels.column("query_id")))
    if not pc.any(judged).as_py():
        raise InvalidInputError(
            f"{run_path}: none of its {len(query_ids)} queries has judgments in {qrels_path}"
        )
    if not pc.all(judged).as_py():
        query_ids, rankings = query_ids.filter(judged), rankings.filter(judged)
    table = evaluate_rankings(query_ids, rankings, qrels, measures=names)
    columns = {name: np.nan_to_num(table.column(name).to_numpy(), nan=0.0) for name in names}
    summary = {
        name: int(values.sum()) if name in COUNT_MEASURES else float(values.mean())
        for name, values in columns.items()
    }
    result: dict = {"all": summary}
    if per_query:
        as_python = {
            name: (values.astype(np.int64) if name in COUNT_MEASURES else values).tolist()
            for name, values in columns.items()
        }
        result["per_query"] = {
            query_id: {name: values[row] for name, values in as_python.items()}
            for row, query_id in enumerate(table.column("query_id").to_pylist())
        }
    return result


def _read_both(qrels_path: Path, run_path: Path) -> tuple[pa.Table, tuple[pa.Array, pa.ListArray]]:
    problems: list[str] = []
    qrels = run = None
    try:
        qrels = read_qrels(qrels_path)
    except InvalidInputError as error:
        problems.append(str(error))
    try:
        run = read_run(run_path)
    except InvalidInputError as error:
        problems.append(str(error))
    if qrels is None or run is None:
        raise InvalidInputError("\n".join(problems))
    return qrels, run
