"""Benchmark: all-pairs top-10 with the exact and the IVF index, on synthetic vectors.

    python -m bench --part index [--sizes 10k,100k,1m] [--runs 3] [--data clustered]

For each size, synthetic unit vectors (d = 384; `--data clustered` by default, or the
harder `mixture`; bench/synthetic.py) are generated in a fresh process per measurement,
which then builds one index and runs all-pairs top-10 (every row as a query), so each
process's peak resident memory is that index's, vectors included. Recall@10 (the query's
own row excluded) is measured against exact search on a fixed sample of 2,000 rows.

Rows: `exact` (the baseline; above `EXACT_FULL_MAX` rows its all-pairs time is the time
of the sample scaled to all rows, marked "est.", as the real run would take hours),
`ivf` as shipped (its probe count calibrated at build time), and, for reference up to
`HNSW_MAX` rows, `hnsw`: FAISS IndexHNSWFlat (M 32, efConstruction 40, efSearch 64), the
approximate index that was measured and not chosen, and `faiss-ivf`: FAISS IndexIVFFlat with
the lists and probe count the shipped IVF chose (its build time includes building the
shipped IVF to learn them), the library's way to run the same inverted file. Medians of
`--runs` runs; peak memory is the largest seen; "cores used" is CPU seconds over wall
seconds of the all-pairs step.

A second table checks the approximate indexes on real vectors: the 10,000 HuffPost texts
under the bundled model, recall@10 of every row against exact search.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from bench.common import header, median, run_measured, self_peak_mib, table

SAMPLE = 2_000
EXACT_FULL_MAX = 200_000
HNSW_MAX = 100_000
K = 10
HNSW = {"M": 32, "efConstruction": 40, "efSearch": 64}


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    for suffix, factor in (("k", 1_000), ("m", 1_000_000)):
        if text.endswith(suffix):
            return int(float(text[:-1]) * factor)
    return int(text)


def recall_at_k(found: np.ndarray, truth: np.ndarray, queries: np.ndarray) -> float:
    """Mean share of each query's true top-K others (itself excluded) that `found` holds."""
    hits = []
    for row, got, want in zip(queries, found, truth, strict=True):
        got_set = set(got[got != row][:K].tolist())
        want_list = want[want != row][:K].tolist()
        hits.append(len(got_set.intersection(want_list)) / len(want_list))
    return float(np.mean(hits))


class _Hnsw:
    """The reference HNSW index, with VectorIndex's build/search shape."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors
        self.index: Any = None

    def build(self) -> None:
        import faiss

        self.index = faiss.IndexHNSWFlat(self.vectors.shape[1], HNSW["M"], 0)  # 0: inner product
        self.index.hnsw.efConstruction = HNSW["efConstruction"]
        self.index.add(self.vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        params = faiss.SearchParametersHNSW(efSearch=HNSW["efSearch"])
        scores, rows = self.index.search(queries, k, params=params)
        return rows, scores


class _FaissIvf:
    """FAISS's own IndexIVFFlat with the lists and probe count the shipped IVF chose on the
    same vectors: the library alternative to recs.index.InvertedFile, for reference."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors
        self.index: Any = None

    def build(self) -> None:
        import faiss

        from recs.index import IVF_ITERATIONS, IVF_POINTS_PER_LIST, VectorIndex
        from recs.options import IndexSettings

        shipped = VectorIndex(self.vectors, IndexSettings("ivf")).build().inverted_file
        assert shipped is not None
        d = self.vectors.shape[1]
        self.index = faiss.IndexIVFFlat(
            faiss.IndexFlatIP(d), d, shipped.lists, faiss.METRIC_INNER_PRODUCT
        )
        self.index.cp.spherical = True
        self.index.cp.niter = IVF_ITERATIONS
        self.index.cp.max_points_per_centroid = IVF_POINTS_PER_LIST
        self.index.cp.min_points_per_centroid = 1
        self.index.train(self.vectors)
        self.index.add(self.vectors)
        self.index.nprobe = shipped.probe

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, rows = self.index.search(queries, k)
        return rows, scores


REFERENCES = {"hnsw": _Hnsw, "faiss-ivf": _FaissIvf}


def worker(rows: int, kind: str, data: str) -> dict[str, float]:
    """One measurement in this process: build `kind`, all-pairs top-K, recall on a sample."""
    import faiss

    from bench.synthetic import GENERATORS
    from recs.index import VectorIndex, faiss_module
    from recs.options import IndexSettings

    faiss_module()  # sets FAISS's threads to every core, as recs does
    vectors = GENERATORS[data](rows)
    queries = np.sort(np.random.default_rng(7).choice(rows, min(rows, SAMPLE), replace=False))
    started = time.perf_counter()
    _, truth = faiss.knn(vectors[queries], vectors, K + 1, metric=faiss.METRIC_INNER_PRODUCT)
    exact_sample = time.perf_counter() - started
    result: dict[str, float] = {"exact_sample_s": exact_sample, "estimated": 0.0, "probe": 0.0}
    if kind == "exact" and rows > EXACT_FULL_MAX:
        nan = float("nan")
        result.update(build_s=0.0, build_cpu_s=0.0, all_pairs_cpu_s=nan, cores=nan, recall=1.0)
        result.update(all_pairs_s=exact_sample * rows / len(queries), estimated=1.0)
        result["peak_mib"] = self_peak_mib()
        return result
    reference = REFERENCES.get(kind)
    index: Any = reference(vectors) if reference else VectorIndex(vectors, IndexSettings(kind))
    started, cpu = time.perf_counter(), time.process_time()
    index.build()
    result["build_s"] = time.perf_counter() - started
    result["build_cpu_s"] = time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    found, _ = index.search(vectors, K + 1)
    result["all_pairs_s"] = time.perf_counter() - started
    result["all_pairs_cpu_s"] = time.process_time() - cpu
    result["cores"] = result["all_pairs_cpu_s"] / result["all_pairs_s"]
    result["recall"] = recall_at_k(found[queries], truth, queries)
    if kind == "ivf":
        result["probe"] = float(index.inverted_file.probe)
        result["lists"] = float(index.inverted_file.lists)
    result["peak_mib"] = self_peak_mib()
    return result


