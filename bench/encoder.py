"""Benchmark: the ONNX encoder against sentence-transformers' `encode` (torch backend).

    python -m bench --part encoder [--texts 2000] [--runs 5]

Both encode the same HuffPost texts ("title. excerpt", an evenly spaced sample of
../shared/data/huffpost.jsonl) through `embed_all`, as a build does, in interleaved runs;
the table gives medians and the ratio to torch. Also measured in the same run: the one-off
ONNX export, the agreement of the two backends' vectors (cosine), and a cold start (a new
process until its first vector, with its peak memory) of each backend.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import DATA, header, interleaved, median, run_measured, table


def huffpost_texts(limit: int | None = None) -> list[str]:
    """Distinct embedded texts of the HuffPost file; `limit` takes an evenly spaced sample."""
    from recs.articles import embed_text

    rows = [json.loads(line) for line in (DATA / "huffpost.jsonl").open(encoding="utf-8")]
    texts = list(dict.fromkeys(embed_text(r["title"], r["excerpt"] or "") for r in rows))
    if limit is not None and limit < len(texts):
        step = len(texts) / limit
        texts = [texts[int(i * step)] for i in range(limit)]
    return texts


COLD_START = """
import json, sys, time
started = time.perf_counter()
from pathlib import Path
from recs.backends import load_encoder
encoder = load_encoder(None, sys.argv[1], Path(sys.argv[2]))
encoder.encode(["a first text"])
seconds = time.perf_counter() - started
from bench.common import self_peak_mib
print(json.dumps({"seconds": seconds, "peak_mib": self_peak_mib()}))
"""


def run(texts_count: int, runs: int) -> None:
    from recs.backends import load_encoder
    from recs.encoder import embed_all

    texts = huffpost_texts(texts_count)
    tokens = "texts of " + f"{np.mean([len(t) for t in texts]):.0f} characters on average"
    header(
        "Encoder: onnx vs torch (sentence-transformers encode)",
        f"{len(texts):,} HuffPost {tokens}; {runs} interleaved runs, medians",
    )
    with tempfile.TemporaryDirectory(prefix="recs-bench-encoder-") as folder:
        store = Path(folder)
        onnx = load_encoder(None, "onnx", store)
        torch = load_encoder(None, "torch", store)
        started = time.perf_counter()
        onnx.encode(["warm up"])
        first_onnx = time.perf_counter() - started
        started = time.perf_counter()
        torch.encode(["warm up"])
        first_torch = time.perf_counter() - started

        vectors: dict[str, np.ndarray] = {}

        def timed(name: str, encoder: object) -> None:
            vectors[name] = embed_all(encoder, texts)  # type: ignore[arg-type]

        times = interleaved(
            {"torch": lambda: timed("torch", torch), "onnx": lambda: timed("onnx", onnx)},
            runs,
            warmup=False,
        )
        base = median(times["torch"])
        rows = []
        for name in ("torch", "onnx"):
            seconds = median(times[name])
            rows.append(
                [
                    name,
                    len(texts) / seconds,
                    seconds,
                    min(times[name]),
                    max(times[name]),
                    base / seconds,
                ]
            )
        table(["backend", "texts/s", "median s", "min s", "max s", "speed vs torch"], rows)
        cosines = np.sum(
            vectors["onnx"].astype(np.float64) * vectors["torch"].astype(np.float64), axis=1
        )
        print(
            f"cosine onnx vs torch over these {len(texts):,} texts: min {cosines.min():.7f}, "
            f"mean {cosines.mean():.7f} (tests/test_onnx.py checks >= 0.9999 on all 10,000)"
        )
        print(
            f"first use in this process: onnx {first_onnx:.1f}s (the one-off export and "
            f"load), torch {first_torch:.1f}s (load)"
        )
        print()
        cold: dict[str, list[dict[str, float]]] = {"torch": [], "onnx": []}
        for _ in range(max(1, min(runs, 3))):
            for backend in cold:
                command = [sys.executable, "-c", COLD_START, backend, str(store)]
                cold[backend].append(run_measured(command))
        base_cold = median([r["seconds"] for r in cold["torch"]])
        table(
            ["backend", "cold start to first vector s", "vs torch", "peak memory MiB"],
            [
                [
                    name,
                    median([r["seconds"] for r in cold[name]]),
                    median([r["seconds"] for r in cold[name]]) / base_cold,
                    max(r["peak_mib"] for r in cold[name]),
                ]
                for name in cold
            ],
        )
