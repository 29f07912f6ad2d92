"""Nearest-neighbour search over unit vectors: inner product = cosine.

`search` answers "the k highest-scoring rows for these queries" for a whole matrix, in
blocks so memory stays bounded, using FAISS and BLAS on every core. Scores that decide an
order are recomputed in float64 by `exact_scores`, so the same pair always gets the same
score whichever batch it was found in (a full and an incremental run then agree bit for
bit as long as the search is exact).

Two kinds of index, chosen by `IndexSettings` ("auto": by corpus size):
- `exact`: FAISS IndexFlatIP, every query against every row (BLAS). Used up to
  `EXACT_MAX` rows, where all-pairs search takes about a minute on two cores.
- `ivf`: an inverted file. Spherical k-means (FAISS) cuts the rows into about sqrt(n)
  lists; a query is compared, exactly, with the rows of the lists whose centroids are
  nearest to it. Queries are grouped by list, so each list is scored against all the
  queries probing it with one matrix product (BLAS on both cores) instead of one query
  at a time. How many lists to probe is not a fixed knob: when the index is built, it
  measures recall@10 against exact search on a sample of its own rows and takes the
  fewest probes reaching `IVF_RECALL` (real text needs more than clustered data). A
  query asking for more rows than its probed lists hold is answered exactly, so results
  are never short.
  Why not FAISS's IndexIVFFlat, which searches the same inverted file: it scans the probed
  lists query by query, and all-pairs search is this index's whole job. With the same
  lists, probes and k (100,000 clustered vectors, top 51 for every row, 2 cores), the
  grouped products took 16.2 CPU s against IndexIVFFlat's 34.9 (recall@11 0.9993 and
  0.9991); `python -m bench --part index` keeps both in its table (`faiss-ivf`). K-means,
  the quantizer and the per-list products are FAISS's.
An HNSW graph (FAISS IndexHNSWFlat) was measured too: better than IVF at the same cost
on 10,000 real HuffPost vectors, far worse on clustered data at 100,000 rows and more
(recall@10 0.93 at 100k, 0.72 at 1M) with a build over ten times slower. bench/index.py has
the figures (docs/performance.md).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from recs.cpus import cores
from recs.options import IndexSettings
from recs.progress import Progress, no_progress

BLAS_QUERIES = 20
BLOCK_ROWS = 4096
IVF_LISTS_PER_SQRT = 1.0  # lists = this * sqrt(rows)
IVF_RECALL = 0.985  # recall@10 the probe count must reach on the calibration sample
IVF_PROBES = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)  # tried in this order
IVF_SAMPLE = 500  # calibration queries
IVF_ITERATIONS = 6  # k-means iterations
IVF_POINTS_PER_LIST = 32  # k-means trains on at most this many rows per list
IVF_CANDIDATE_BYTES = 128 << 20  # bound on a search block's candidate buffers
IVF_SEED = 1234


# FAISS threads of this process; 0: one per core. See set_threads.
_threads = 0


def set_threads(count: int) -> None:
    """Run FAISS on `count` threads in this process from now on (0: one per core).

    A process forked after FAISS has used its OpenMP threads must set 1 before it
    searches: GNU OpenMP cannot start a thread pool in such a child and hangs.
    """
    global _threads
    _threads = count
    faiss = sys.modules.get("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(count or cores())


def faiss_module() -> Any:
    import faiss

    faiss.omp_set_num_threads(_threads or cores())
    # Exact search multiplies matrices (BLAS) from this many queries at once. FAISS 1.15
    # starts at 128,000 and scores fewer queries pair by pair: 241 queries against 10,000
    # rows took 0.23 s that way and 0.03 s with BLAS (one thread, this machine).
    faiss.cvar.distance_compute_blas_threshold = BLAS_QUERIES
    return faiss


class VectorIndex:
    """Inner-product search over a fixed matrix of unit float32 rows (exact or IVF).

    Exact search is FAISS's brute-force k-NN over the matrix itself (`faiss.knn`, what
    IndexFlatIP.search runs, without IndexFlatIP's copy of every vector: an API write
    ranking three lists in a 20,000-article store spent 25 of its 35 ms copying). The
    inverted file is built lazily on the first search. Pickling drops what was built (a
    remote worker builds its own), so a VectorIndex can travel inside a ranking job.
    """

    def __init__(self, vectors: np.ndarray, settings: IndexSettings | None = None) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.settings = settings or IndexSettings()
        self.kind = self.settings.kind_for(len(self))
        self.inverted_file: InvertedFile | None = None

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "inverted_file": None}

    def build(self, progress: Progress = no_progress) -> VectorIndex:
        """Build the inverted file now (otherwise the first search does); returns self.
        Exact search needs nothing built."""
        if self.kind == "ivf" and len(self) and self.inverted_file is None:
            progress("indexing", 0, 1)
            self.inverted_file = InvertedFile(self.vectors)
            progress("indexing", 1, 1)
        return self

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
        if self.kind == "ivf":
            ivf = self.build(progress).inverted_file
            assert ivf is not None
            step = ivf.block_rows(take)
            for start in range(0, n, step):
                block = queries[start : start + step]
                found_rows, found_scores = ivf.search(block, take)
                short = np.flatnonzero(found_rows[:, -1] < 0)
                if len(short):  # the probed lists held fewer than k rows: answer exactly
                    found_scores[short], found_rows[short] = _knn(block[short], self.vectors, take)
                rows[start : start + len(block), :take] = found_rows
                scores[start : start + len(block), :take] = found_scores
                progress("searching", min(start + step, n), n)
            return rows, scores
        for start in range(0, n, BLOCK_ROWS):
            block = queries[start : start + BLOCK_ROWS]
            found_scores, found_rows = _knn(block, self.vectors, take)
            rows[start : start + len(block), :take] = found_rows
            scores[start : start + len(block), :take] = found_scores
            progress("searching", min(start + BLOCK_ROWS, n), n)
        return rows, scores


def _knn(queries: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k (scores, rows) of `queries` among `vectors`, without building an index."""
    faiss = faiss_module()
    found: tuple[np.ndarray, np.ndarray] = faiss.knn(
        np.ascontiguousarray(queries), vectors, k, metric=faiss.METRIC_INNER_PRODUCT
    )
    return found


