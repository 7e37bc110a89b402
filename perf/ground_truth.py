"""Benchmark 1: per-query trec_eval measures from TREC qrels and run files, against pytrec_eval (and ranx).

Every query has 100 retrieved documents with distinct scores and 1..10 relevant documents graded 1..3
(some retrieved, some not), plus a few judged non-relevant ones. End to end means from the two files to
per-query values, including each tool's own parsing (pytrec_eval needs dicts, built here the plain
way a user would). The "metrics only" contenders time the kernels on inputs already parsed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.metrics.ground_truth import evaluate_rankings, measure_names
from eval_pipelines.core.storage import atomic_path
from eval_pipelines.core.trec import read_qrels, read_run
from perf.harness import BenchmarkResult, CorrectnessError, Target, run_contenders

NAME = "ground_truth"
QUERIES: dict[str, int] = {"tiny": 300, "small": 10_000, "full": 100_000}
DEPTH = 100
CUTOFFS: tuple[int, ...] = (1, 5, 10, 20)
PYTREC_CUT: tuple[str, ...] = ("P", "recall", "map_cut", "ndcg_cut")
PYTREC_UNCUT: tuple[str, ...] = (
    "map",
    "ndcg",
    "recip_rank",
    "set_P",
    "set_recall",
    "set_F",
    "num_ret",
    "num_rel",
    "num_rel_ret",
)
PYTREC_MEASURES: frozenset[str] = frozenset(
    [f"{family}.{','.join(map(str, CUTOFFS))}" for family in PYTREC_CUT] + list(PYTREC_UNCUT)
)
COMPARED_MEASURES: tuple[str, ...] = tuple(
    [f"{family}_{k}" for family in PYTREC_CUT for k in CUTOFFS] + list(PYTREC_UNCUT)
)
RANX_MEASURES: dict[str, str] = {
    **{
        f"{ranx}@{k}": f"{ours}_{k}"
        for ranx, ours in (
            ("precision", "P"),
            ("recall", "recall"),
            ("f1", "F1"),
            ("map", "map_cut"),
            ("ndcg", "ndcg_cut"),
            ("mrr", "recip_rank_cut"),
        )
        for k in CUTOFFS
    },
    "precision": "set_P",
    "recall": "set_recall",
    "f1": "set_F",
    "map": "map",
    "ndcg": "ndcg",
    "mrr": "recip_rank",
}
CHECKED_QUERIES = 2_000
TOLERANCE = 1e-9
_DOCUMENT_SPACING = 7
_UNRETRIEVED_BASE = DEPTH * _DOCUMENT_SPACING
_DOCUMENTS_PER_BLOCK = _UNRETRIEVED_BASE + 20


def _text(values: np.ndarray, prefix: str = "") -> pa.Array:
    text = pc.cast(pa.array(values), pa.string())
    return pc.binary_join_element_wise(prefix, text, "") if prefix else text


def _write_lines(path: Path, fields: list[pa.Array | str]) -> None:
    """One line per row, fields space-separated, written through pyarrow's string buffer."""
    lines = pc.binary_join_element_wise(pc.binary_join_element_wise(*fields, " "), "\n", "")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=0)
    data = lines.buffers()[2]
    with atomic_path(path) as temporary:
        temporary.write_bytes(data.to_pybytes()[offsets[0] : offsets[-1]])


def write_trec_files(directory: Path, query_count: int, seed: int) -> tuple[Path, Path]:
    """A qrels and a run file for query_count queries (deterministic given the seed)."""
    rng = np.random.default_rng(seed)
    query = np.arange(query_count)
    block = (query % 1_000) * _DOCUMENTS_PER_BLOCK
    local = np.arange(DEPTH) * _DOCUMENT_SPACING + rng.integers(
        0, _DOCUMENT_SPACING, size=(query_count, DEPTH)
    )
    retrieved = rng.permuted(local, axis=1) + block[:, None]
    query_ids = _text(query, "q")
    run_query = pc.take(query_ids, np.repeat(query, DEPTH))
    rank = np.tile(np.arange(1, DEPTH + 1), query_count)
    score = np.round(1_000.0 - rank + rng.random(query_count * DEPTH) * 0.5, 4)
    run_path = directory / "run.txt"
    _write_lines(
        run_path,
        [run_query, "Q0", _text(retrieved.ravel(), "d"), _text(rank), _text(score), "bench"],
    )

    relevant_count = rng.integers(1, 11, size=query_count)
    positions = rng.permuted(np.tile(np.arange(DEPTH), (query_count, 1)), axis=1)[:, :13]
    from_run = rng.random((query_count, 10)) < 0.6
    relevant_doc = np.where(
        from_run,
        np.take_along_axis(retrieved, positions[:, :10], axis=1),
        block[:, None] + _UNRETRIEVED_BASE + np.arange(10),
    )
    keep = np.arange(10) < relevant_count[:, None]
    judged_query = np.concatenate([np.repeat(query, 10)[keep.ravel()], np.repeat(query, 3)])
    judged_doc = np.concatenate(
        [relevant_doc[keep], np.take_along_axis(retrieved, positions[:, 10:], axis=1).ravel()]
    )
    grade = np.concatenate([rng.integers(1, 4, size=int(keep.sum())), np.zeros(3 * query_count)])
    order = np.lexsort((judged_doc, judged_query))
    qrels_path = directory / "qrels.txt"
    _write_lines(
        qrels_path,
        [
            pc.take(query_ids, judged_query[order]),
            "0",
            _text(judged_doc[order], "d"),
            _text(grade[order].astype(np.int64)),
        ],
    )
    return qrels_path, run_path


