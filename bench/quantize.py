"""Benchmark: int8 ONNX models (onnxruntime dynamic quantisation) against the fp32 export.

    python -m bench --part int8 [--texts 2000] [--runs 5]

The quality bar for shipping an int8 model: its top-10 neighbours of every HuffPost text
overlap those of fp32 by at least 0.95 on average. For each variant, over all 10,000
texts: mean top-10 overlap with fp32 (exact search, self excluded), precision@5 of the
same HuffPost section (self excluded; fp32 and torch give the same figure to 3 decimals),
mean and minimum cosine to the fp32 vector; and throughput on `--texts` texts in runs
interleaved with fp32 (medians, ratio to fp32).

Variants: weights per tensor or per output channel; all MatMuls and Gathers quantised (the
default op types) or the weight MatMuls only; and the parts measured most sensitive kept in
fp32: the activation-by-activation MatMuls of attention (scores and context), the
feed-forward projections (output, then both), the attention output projection.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.common import DATA, header, interleaved, median, table
from bench.encoder import huffpost_texts

BAR = 0.95


@dataclass(frozen=True)
class Variant:
    name: str
    per_channel: bool
    weights_only: bool = False  # quantise only MatMuls with a weight (initializer) input
    keep: tuple[str, ...] = field(default=())  # node name patterns (regex) kept in fp32


FFN_OUT = r"layer\.\d+/output/dense/"
FFN_IN = r"layer\.\d+/intermediate/dense/"
ATTENTION_OUT = r"attention/output/dense/"
VARIANTS = [
    Variant("per-tensor, default ops", per_channel=False),
    Variant("per-channel, default ops", per_channel=True),
    Variant("per-channel, weight MatMuls", per_channel=True, weights_only=True),
    Variant(
        "per-channel, weight MatMuls, FFN output fp32",
        per_channel=True,
        weights_only=True,
        keep=(FFN_OUT,),
    ),
    Variant(
        "per-channel, weight MatMuls, FFN fp32",
        per_channel=True,
        weights_only=True,
        keep=(FFN_OUT, FFN_IN),
    ),
    Variant(
        "per-channel, Q/K/V projections only",
        per_channel=True,
        weights_only=True,
        keep=(FFN_OUT, FFN_IN, ATTENTION_OUT),
    ),
]


def quantize(source: Path, target: Path, variant: Variant) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source))
    weights = {init.name for init in model.graph.initializer}
    exclude = []
    for node in model.graph.node:
        if node.op_type not in ("MatMul", "Gather"):
            continue
        kept = any(re.search(pattern, node.name) for pattern in variant.keep)
        has_weight = node.op_type == "MatMul" and any(i in weights for i in node.input)
        if kept or (variant.weights_only and not has_weight):
            exclude.append(node.name)
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process: measured anyway
    quantize_dynamic(
        str(source),
        str(target),
        per_channel=variant.per_channel,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=exclude,
        op_types_to_quantize=["MatMul"] if variant.weights_only else None,
    )


def neighbours(vectors: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k other rows of every row."""
    import faiss

    _, rows = faiss.knn(vectors, vectors, k + 1, metric=faiss.METRIC_INNER_PRODUCT)
    out = np.empty((len(vectors), k), dtype=np.int64)
    for i in range(len(vectors)):
        others = rows[i][rows[i] != i]
        out[i] = others[:k]
    return out


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b, strict=True)]))


def precision_at_5(top: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(labels[top[:, :5]] == labels[:, None]))


def run(texts_count: int, runs: int) -> None:
    from recs.encoder import embed_all
    from recs.models import resolve_model
    from recs.onnx import OnnxEncoder

    rows = [json.loads(line) for line in (DATA / "huffpost.jsonl").open(encoding="utf-8")]
    from recs.articles import embed_text

    label_of: dict[str, str] = {}
    for row in rows:
        label_of.setdefault(embed_text(row["title"], row["excerpt"] or ""), row["label"])
    texts = list(label_of)
    labels = np.array([label_of[t] for t in texts])
    sample = huffpost_texts(texts_count)
    header(
        "int8 ONNX (dynamic quantisation) vs fp32 ONNX",
        f"quality over all {len(texts):,} HuffPost texts; speed on {len(sample):,} texts, "
        f"{runs} interleaved runs, medians; shipping bar: top-10 overlap >= {BAR}",
    )
    spec = resolve_model(None)
    assert spec is not None
    with tempfile.TemporaryDirectory(prefix="recs-bench-int8-") as folder:
        store = Path(folder)
        fp32 = OnnxEncoder(spec, store)
        source = fp32.model_file()

        class FileEncoder(OnnxEncoder):
            def __init__(self, path: Path) -> None:
                super().__init__(spec, store)
                self.path = path

            def model_file(self) -> Path:
                return self.path

        encoders = {"fp32": fp32}
        for number, variant in enumerate(VARIANTS):
            target = store / f"int8-{number}.onnx"
            quantize(source, target, variant)
            encoders[variant.name] = FileEncoder(target)
        vectors = {name: embed_all(encoder, texts) for name, encoder in encoders.items()}
        top = {name: neighbours(v, 10) for name, v in vectors.items()}
        times = interleaved(
            {name: (lambda e=encoder: embed_all(e, sample)) for name, encoder in encoders.items()},
            runs,
        )
        base = median(times["fp32"])
        table_rows = []
        for name in encoders:
            cosines = np.sum(vectors[name] * vectors["fp32"], axis=1)
            share = overlap(top[name], top["fp32"])
            table_rows.append(
                [
                    name,
                    share,
                    precision_at_5(top[name], labels),
                    float(cosines.mean()),
                    float(cosines.min()),
                    len(sample) / median(times[name]),
                    base / median(times[name]),
                    "fp32" if name == "fp32" else ("passes" if share >= BAR else "fails"),
                ]
            )
        table(
            [
                "model",
                "top-10 overlap with fp32",
                "precision@5",
                "mean cosine to fp32",
                "min cosine",
                "texts/s",
                "speed vs fp32",
                "bar",
            ],
            table_rows,
        )