class InvertedFile:
    """An inverted file over `vectors`: k-means lists, rows stored contiguously by list."""

    def __init__(self, vectors: np.ndarray) -> None:
        faiss = faiss_module()
        n, d = vectors.shape
        self.lists = max(1, min(n // 8, round(IVF_LISTS_PER_SQRT * math.sqrt(n))))
        rng = np.random.default_rng(IVF_SEED)
        sample = vectors[np.sort(rng.choice(n, min(n, self.lists * IVF_POINTS_PER_LIST), False))]
        kmeans = faiss.Kmeans(
            d,
            self.lists,
            niter=IVF_ITERATIONS,
            seed=IVF_SEED,
            spherical=True,
            max_points_per_centroid=IVF_POINTS_PER_LIST,
            min_points_per_centroid=1,
        )
        kmeans.train(sample)
        self.quantizer = faiss.IndexFlatIP(d)
        self.quantizer.add(kmeans.centroids)
        assigned = np.empty(n, dtype=np.int64)
        for start in range(0, n, 65_536):
            _, nearest = self.quantizer.search(vectors[start : start + 65_536], 1)
            assigned[start : start + len(nearest)] = nearest[:, 0]
        self.order = np.argsort(assigned, kind="stable")  # list-sorted position -> row
        self.offsets = np.searchsorted(assigned[self.order], np.arange(self.lists + 1))
        self.sorted = vectors[self.order]  # the rows of each list side by side
        self.longest = int(np.max(np.diff(self.offsets)))
        self.probe, self.sample_recall = self._calibrate(vectors, rng)

    def _calibrate(self, vectors: np.ndarray, rng: np.random.Generator) -> tuple[int, float]:
        """The fewest probes (of IVF_PROBES) whose recall@10 on sampled rows >= IVF_RECALL."""
        n = len(vectors)
        rows = np.sort(rng.choice(n, min(n, IVF_SAMPLE), replace=False))
        k = min(n, 11)
        _, truth = _knn(vectors[rows], vectors, k)
        recall = 1.0
        for probe in IVF_PROBES:
            self.probe = min(probe, self.lists)
            found, _ = self.search(vectors[rows], k)
            recall = _recall(found, truth, rows)
            if recall >= IVF_RECALL or self.probe == self.lists:
                break
        return self.probe, recall

    def block_rows(self, k: int) -> int:
        """Queries per block so the candidate buffers stay under IVF_CANDIDATE_BYTES."""
        per_query = self.probe * min(k, self.longest) * 12  # float32 score + int64 row
        return max(64, IVF_CANDIDATE_BYTES // per_query)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (rows, scores) per query among its probed lists; -1 / -inf when short."""
        count = len(queries)
        _, probes = self.quantizer.search(queries, self.probe)
        per_list = min(k, self.longest)
        width = self.probe * per_list
        found_scores = np.full((count, width), -np.inf, dtype=np.float32)
        found_rows = np.full((count, width), -1, dtype=np.int64)
        # Every (query, probe slot) pair, grouped by the list it probes.
        flat = probes.ravel()
        by_list = np.argsort(flat, kind="stable")
        bounds = np.searchsorted(flat[by_list], np.arange(self.lists + 1))
        for lst in np.flatnonzero(np.diff(bounds)):
            first, last = int(self.offsets[lst]), int(self.offsets[lst + 1])
            if first == last:
                continue
            pairs = by_list[bounds[lst] : bounds[lst + 1]]
            who, slot = pairs // self.probe, pairs % self.probe
            take = min(per_list, last - first)
            scores, positions = _knn(queries[who], self.sorted[first:last], take)
            columns = slot[:, None] * per_list + np.arange(take)
            found_scores[who[:, None], columns] = scores
            found_rows[who[:, None], columns] = self.order[first + positions]
        take = min(k, width)
        best = np.argpartition(-found_scores, take - 1, axis=1)[:, :take]
        top_scores = np.take_along_axis(found_scores, best, axis=1)
        top_rows = np.take_along_axis(found_rows, best, axis=1)
        ranked = np.argsort(-top_scores, axis=1, kind="stable")
        top_scores = np.take_along_axis(top_scores, ranked, axis=1)
        top_rows = np.take_along_axis(top_rows, ranked, axis=1)
        if take < k:
            top_rows = np.hstack([top_rows, np.full((count, k - take), -1, dtype=np.int64)])
            pad = np.full((count, k - take), -np.inf, dtype=np.float32)
            top_scores = np.hstack([top_scores, pad])
        return top_rows, top_scores


def _recall(found: np.ndarray, truth: np.ndarray, rows: np.ndarray) -> float:
    """Mean share of each row's true nearest others (itself excluded) that `found` holds."""
    hits = []
    for row, got, want in zip(rows, found, truth, strict=True):
        wanted = want[want != row][: truth.shape[1] - 1]
        if len(wanted):
            hits.append(len(set(got[got != row].tolist()) & set(wanted.tolist())) / len(wanted))
    return float(np.mean(hits)) if hits else 1.0


def exact_scores(
    vectors: np.ndarray, query: np.ndarray, rows: Sequence[int] | np.ndarray
) -> np.ndarray:
    """Cosine of `query` with each of `rows`, in float64 and independent of batching."""
    picked = np.asarray(vectors[np.asarray(rows, dtype=np.int64)], dtype=np.float64)
    summed = np.add.reduce(picked * np.asarray(query, dtype=np.float64), axis=1)  # np.sum's own
    return np.asarray(summed, dtype=np.float64)