def engine_from_files(qrels_path: Path, run_path: Path) -> pa.Table:
    """eval-pipelines end to end: parse both files, then every measure per query."""
    qrels = read_qrels(qrels_path)
    query_ids, rankings = read_run(run_path)
    return evaluate_rankings(query_ids, rankings, qrels, k_values=CUTOFFS)


def pytrec_eval_dicts(
    qrels_path: Path, run_path: Path
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, float]]]:
    """The dicts pytrec_eval takes, read line by line as its users do."""
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open() as lines:
        for line in lines:
            query_id, _, document_id, relevance = line.split()
            qrels.setdefault(query_id, {})[document_id] = int(relevance)
    run: dict[str, dict[str, float]] = {}
    with run_path.open() as lines:
        for line in lines:
            query_id, _, document_id, _, score, _ = line.split()
            run.setdefault(query_id, {})[document_id] = float(score)
    return qrels, run


def pytrec_eval_evaluate(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    import pytrec_eval

    return pytrec_eval.RelevanceEvaluator(qrels, set(PYTREC_MEASURES)).evaluate(run)


def ranx_inputs(qrels_path: Path, run_path: Path) -> tuple[Any, Any]:
    """ranx's Qrels and Run, built from the files by ranx's own readers."""
    from ranx import Qrels, Run

    return Qrels.from_file(str(qrels_path), kind="trec"), Run.from_file(str(run_path), kind="trec")


def ranx_evaluate(qrels: Any, run: Any) -> dict[str, np.ndarray]:
    """Per-query values of every measure both tools define alike (not stored back into the run)."""
    from ranx import evaluate

    return evaluate(qrels, run, list(RANX_MEASURES), return_mean=False, save_results_in_run=False)


def ranx_from_files(qrels_path: Path, run_path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    qrels, run = ranx_inputs(qrels_path, run_path)
    return list(run.keys()), ranx_evaluate(qrels, run)


def check_against_ranx(
    engine: pa.Table, reference: tuple[list[str], dict[str, np.ndarray]]
) -> dict[str, Any]:
    """Raise CorrectnessError unless ranx gives the same value for every query and common measure."""
    query_ids, values = reference
    if sorted(query_ids) != sorted(engine.column("query_id").to_pylist()):
        raise CorrectnessError("ranx and eval-pipelines evaluated different query sets")
    row_of = {query_id: row for row, query_id in enumerate(engine.column("query_id").to_pylist())}
    rows = np.array([row_of[query_id] for query_id in query_ids])
    worst = 0.0
    for ranx_name, ours in RANX_MEASURES.items():
        difference = np.abs(engine.column(ours).to_numpy()[rows] - np.asarray(values[ranx_name]))
        if not np.all(difference <= TOLERANCE):
            at = int(np.nanargmax(np.where(np.isnan(difference), np.inf, difference)))
            raise CorrectnessError(
                f"{ours} differs from ranx {ranx_name} for query {query_ids[at]}:"
                f" engine {engine.column(ours)[int(rows[at])].as_py()} vs ranx {values[ranx_name][at]}"
            )
        worst = max(worst, float(difference.max()))
    return {
        "queries_compared": len(query_ids),
        "measures_compared": dict(RANX_MEASURES),
        "max_abs_difference": worst,
    }


def check_against_pytrec_eval(
    engine: pa.Table, reference: dict[str, dict[str, float]], seed: int
) -> dict[str, Any]:
    """Raise CorrectnessError unless both give the same queries and values on a sample of them."""
    engine_ids = engine.column("query_id").to_pylist()
    if set(engine_ids) != set(reference):
        missing = sorted(set(reference) - set(engine_ids))[:5]
        extra = sorted(set(engine_ids) - set(reference))[:5]
        raise CorrectnessError(f"query sets differ: missing {missing}, extra {extra}")
    rng = np.random.default_rng(seed)
    rows = np.sort(
        rng.choice(len(engine_ids), min(CHECKED_QUERIES, len(engine_ids)), replace=False)
    )
    worst = 0.0
    for measure in COMPARED_MEASURES:
        ours = engine.column(measure).to_numpy()[rows]
        theirs = np.array([reference[engine_ids[row]][measure] for row in rows])
        difference = np.abs(ours - theirs)
        if not np.all(difference <= TOLERANCE):
            row = int(rows[int(np.nanargmax(np.where(np.isnan(difference), np.inf, difference)))])
            raise CorrectnessError(
                f"{measure} differs for query {engine_ids[row]}:"
                f" engine {engine.column(measure)[row].as_py()}"
                f" vs pytrec_eval {reference[engine_ids[row]][measure]}"
            )
        worst = max(worst, float(difference.max()))
    return {
        "queries_compared": int(rows.size),
        "measures_compared": list(COMPARED_MEASURES),
        "max_abs_difference": worst,
        "tolerance": TOLERANCE,
        "engine_measures": measure_names(CUTOFFS),
    }


def run(scale: str, repeat: int, workdir: Path, seed: int = 1) -> BenchmarkResult:
    query_count = QUERIES[scale]
    qrels_path, run_path = write_trec_files(workdir, query_count, seed)
    parsed_qrels = read_qrels(qrels_path)
    parsed_ids, parsed_rankings = read_run(run_path)
    trec_qrels, trec_run = pytrec_eval_dicts(qrels_path, run_path)
    contenders = [
        ("eval-pipelines", lambda: engine_from_files(qrels_path, run_path)),
        (
            "pytrec_eval",
            lambda: pytrec_eval_evaluate(*pytrec_eval_dicts(qrels_path, run_path)),
        ),
    ]
    kernels = [
        (
            "eval-pipelines metrics only",
            lambda: evaluate_rankings(parsed_ids, parsed_rankings, parsed_qrels, k_values=CUTOFFS),
        ),
        ("pytrec_eval metrics only", lambda: pytrec_eval_evaluate(trec_qrels, trec_run)),
    ]
    unavailable: dict[str, str] = {}
    try:
        import ranx  # noqa: F401
    except ImportError:
        unavailable["ranx"] = "not installed: pip install -e .[bench]"
    else:
        ranx_qrels, ranx_run = ranx_inputs(qrels_path, run_path)
        ranx_typed = (ranx_qrels.to_typed_list(), ranx_run.to_typed_list())
        contenders.append(("ranx", lambda: ranx_from_files(qrels_path, run_path)))
        kernels.append(("ranx metrics only", lambda: ranx_evaluate(*ranx_typed)))
    results, outputs = run_contenders(contenders + kernels, repeat)
    checks = {
        "pytrec_eval": check_against_pytrec_eval(
            outputs["eval-pipelines"], outputs["pytrec_eval"], seed
        )
    }
    if not outputs["eval-pipelines"].equals(outputs["eval-pipelines metrics only"]):
        raise CorrectnessError("metrics-only run differs from the end-to-end run")
    medians = {r.name: r.median_seconds for r in results}
    targets = [
        Target(
            "speed-up over pytrec_eval end to end (x)",
            medians["pytrec_eval"] / medians["eval-pipelines"],
            10.0,
            higher_is_better=True,
        )
    ]
    notes = [
        "eval-pipelines computes more measures than pytrec_eval offers (F1/F2 at k,"
        " recip_rank_cut, set_F2); only the common ones are compared.",
        "pytrec_eval's input dicts and ranx's Qrels/Run are built from the same files inside"
        " their timed end-to-end steps; the metrics-only steps start from parsed inputs"
        " (ranx: its Numba typed lists).",
    ]
    if "ranx" in medians:
        ranx_output = outputs["ranx"]
        checks["ranx"] = check_against_ranx(outputs["eval-pipelines"], ranx_output)
        checks["ranx"]["first_call_seconds"] = {
            r.name: r.warmup_seconds[0] for r in results if r.name.startswith("ranx")
        }
        targets.append(
            Target(
                "metric kernel time relative to ranx's kernel (x, lower is faster)",
                medians["eval-pipelines metrics only"] / medians["ranx metrics only"],
                2.0,
            )
        )
        first = checks["ranx"]["first_call_seconds"]
        notes.append(
            f"ranx's first calls (Numba compiling, or loading its on-disk cache) took"
            f" {first['ranx']:.1f} s end to end and {first['ranx metrics only']:.1f} s for the"
            " kernel; they are warm-up rounds, not in the medians."
        )
    return BenchmarkResult(
        name=NAME,
        parameters={
            "queries": query_count,
            "depth": DEPTH,
            "run_lines": query_count * DEPTH,
            "cutoffs": list(CUTOFFS),
            "seed": seed,
        },
        contenders=results,
        checks=checks,
        targets=targets,
        notes=notes,
        unavailable=unavailable,
        peer_groups=[tuple(name for name, _ in contenders), tuple(name for name, _ in kernels)],
    )
