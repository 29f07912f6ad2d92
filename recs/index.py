"""Nearest-neighbour search over unit vectors: inner product = cosine.

`search` answers "the k highest-scoring rows for these queries" for a whole matrix, in
blocks so memory stays bounded, using FAISS on every core. Scores that decide an order
are recomputed in float64 by `exact_scores`, so the same pair always gets the same score
whichever batch it was found in (a full and an incremental run then agree bit for bit as
long as the search is exact).

Two kinds of index, chosen by `IndexSettings` ("auto": by corpus size):
- `exact`: FAISS IndexFlatIP, every query against every row (BLAS). Used up to
  `EXACT_MAX` rows, where all-pairs search still takes about a minute on two cores.
- `hnsw`: FAISS IndexHNSWFlat, a navigable small-world graph: approximate, and its
  all-pairs search grows as n log n instead of n^2. A query asking for more rows than
  `HNSW_EXACT_K`, or for which the graph search comes back short, is answered exactly,
  so results are never short. The graph is built with FAISS's threads, so two builds of
  the same vectors can differ in rare near-ties; `--index exact` gives reproducible lists.
An inverted file (IVF) was measured too and rejected: on the real HuffPost vectors it
needed to scan about 40% of the corpus for recall@10 0.98 (README "Performance").
bench/index.py measures build time, all-pairs time, peak memory and recall@10.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recs.encoder import Progress, no_progress
from recs.errors import ConfigError

BLOCK_ROWS = 4096
INDEX_KINDS = ("auto", "exact", "hnsw")
EXACT_MAX = 50_000  # rows; above it "auto" builds the HNSW graph (measured: bench/index.py)
HNSW_M = 32  # graph neighbours per node (layer 0 keeps 2 * M)
HNSW_EF_CONSTRUCTION = 40  # candidate list while building
HNSW_EF_SEARCH = 64  # candidate list while searching (at least k)
HNSW_EXACT_K = 1024  # queries asking for more rows than this are answered exactly
HNSW_ADD_ROWS = 65_536  # rows added to the graph per call (progress between calls)


@dataclass(frozen=True)
class IndexSettings:
    """Which index to build: `kind` auto/exact/hnsw; auto is exact up to `exact_max` rows."""

    kind: str = "auto"
    exact_max: int = EXACT_MAX

    def __post_init__(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise ConfigError(
                f"RECS_INDEX/--index {self.kind!r} is not one of {', '.join(INDEX_KINDS)}"
            )
        if self.exact_max < 0:
            raise ConfigError(f"RECS_INDEX_EXACT_MAX must be 0 or more, not {self.exact_max}")

    def kind_for(self, rows: int) -> str:
        """The index kind used for a corpus of `rows` vectors."""
        if self.kind != "auto":
            return self.kind
        return "exact" if rows <= self.exact_max else "hnsw"


def _faiss() -> Any:
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    return faiss


class VectorIndex:
    """Inner-product search over a fixed matrix of unit float32 rows (exact or HNSW).

    Built lazily on the first search. Pickling drops what was built (a remote worker
    builds its own), so a VectorIndex can travel inside a ranking job.
    """

    def __init__(self, vectors: np.ndarray, settings: IndexSettings | None = None) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.settings = settings or IndexSettings()
        self.kind = self.settings.kind_for(len(self))
        self._index: Any = None

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_index": None}

    def build(self, progress: Progress = no_progress) -> VectorIndex:
        """Build the index now (otherwise the first search does); returns self."""
        self._faiss_index(progress)
        return self

    def _faiss_index(self, progress: Progress = no_progress) -> Any:
        if self._index is None:
            faiss = _faiss()
            dim = self.vectors.shape[1]
            if self.kind == "hnsw":
                index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
                for start in range(0, len(self), HNSW_ADD_ROWS):
                    index.add(self.vectors[start : start + HNSW_ADD_ROWS])
                    progress("indexing", min(start + HNSW_ADD_ROWS, len(self)), len(self))
            else:
                index = faiss.IndexFlatIP(dim)
                if len(self):
                    index.add(self.vectors)
            self._index = index
        return self._index

    def search(
        self, queries: np.ndarray, k: int, progress: Progress = no_progress
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows and float32 scores per query row; -1 / -inf pad when k > len."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        n = queries.shape[0]
        k = max(1, k)
        rows = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        if not len(self) or not n:
            return rows, scores
        take = min(k, len(self))
        if self.kind == "hnsw" and take > HNSW_EXACT_K:
            return self._exact(queries, k, progress)
        index = self._faiss_index(progress)
        params = None
        if self.kind == "hnsw":
            params = _faiss().SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, take))
        for start in range(0, n, BLOCK_ROWS):
            block = queries[start : start + BLOCK_ROWS]
            found_scores, found_rows = index.search(block, take, params=params)
            short = np.flatnonzero(found_rows[:, -1] < 0)
            if len(short):  # the graph search came back short: answer those exactly
                found_scores[short], found_rows[short] = self._knn(block[short], take)
            rows[start : start + len(block), :take] = found_rows
            scores[start : start + len(block), :take] = found_scores
            progress("searching", min(start + BLOCK_ROWS, n), n)
        return rows, scores

    def _knn(self, queries: np.ndarray, take: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-`take` (scores, rows) against the vectors, without building an index."""
        faiss = _faiss()
        found: tuple[np.ndarray, np.ndarray] = faiss.knn(
            queries, self.vectors, take, metric=faiss.METRIC_INNER_PRODUCT
        )
        return found

    def _exact(
        self, queries: np.ndarray, k: int, progress: Progress
    ) -> tuple[np.ndarray, np.ndarray]:
        take = min(k, len(self))
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        step = max(1, min(BLOCK_ROWS, (256 << 20) // (12 * take)))  # results under 256 MB
        for start in range(0, len(queries), step):
            found_scores, found_rows = self._knn(queries[start : start + step], take)
            rows[start : start + len(found_rows), :take] = found_rows
            scores[start : start + len(found_rows), :take] = found_scores
            progress("searching", min(start + step, len(queries)), len(queries))
        return rows, scores


def exact_scores(
    vectors: np.ndarray, query: np.ndarray, rows: Sequence[int] | np.ndarray
) -> np.ndarray:
    """Cosine of `query` with each of `rows`, in float64 and independent of batching."""
    picked = np.asarray(vectors[np.asarray(rows, dtype=np.int64)], dtype=np.float64)
    return np.sum(picked * np.asarray(query, dtype=np.float64), axis=1)
