"""Nearest-neighbour search over unit vectors: inner product = cosine.

`search` answers "the k highest-scoring rows for these queries" for a whole matrix, in
blocks so memory stays bounded, using FAISS on every core. Scores that decide an order
are recomputed in float64 by `exact_scores`, so the same pair always gets the same score
whichever batch it was found in (a full and an incremental run then agree bit for bit).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from recs.encoder import Progress, no_progress

BLOCK_ROWS = 4096


def _faiss() -> Any:
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    return faiss


class VectorIndex:
    """Exact inner-product search over a fixed matrix of unit float32 rows."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._index: Any = None

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def _faiss_index(self) -> Any:
        if self._index is None:
            faiss = _faiss()
            index = faiss.IndexFlatIP(self.vectors.shape[1])
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
        index = self._faiss_index()
        for start in range(0, n, BLOCK_ROWS):
            block = queries[start : start + BLOCK_ROWS]
            found_scores, found_rows = index.search(block, take)
            rows[start : start + len(block), :take] = found_rows
            scores[start : start + len(block), :take] = found_scores
            progress("searching", min(start + BLOCK_ROWS, n), n)
        return rows, scores


def exact_scores(
    vectors: np.ndarray, query: np.ndarray, rows: Sequence[int] | np.ndarray
) -> np.ndarray:
    """Cosine of `query` with each of `rows`, in float64 and independent of batching."""
    picked = np.asarray(vectors[np.asarray(rows, dtype=np.int64)], dtype=np.float64)
    return np.sum(picked * np.asarray(query, dtype=np.float64), axis=1)
