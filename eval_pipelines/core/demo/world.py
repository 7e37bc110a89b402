"""Building the demo world step by step; each step reads what the earlier ones wrote to disk.

Steps: catalog -> retrievers -> intents (+ true grades) -> logs (served by demo_prod through the real
engine, with the traffic structure of traffic.py, clicked by simulated users, ingested like real logs;
the users' true examination beside them) -> judgments. Same seed, same bytes.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from eval_pipelines.core.datasets import import_dataset
from eval_pipelines.core.demo import judgments as judgments_module
from eval_pipelines.core.demo.catalog import (
    COLLECTION,
    TRUTH_FILE,
    generate_catalog,
    read_catalog_truth,
)
from eval_pipelines.core.demo.intents import generate_intents, grade_table, intents_table
from eval_pipelines.core.demo.log_lines import DemoLogLines
from eval_pipelines.core.demo.lookups import GradeLookup, IdIndex
from eval_pipelines.core.demo.retrievers import DEMO_RETRIEVER_IDS, PROD
from eval_pipelines.core.demo.retrievers import write_demo_retrievers as _write_retrievers
from eval_pipelines.core.demo.traffic import (
    EXAMINATION_FILE,
    DemoLogStructure,
    assign_traffic,
    examination_truth,
    pairs_at_several_positions,
    rendered_slots,
    structure_summary,
)
from eval_pipelines.core.demo.users import (
    NOT_SERVED,
    ClickModel,
    draw_users,
    simulate_interactions,
)
from eval_pipelines.core.demo.vocabulary import taxonomy, taxonomy_rows
from eval_pipelines.core.logs.ingest import IngestReport, ingest_files
from eval_pipelines.core.paths import DataPath, DataPaths
from eval_pipelines.core.progress import ProgressOutput
from eval_pipelines.core.retrieval.collections import collection_file, write_collection
from eval_pipelines.core.retrieval.registry import open_retriever
from eval_pipelines.core.storage import write_parquet_atomic, write_text_atomic

DEFAULT_SEED = 20261101
LOGS_END = datetime(2026, 11, 1, tzinfo=UTC)
SERVED_DEPTH = 24

INTENTS_FILE = "intents.parquet"
GRADES_FILE = "grades.parquet"
TAXONOMY_FILE = "taxonomy.parquet"
RAW_DIR = "raw"
RAW_EXECUTIONS = "executions.jsonl"
RAW_INTERACTIONS = "interactions.jsonl"
DATASETS_DIR = "datasets"
STEPS_DIR = "steps"
STEPS: tuple[str, ...] = ("catalog", "retrievers", "intents", "logs", "judgments")


@dataclass(frozen=True)
class DemoScale:
    """How big the world is; the defaults are the full demo."""

    products: int = 20_000
    intents: int = 2_400
    executions: int = 60_000
    judged_queries: int = 600
    days: int = 35

    @classmethod
    def small(cls) -> DemoScale:
        """A world that builds in a few seconds, for tests and a quick look."""
        return cls(products=2_000, intents=300, executions=4_000, judged_queries=100, days=35)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"DemoScale.{name}: expected a positive integer, got {value!r}")


def dataset_files(paths: DataPaths) -> dict[str, DataPath]:
    """The demo-judgments dataset in its three shapes."""
    base = paths.demo_dir / DATASETS_DIR / judgments_module.DATASET
    return {
        "jsonl": base.with_name(base.name + ".jsonl"),
        "qrels": base.with_name(base.name + ".qrels"),
        "topics": base.with_name(base.name + ".topics.tsv"),
    }


def raw_log_files(paths: DataPaths) -> dict[str, DataPath]:
    raw = paths.demo_dir / RAW_DIR
    return {"executions": raw / RAW_EXECUTIONS, "interactions": raw / RAW_INTERACTIONS}


def _step_file(paths: DataPaths, step: str) -> DataPath:
    return paths.demo_dir / STEPS_DIR / f"{step}.json"


def _record_step(paths: DataPaths, step: str, summary: dict[str, Any]) -> dict[str, Any]:
    write_text_atomic(json.dumps(summary, indent=2, sort_keys=True) + "\n", _step_file(paths, step))
    return summary


def _read_step(paths: DataPaths, step: str) -> dict[str, Any] | None:
    file = _step_file(paths, step)
    if not file.is_file():
        return None
    return json.loads(file.read_text(encoding="utf-8"))


def _require(file: DataPath, step: str) -> str:
    if not file.is_file():
        raise FileNotFoundError(f"{file}: missing; run the demo step {step!r} first")
    return str(file)


def build_catalog(
    paths: DataPaths, seed: int = DEFAULT_SEED, scale: DemoScale | None = None
) -> dict[str, Any]:
    """Write the `products` collection, the latent truth behind it, and the taxonomy."""
    scale = scale or DemoScale()
    products, truth = generate_catalog(seed, scale.products)
    collection_path = write_collection(paths, COLLECTION, products)
    write_parquet_atomic(truth, paths.demo_dir / TRUTH_FILE)
    write_parquet_atomic(pa.Table.from_pylist(taxonomy_rows()), paths.demo_dir / TAXONOMY_FILE)
    leaf_counts = pc.value_counts(products.column("taxonomy_node_id"))
    return _record_step(
        paths,
        "catalog",
        {
            "seed": seed,
            "collection": COLLECTION,
            "products": products.num_rows,
            "taxonomy_parents": len(taxonomy()),
            "taxonomy_leaves": len(leaf_counts),
            "smallest_leaf": int(pc.min(leaf_counts.field("counts")).as_py()),
            "largest_leaf": int(pc.max(leaf_counts.field("counts")).as_py()),
            "brands": len(pc.unique(products.column("brand"))),
            "mean_rating": round(float(pc.mean(products.column("rating")).as_py()), 3),
            "path": str(collection_path.relative_to(paths.root)),
        },
    )


def write_demo_retrievers(paths: DataPaths) -> dict[str, Any]:
    """Write the five demo retriever YAMLs (ids fixed)."""
    summary = _write_retrievers(paths)
    summary["directory"] = str(paths.retrievers_dir.relative_to(paths.root))
    return _record_step(paths, "retrievers", summary)


def build_intents(
    paths: DataPaths, seed: int = DEFAULT_SEED, scale: DemoScale | None = None
) -> dict[str, Any]:
    """Draw query intents over the written catalog and grade every (intent, product) pair."""
    scale = scale or DemoScale()
    catalog = read_catalog_truth(paths)
    intents = generate_intents(seed, catalog, scale.intents)
    grades = grade_table(intents, catalog)
    table = intents_table(intents, grades)
    metadata = {"demo_seed": str(seed)}
    write_parquet_atomic(table.replace_schema_metadata(metadata), paths.demo_dir / INTENTS_FILE)
    write_parquet_atomic(grades.replace_schema_metadata(metadata), paths.demo_dir / GRADES_FILE)
    grade_counts = np.bincount(grades.column("grade").to_numpy(), minlength=4)
    frequency = table.column("frequency").to_numpy()
    return _record_step(
        paths,
        "intents",
        {
            "seed": seed,
            "intents": table.num_rows,
            "graded_pairs": grades.num_rows,
            "grade_counts": {str(g): int(grade_counts[g]) for g in (1, 2, 3)},
            "mean_relevant_per_intent": round(grades.num_rows / table.num_rows, 1),
            "top_10_intents_traffic_share": round(float(frequency[:10].sum()), 4),
            "constraints_histogram": {
                str(k): int(v)
                for k, v in enumerate(np.bincount(table.column("n_constraints").to_numpy()))
            },
        },
    )


def _read_intents_and_grades(paths: DataPaths) -> tuple[pa.Table, pa.Table]:
    intents = pq.read_table(_require(paths.demo_dir / INTENTS_FILE, "intents"))
    grades = pq.read_table(_require(paths.demo_dir / GRADES_FILE, "intents"))
    return intents, grades


def serve_pages(paths: DataPaths, query_texts: list[str], depth: int) -> list[list[str]]:
    """demo_prod's top `depth` for each query text, through the real engine (one call per text)."""
    with open_retriever(paths, PROD) as retriever:
        executions = retriever.search_many([{"text": text} for text in query_texts])
    pages = []
    for text, execution in zip(query_texts, executions, strict=True):
        if execution.status != "completed":
            raise RuntimeError(f"{PROD} failed on {text!r}: {execution.error}")
        pages.append([d.document_id for d in execution.documents[:depth]])
    return pages


