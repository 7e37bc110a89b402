"""BM25 indexes (bm25s) over chosen collection fields, cached on disk and in process.

An index is keyed by the collection's content and every setting that changes scores, so a cached
index is reused only when it would rank exactly like a fresh one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import Stemmer
from bm25s.tokenization import Tokenizer

from eval_pipelines.core.retrieval.collections import Collection
from eval_pipelines.core.storage import new_staging_directory

BM25_METHODS = ("lucene", "robertson", "atire", "bm25l", "bm25+")
STEMMERS = ("english", "none")
STOPWORDS = ("en", "none")
INDEX_FORMAT = 1
TOKENIZER_VOCAB_FILE = "vocab.tokenizer.json"
MANIFEST_FILE = "manifest.json"

BUILT, LOADED, MEMORY = "built", "loaded", "memory"


@dataclass(frozen=True)
class BM25Settings:
    fields: tuple[str, ...]
    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"
    stemmer: str = "english"
    stopwords: str = "en"

    def as_dict(self) -> dict[str, Any]:
        return {
            "fields": list(self.fields),
            "k1": self.k1,
            "b": self.b,
            "method": self.method,
            "stemmer": self.stemmer,
            "stopwords": self.stopwords,
        }


def _tokenizer(settings: BM25Settings) -> Tokenizer:
    return Tokenizer(
        lower=True,
        stopwords="en" if settings.stopwords == "en" else None,
        stemmer=Stemmer.Stemmer("english") if settings.stemmer == "english" else None,
    )


class BM25Index:
    """A bm25s model plus the tokenizer whose vocabulary it was built with."""

    def __init__(self, model: bm25s.BM25, tokenizer: Tokenizer, source: str) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.source = source
        self.num_docs = int(model.scores["num_docs"])
        self._indices: np.ndarray = model.scores["indices"]
        self._indptr: np.ndarray = model.scores["indptr"]

    def token_ids(self, text: str) -> list[int]:
        """Query token ids in the index vocabulary; words the index never saw are dropped."""
        if not text:
            return []
        return next(
            self.tokenizer.streaming_tokenize([text], update_vocab=False, allow_empty=False)
        )

    def search(
        self, text: str, top_k: int, allowed_rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Top-k (rows, scores) among documents containing a query token, ties by document order.

        Returns also the number of query tokens found in the vocabulary. A query without such
        tokens matches nothing.
        """
        ids = self.token_ids(text)
        if not ids or top_k <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float64), len(ids)
        starts, ends = self._indptr[ids], self._indptr[np.asarray(ids) + 1]
        contains_token = np.zeros(self.num_docs, dtype=bool)
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            contains_token[self._indices[start:end]] = True
        matched = np.flatnonzero(contains_token)
        if allowed_rows is not None:
            matched = matched[np.isin(matched, allowed_rows, assume_unique=True)]
        scores = self.model.get_scores_from_ids(ids)[matched].astype(np.float64)
        if len(matched) > top_k:
            kth_best = np.partition(scores, len(scores) - top_k)[len(scores) - top_k]
            keep = scores >= kth_best
            matched, scores = matched[keep], scores[keep]
        order = np.argsort(-scores, kind="stable")[:top_k]
        return matched[order], scores[order], len(ids)


def index_key(collection: Collection, settings: BM25Settings) -> str:
    payload = {
        "collection": collection.content_digest,
        "settings": settings.as_dict(),
        "bm25s": bm25s.__version__,
        "format": INDEX_FORMAT,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


def index_dir(collection: Collection, settings: BM25Settings) -> Path:
    return collection.index_cache / index_key(collection, settings)


def _build(collection: Collection, settings: BM25Settings) -> BM25Index:
    tokenizer = _tokenizer(settings)
    corpus = tokenizer.tokenize(
        collection.texts(settings.fields),
        update_vocab=True,
        return_as="tuple",
        show_progress=False,
    )
    model = bm25s.BM25(k1=settings.k1, b=settings.b, method=settings.method)
    model.index(corpus, show_progress=False)
    return BM25Index(model, tokenizer, BUILT)


def _save(index: BM25Index, target: Path, manifest: dict[str, Any]) -> None:
    """Write into a temporary sibling directory and rename it into place (a lost race is harmless)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = new_staging_directory(target.parent, prefix=f".{target.name}.")
    try:
        index.model.save(str(staging), show_progress=False)
        index.tokenizer.save_vocab(str(staging), vocab_name=TOKENIZER_VOCAB_FILE)
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, sort_keys=True), "utf-8")
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / MANIFEST_FILE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _load(directory: Path, settings: BM25Settings) -> BM25Index:
    model = bm25s.BM25.load(str(directory), show_progress=False, verbosity=0)
    tokenizer = _tokenizer(settings)
    tokenizer.load_vocab(str(directory), vocab_name=TOKENIZER_VOCAB_FILE)
    return BM25Index(model, tokenizer, LOADED)


_loaded: dict[Path, BM25Index] = {}
_lock = threading.Lock()


def get_index(collection: Collection, settings: BM25Settings) -> BM25Index:
    """The index for these settings: from this process, else from disk, else built and saved.

    The returned object's `source` says which ("memory", "loaded" or "built").
    """
    directory = index_dir(collection, settings)
    with _lock:
        cached = _loaded.get(directory)
        if cached is not None:
            return BM25Index(cached.model, cached.tokenizer, MEMORY)
        if (directory / MANIFEST_FILE).is_file():
            index = _load(directory, settings)
        else:
            index = _build(collection, settings)
            manifest = {
                "collection": collection.name,
                "collection_digest": collection.content_digest,
                "num_docs": index.num_docs,
                "settings": settings.as_dict(),
                "bm25s": bm25s.__version__,
                "format": INDEX_FORMAT,
            }
            _save(index, directory, manifest)
        _loaded[directory] = index
        return index


def clear_memory_cache() -> None:
    """Forget indexes loaded in this process (the disk cache stays)."""
    with _lock:
        _loaded.clear()
