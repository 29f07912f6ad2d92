"""Benchmark: int8 recipes (recs.onnx_export.Int8Recipe) against the fp32 export, and full builds.

    python -m bench --part int8 [--texts 2000] [--runs 5]

How the shipped int8 model was chosen. Each recipe quantises the same fp32 export; each is
judged by what readers see: precision@5 and nDCG@5 of the related lists with the default
ranking on both shared files (the shipping bar: within 0.003 of fp32, near-duplicate rate
0), and by speed: texts/s and texts per CPU-second on `--texts` HuffPost texts in runs
interleaved with fp32 (medians of the per-run ratios). The overlap of its top-5 related
lists and of its top-10 plain cosine neighbours with fp32's shows how much the lists
move (the earlier bar, top-10 overlap >= 0.95, judged neighbour identity, which readers
never see).

Then the build bar: `recs build --rebuild` of the 10,000 HuffPost rows written as article
files (bench/build.py's corpus and process), `--backend onnx` and `--backend onnx-int8`
alternating, `--runs` pairs (at most 3): wall and CPU seconds of each build process, and
the paired ratios. The shipping bar for a default: at least 1.6x.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import header, median, table
from bench.encoder import FILES, Lookup, file_texts, huffpost_texts, lists_of, neighbours, overlap

BAR = 0.003
FFN_OUT = r"layer\.\d+/output/dense/MatMul$"


def recipes() -> dict[str, Any]:
    from recs.onnx_export import Int8Recipe

    return {
        "shipped: per channel, MatMul + embedding lookup, graph as exported": Int8Recipe(),
        "per tensor": Int8Recipe(per_channel=False),
        "fused first (transformer optimizer), MatMul + attention": Int8Recipe(
            fuse=True, operators=("MatMul", "Attention")
        ),
        "fused first, MatMul + attention + embedding lookup": Int8Recipe(fuse=True),
        "feed-forward output kept in fp32": Int8Recipe(keep=(FFN_OUT,)),
    }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(texts_count: int, runs: int) -> None:
    from recs import onnx_export
    from recs.encoder import embed_all
    from recs.models import resolve_model
    from recs.onnx import OnnxEncoder
    from recs.rank import RankSettings

    spec = resolve_model(None)
    assert spec is not None
    sample = huffpost_texts(texts_count)
    header(
        "int8 recipes (onnxruntime dynamic quantisation) vs fp32",
        f"quality: default ranking on all of both files; speed: {len(sample):,} HuffPost "
        f"texts, {runs} interleaved runs, medians of per-run ratios; bar: P@5 and nDCG@5 "
        f"within {BAR} of fp32 on both files, near-dup 0",
    )
    with tempfile.TemporaryDirectory(prefix="recs-bench-int8-") as folder:
        cache = Path(folder)
        fp32 = OnnxEncoder(spec, cache)
        source = fp32.model_file()

        class RecipeEncoder(OnnxEncoder):
            def __init__(self, path: Path) -> None:
                super().__init__(spec, cache, precision="int8")
                self.path = path

            def model_file(self) -> Path:
                return self.path

        encoders: dict[str, OnnxEncoder] = {"fp32": fp32}
        for number, (name, recipe) in enumerate(recipes().items()):
            target = cache / f"recipe-{number}.onnx"
            onnx_export.quantize_model(spec, source, target, recipe)
            encoders[name] = RecipeEncoder(target)
        wall: dict[str, list[float]] = {name: [] for name in encoders}
        cpu: dict[str, list[float]] = {name: [] for name in encoders}
        for encoder in encoders.values():
            embed_all(encoder, sample[:64])
        for _ in range(runs):
            for name, encoder in encoders.items():
                before, started = cpu_seconds(), time.perf_counter()
                embed_all(encoder, sample)
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(cpu_seconds() - before)
        settings = RankSettings()
        base_lists: dict[str, Any] = {}
        base_top: dict[str, np.ndarray] = {}
        base_scores: dict[str, Any] = {}
        rows = []
        for name, encoder in encoders.items():
            row: list[Any] = [name]
            passes = True
            for file in FILES:
                texts = file_texts(file)
                vectors = embed_all(encoder, texts)
                scores, lists = lists_of(file, Lookup(encoder.model_id, texts, vectors), settings)
                top = neighbours(vectors, 10)
                if name == "fp32":
                    base_lists[file], base_top[file], base_scores[file] = lists, top, scores
                reference = base_scores[file]
                row += [
                    f"{scores.precision:.4f}",
                    f"{scores.ndcg:.4f}",
                    f"{scores.duplicates:.2%}",
                    overlap(lists, base_lists[file]),
                    overlap(top, base_top[file]),
                ]
                passes &= (
                    abs(scores.precision - reference.precision) <= BAR
                    and abs(scores.ndcg - reference.ndcg) <= BAR
                    and scores.duplicates == 0
                )
            ratios = [b / a for a, b in zip(wall[name], wall["fp32"], strict=True)]
            cpu_ratios = [b / a for a, b in zip(cpu[name], cpu["fp32"], strict=True)]
            verdict = "fp32" if name == "fp32" else ("passes" if passes else "fails")
            row += [median(ratios), median(cpu_ratios), verdict]
            rows.append(row)
        columns = ["recipe"]
        for file in ("huffpost", "uci"):
            columns += [f"{file} P@5", "nDCG@5", "near-dup", "top-5 lists", "top-10 nbrs"]
        table([*columns, "texts/s vs fp32", "CPU vs fp32", "bar"], rows)
    builds(runs)


def builds(runs: int) -> None:
    """Full builds with fp32 and int8, alternating (see the module docstring)."""
    import compileall

    import recs
    from bench.build import build
    from bench.common import DATA
    from bench.regenerate import read_rows, write_corpus

    compileall.compile_dir(Path(recs.__file__).parent, quiet=1)
    header(
        "Full builds: recs build --rebuild, 10,000 HuffPost article files, fp32 vs int8",
        "wall and CPU seconds of the build process; backends alternating; paired ratios",
    )
    with tempfile.TemporaryDirectory(prefix="recs-bench-int8-build-") as folder:
        work = Path(folder)
        write_corpus(read_rows(path=DATA / "huffpost.jsonl"), work / "content")
        backends = ("onnx", "onnx-int8")
        for backend in backends:  # exports, quantises and embeds once, untimed
            build(work / "content", work / backend, "--backend", backend)
        wall: dict[str, list[float]] = {b: [] for b in backends}
        cpu: dict[str, list[float]] = {b: [] for b in backends}
        for number in range(min(runs, 3)):
            for backend in backends if number % 2 == 0 else backends[::-1]:
                usage = resource.getrusage(resource.RUSAGE_CHILDREN)
                before = usage.ru_utime + usage.ru_stime
                seconds, _ = build(
                    work / "content", work / backend, "--rebuild", "--backend", backend
                )
                usage = resource.getrusage(resource.RUSAGE_CHILDREN)
                wall[backend].append(seconds)
                cpu[backend].append(usage.ru_utime + usage.ru_stime - before)
        ratios = [a / b for a, b in zip(wall["onnx"], wall["onnx-int8"], strict=True)]
        cpu_ratios = [a / b for a, b in zip(cpu["onnx"], cpu["onnx-int8"], strict=True)]
        table(
            ["backend", "median s", "median CPU s", "paired ratios (wall)", "paired ratios (CPU)"],
            [
                [
                    backend,
                    median(wall[backend]),
                    median(cpu[backend]),
                    ", ".join(f"{r:.2f}" for r in ratios) if backend != "onnx" else "",
                    ", ".join(f"{r:.2f}" for r in cpu_ratios) if backend != "onnx" else "",
                ]
                for backend in backends
            ],
        )
        print(
            f"int8 against fp32: median {median(ratios):.2f}x wall, {median(cpu_ratios):.2f}x CPU"
        )