def _top_positions(
    paths: DataPaths, texts: np.ndarray, used: np.ndarray, documents: IdIndex, depth: int
) -> np.ndarray:
    """demo_prod's top `depth` per used query as catalog positions (-1 for empty slots)."""
    pages = serve_pages(paths, [str(texts[i]) for i in used], depth)
    top = np.full((len(used), depth), NOT_SERVED, dtype=np.int64)
    for row, page in enumerate(pages):
        if page:
            top[row, : len(page)] = documents.positions(np.array(page, dtype=object))
    return top


@contextmanager
def _local_copies(
    paths: DataPaths, files: dict[str, DataPath], texts: dict[str, str]
) -> Iterator[dict[str, Path]]:
    """Files just written under the root, as local files for readers of local input files (ingest,
    dataset import): themselves on a local root, else copies of their texts in a temp folder."""
    if not paths.is_remote:
        yield {key: Path(file) for key, file in files.items()}
        return
    with tempfile.TemporaryDirectory(prefix="eval-pipelines-demo-") as staging:
        local = {key: Path(staging) / file.name for key, file in files.items()}
        for key, file in local.items():
            file.write_text(texts[key], encoding="utf-8")
        yield local


def _relative_report(paths: DataPaths, report: IngestReport, source: DataPath) -> dict[str, Any]:
    """The ingest report with paths relative to the data directory, so the world can move; the
    file ingested is the raw file under the root (ingest may have read a local copy of it)."""
    summary = report.to_dict()
    summary["files"] = [_relative(paths, source)]
    summary["written"] = [_relative(paths, f) for f in summary["written"]]
    return summary