def run(sizes: list[int], runs: int, data: str = "clustered") -> None:
    from recs.index import IVF_RECALL
    from recs.options import EXACT_MAX, IndexSettings

    header(
        f"Index: all-pairs top-10 on synthetic {data} unit vectors (d = 384)",
        f"one process per measurement; medians of {runs} runs; recall@10 against exact "
        f"search on {SAMPLE:,} sampled rows; auto = exact up to {EXACT_MAX:,} rows, else ivf "
        f"(probes calibrated to recall@10 >= {IVF_RECALL} on 500 rows)",
    )
    out = []
    for rows in sizes:
        kinds = ["exact", "ivf", "faiss-ivf"] + (["hnsw"] if rows <= HNSW_MAX else [])
        results: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
        for _ in range(runs):
            for kind in kinds:
                command = [sys.executable, "-m", "bench.index", "--worker", str(rows), kind, data]
                results[kind].append(run_measured(command))
        base = median([r["all_pairs_s"] for r in results["exact"]])
        chosen = IndexSettings().kind_for(rows)
        for kind, measured in results.items():
            all_pairs = median([r["all_pairs_s"] for r in measured])
            name = kind + (" (auto)" if kind == chosen else "")
            if kind == "ivf":
                probed = median([r["probe"] for r in measured])
                name += f", {measured[0]['lists']:.0f} lists, {probed:.0f} probed"
            if kind in REFERENCES:
                name += " (reference, not shipped)"
            out.append(
                [
                    f"{rows:,}",
                    name,
                    median([r["build_s"] for r in measured]),
                    median([r["build_cpu_s"] for r in measured]),
                    f"{all_pairs:,.1f}" + (" est." if measured[0]["estimated"] else ""),
                    median([r["all_pairs_cpu_s"] for r in measured]),
                    median([r["cores"] for r in measured]),
                    max(r["peak_mib"] for r in measured),
                    median([r["recall"] for r in measured]),
                    base / all_pairs,
                ]
            )
    table(
        [
            "rows",
            "index",
            "build s",
            "build CPU s",
            "all-pairs top-10 s",
            "all-pairs CPU s",
            "cores used",
            "peak MiB",
            "recall@10",
            "speed vs exact",
        ],
        out,
    )
    real_vectors_check()


def real_vectors_check() -> None:
    """Recall@10 of the approximate indexes on the HuffPost vectors (second table)."""
    import faiss

    from bench.encoder import huffpost_texts
    from recs.backends import load_encoder
    from recs.encoder import embed_all
    from recs.index import VectorIndex, faiss_module
    from recs.options import IndexSettings

    faiss_module()
    vectors = embed_all(load_encoder(), huffpost_texts())
    everyone = np.arange(len(vectors))
    started = time.perf_counter()
    _, truth = faiss.knn(vectors, vectors, K + 1, metric=faiss.METRIC_INNER_PRODUCT)
    exact_s = time.perf_counter() - started
    out: list[list[Any]] = [["exact", 1.0, exact_s]]
    ivf = VectorIndex(vectors, IndexSettings("ivf"))
    started = time.perf_counter()
    found, _ = ivf.search(vectors, K + 1)
    seconds = time.perf_counter() - started
    assert ivf.inverted_file is not None
    shipped = ivf.inverted_file
    name = f"ivf as shipped: {shipped.lists} lists, {shipped.probe} probed (calibrated)"
    out.append([name, recall_at_k(found, truth, everyone), seconds])
    for probe in (8, 16, 32):
        ivf.inverted_file.probe = probe
        started = time.perf_counter()
        found, _ = ivf.search(vectors, K + 1)
        seconds = time.perf_counter() - started
        name = f"ivf, {probe} of {ivf.inverted_file.lists} lists probed"
        out.append([name, recall_at_k(found, truth, everyone), seconds])
    hnsw = _Hnsw(vectors)
    started = time.perf_counter()
    hnsw.build()
    found, _ = hnsw.search(vectors, K + 1)
    seconds = time.perf_counter() - started
    out.append(["hnsw (reference, not shipped)", recall_at_k(found, truth, everyone), seconds])
    print(f"Real vectors: {len(vectors):,} HuffPost texts, all-MiniLM-L6-v2; one run each")
    print()
    table(["index", "recall@10", "build + all-pairs top-10 s"], out)


def main() -> None:
    parser = argparse.ArgumentParser(description="one index measurement (used by bench)")
    parser.add_argument("--worker", nargs=3, metavar=("ROWS", "KIND", "DATA"), required=True)
    args = parser.parse_args()
    rows, kind, data = int(args.worker[0]), args.worker[1], args.worker[2]
    print(json.dumps(worker(rows, kind, data)))


if __name__ == "__main__":
    main()