def _relative(paths: DataPaths, path: DataPath | str) -> str:
    """path's place under the data root, the same whether the root is a directory or a bucket."""
    text, root = str(path), str(paths.root).rstrip("/") + "/"
    if not text.startswith(root):
        raise ValueError(f"{text}: not under the data root {paths.root}")
    return text[len(root) :]


def _demo_log_parts(paths: DataPaths) -> list[DataPath]:
    """The normalized log files the last demo ingest wrote."""
    logs = _read_step(paths, "logs") or {}
    return [
        paths.root / written
        for report in logs.get("ingest", {}).values()
        for written in report.get("written", [])
    ]


def _remove_previous_demo_logs(paths: DataPaths) -> None:
    """Re-simulating replaces the demo's own ingested parts, never anyone else's rows."""
    for part in _demo_log_parts(paths):
        part.unlink(missing_ok=True)


def simulate_logs(
    paths: DataPaths,
    seed: int = DEFAULT_SEED,
    scale: DemoScale | None = None,
    *,
    structure: DemoLogStructure | None = None,
    progress: ProgressOutput | None = None,
) -> dict[str, Any]:
    """Serve Zipf-distributed searches (traffic structured as `structure` says), simulate users,
    write raw JSONL and the examination truth, ingest the JSONL (its progress to `progress`)."""
    scale = scale or DemoScale()
    structure = structure or DemoLogStructure()
    intents, grades = _read_intents_and_grades(paths)
    catalog = read_catalog_truth(paths)
    rng = np.random.default_rng([seed, 3])
    intent_ids = intents.column("intent_id").to_numpy(False)
    frequency = intents.column("frequency").to_numpy()
    texts = intents.column("query_text").to_numpy(False)
    leaf_ids = intents.column("taxonomy_node_id").to_numpy(False)

    intent_of = rng.choice(len(intents), size=scale.executions, p=frequency / frequency.sum())
    span_ms = scale.days * 86_400_000
    offsets = np.sort(rng.integers(0, span_ms, size=scale.executions))
    start = np.datetime64(LOGS_END.replace(tzinfo=None) - timedelta(days=scale.days), "ms")
    created = start + offsets.astype("timedelta64[ms]")
    n_users = max(20, scale.executions // 6)
    user_of = draw_users(rng, scale.executions, n_users)

    used = np.unique(intent_of)
    page_of = np.searchsorted(used, intent_of)
    documents = IdIndex(catalog.document_id, "document_id")
    top = _top_positions(
        paths, texts, used, documents, max(SERVED_DEPTH, structure.previous_candidates)
    )
    traffic = assign_traffic(
        np.random.default_rng([seed, 3, 1]),
        structure,
        offsets / 86_400_000,
        page_of,
        top,
        SERVED_DEPTH,
    )
    lookup = GradeLookup(grades, IdIndex(intent_ids, "intent_id"), documents)
    served = traffic.served
    page_grades = np.where(
        served >= 0,
        lookup(np.repeat(intent_of, SERVED_DEPTH).reshape(served.shape), served),
        NOT_SERVED,
    )
    model = ClickModel()
    simulated = simulate_interactions(rng, page_grades, model)
    impressions = rendered_slots(traffic, simulated.rendered_pages, model.page_size)

    raw = raw_log_files(paths)
    lines = DemoLogLines(scale.executions, n_users, user_of, created, catalog.document_id)
    interaction_rows = lines.interactions(simulated, impressions, served, model.page_size)
    raw_texts = {
        "executions": lines.executions(structure, traffic, page_of, used, texts, leaf_ids),
        "interactions": interaction_rows.text,
    }
    for table, text in raw_texts.items():
        write_text_atomic(text, raw[table])
    write_parquet_atomic(examination_truth(model, SERVED_DEPTH), paths.demo_dir / EXAMINATION_FILE)

    _remove_previous_demo_logs(paths)
    with _local_copies(paths, raw, raw_texts) as sources:
        reports = {
            table: ingest_files(paths, table, [sources[table]], progress=progress)
            for table in raw_texts
        }
    quarantined = {t: r.quarantined for t, r in reports.items() if r.quarantined}
    if quarantined:
        raise RuntimeError(f"demo logs broke the ingest contract: {quarantined}")
    created_at = lines.created_at
    return _record_step(
        paths,
        "logs",
        {
            "seed": seed,
            "retriever_id": PROD,
            "executions": scale.executions,
            "distinct_queries": len(used),
            "served_depth": SERVED_DEPTH,
            "users": len(np.unique(user_of)),
            "days": scale.days,
            "first_created_at": str(created_at[0]),
            "last_created_at": str(created_at[-1]),
            "interactions": interaction_rows.count,
            "interactions_by_type": interaction_rows.counts_by_type,
            "sessions_with_interactions": len(np.unique(simulated.execution)),
            "structure": structure_summary(
                structure,
                traffic,
                len(impressions),
                pairs_at_several_positions(page_of, served),
            ),
            "examination_file": str((paths.demo_dir / EXAMINATION_FILE).relative_to(paths.root)),
            "ingest": {t: _relative_report(paths, r, raw[t]) for t, r in reports.items()},
            "raw_files": {t: str(p.relative_to(paths.root)) for t, p in raw.items()},
        },
    )


def build_judgments(
    paths: DataPaths, seed: int = DEFAULT_SEED, scale: DemoScale | None = None
) -> dict[str, Any]:
    """Write the demo-judgments dataset (GroundTruthQuery JSONL, TREC qrels and topics) and import it."""
    scale = scale or DemoScale()
    intents, grades = _read_intents_and_grades(paths)
    selected = judgments_module.select_judged_intents(seed, intents.num_rows, scale.judged_queries)
    queries = judgments_module.judged_queries(intents, grades, selected)
    files = dataset_files(paths)
    texts = {
        "jsonl": judgments_module.jsonl_text(queries),
        "qrels": judgments_module.qrels_text(queries),
        "topics": judgments_module.topics_text(queries),
    }
    for kind, text in texts.items():
        write_text_atomic(text, files[kind])
    grade_counts = np.bincount([g for q in queries for g in q.grades], minlength=4)
    with _local_copies(paths, {"jsonl": files["jsonl"]}, texts) as local:
        registered = import_dataset(
            paths,
            judgments_module.DATASET,
            [local["jsonl"]],
            fmt="ground_truth",
            replace=True,
            source_files=[str(files["jsonl"])],
        )
    return _record_step(
        paths,
        "judgments",
        {
            "seed": seed,
            "dataset": judgments_module.DATASET,
            "queries": len(queries),
            "judged_documents": int(grade_counts.sum()),
            "grade_counts": {str(g): int(grade_counts[g]) for g in (1, 2, 3)},
            "files": {kind: str(path.relative_to(paths.root)) for kind, path in files.items()},
            "dataset_id": registered.dataset_id,
        },
    )


def build_demo_world(
    paths: DataPaths,
    seed: int = DEFAULT_SEED,
    scale: DemoScale | None = None,
    progress: ProgressOutput | Callable[[str], None] | None = None,
    *,
    structure: DemoLogStructure | None = None,
) -> dict[str, Any]:
    """Every step in order; returns each step's summary and how long it took."""
    scale = scale or DemoScale()
    structure = structure or DemoLogStructure()
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("catalog", lambda: build_catalog(paths, seed, scale)),
        ("retrievers", lambda: write_demo_retrievers(paths)),
        ("intents", lambda: build_intents(paths, seed, scale)),
        ("logs", lambda: simulate_logs(paths, seed, scale, structure=structure)),
        ("judgments", lambda: build_judgments(paths, seed, scale)),
    ]
    summary: dict[str, Any] = {
        "seed": seed,
        "scale": asdict(scale),
        "log_structure": structure.to_dict(),
        "steps": {},
        "seconds": {},
    }
    started = time.perf_counter()
    with ProgressOutput.of(progress).track("demo world", "steps", len(steps)) as tracker:
        for name, step in steps:
            step_started = time.perf_counter()
            summary["steps"][name] = step()
            summary["seconds"][name] = round(time.perf_counter() - step_started, 2)
            tracker.advance(1, detail=f"{name} built")
    summary["seconds"]["total"] = round(time.perf_counter() - started, 2)
    return summary


def demo_world_exists(paths: DataPaths) -> bool:
    """True when every step has completed and its main outputs are still on disk."""
    if any(_read_step(paths, step) is None for step in STEPS):
        return False
    expected = [
        collection_file(paths, COLLECTION),
        paths.demo_dir / TRUTH_FILE,
        paths.demo_dir / INTENTS_FILE,
        paths.demo_dir / GRADES_FILE,
        *raw_log_files(paths).values(),
        paths.demo_dir / EXAMINATION_FILE,
        *dataset_files(paths).values(),
        *(paths.retrievers_dir / f"{rid}.yaml" for rid in DEMO_RETRIEVER_IDS),
    ]
    return all(p.is_file() for p in [*expected, *_demo_log_parts(paths)])
