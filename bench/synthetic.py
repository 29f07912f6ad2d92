"""Synthetic unit vectors for the index benchmark: clustered like news, and a harder mix.

`clustered_unit_vectors` (the benchmark's default) builds a corpus like a news site: every
vector is the sum of a direction shared by the whole corpus (sentence embeddings are
anisotropic), its topic's direction (one topic per `TOPIC_SIZE` vectors on average), its
story's direction (stories of geometric size, `STORY_SIZE` on average, within a topic) and
its own noise (scale drawn log-normally per vector), each a random Gaussian direction, then
L2-normalised. The weights were fitted at n = 10,000 to the 10,000 HuffPost texts under
all-MiniLM-L6-v2: mean cosine to the 1st / 5th / 10th nearest neighbour and between random
pairs (`python -m bench.synthetic` prints both). Topics and stories grow with n, so a
larger corpus has more of the same structure.

Clusters like these are easier for approximate search than real text: an inverted file
(sqrt(n) lists, 8 probed) finds 0.98 of their true top-10 but only 0.84 of the HuffPost
vectors'. Real texts mix several subjects. `mixture_unit_vectors` models that: each vector
sums `ASPECTS` "aspect" directions drawn with Zipf popularity from a vocabulary of
n / `VOCABULARY_SHARE` (a story's articles share their story's aspects, each swapped for a
random one with probability `ASPECT_SWAP`), plus the story's direction and noise. Fitted
to the same HuffPost figures, it is as hard as the real vectors at 10,000 rows (IVF 0.80)
and much harder at 100,000; whether real corpora of that size are is not known here
(`python -m bench --part index --data mixture`).

Generation is deterministic for (n, d, seed) and streams in blocks: memory is the output.
"""

from __future__ import annotations

import numpy as np

# clustered_unit_vectors
TOPIC_SIZE = 2_000
STORY_SIZE = 12
SHARED, TOPIC, STORY, NOISE = 0.45, 0.78, 0.95, 1.4
NOISE_SPREAD = 0.35  # sigma of log(noise scale)
# mixture_unit_vectors
ASPECTS = 4
VOCABULARY_SHARE = 5
ZIPF = 1.0
ASPECT_SWAP = 0.5
MIX_SHARED, MIX_ASPECT, MIX_STORY, MIX_NOISE, MIX_SPREAD = 0.4, 1.2, 0.7, 0.85, 0.4
BLOCK = 16_384


def clustered_unit_vectors(n: int, d: int = 384, seed: int = 0) -> np.ndarray:
    """n unit float32 vectors of width d in topics and stories (module docstring)."""
    rng = np.random.default_rng(seed)
    topics = max(1, n // TOPIC_SIZE)
    stories = max(1, n // STORY_SIZE)
    shared = _directions(rng, 1, d)[0]
    topic_dirs = _directions(rng, topics, d)
    story_topic = rng.integers(0, topics, stories)
    story_dirs = _directions(rng, stories, d)
    sizes = rng.geometric(1.0 / STORY_SIZE, stories).astype(np.float64)
    sizes /= sizes.sum()
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, BLOCK):
        size = min(BLOCK, n - start)
        story = rng.choice(stories, size=size, p=sizes)
        scale = np.exp(rng.normal(0.0, NOISE_SPREAD, size)).astype(np.float32)[:, None]
        block = SHARED * shared + TOPIC * topic_dirs[story_topic[story]]
        block += STORY * story_dirs[story]
        block += NOISE * scale * _directions(rng, size, d)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + size] = block
    return out


def mixture_unit_vectors(n: int, d: int = 384, seed: int = 0) -> np.ndarray:
    """n unit float32 vectors of width d mixing several aspects each (module docstring)."""
    rng = np.random.default_rng(seed)
    vocabulary = max(8, n // VOCABULARY_SHARE)
    aspects = _directions(rng, vocabulary, d)
    popularity = 1.0 / np.arange(1, vocabulary + 1) ** ZIPF
    popularity /= popularity.sum()
    shuffle = rng.permutation(vocabulary)
    stories = max(1, n // STORY_SIZE)
    story_dirs = _directions(rng, stories, d)
    story_aspects = shuffle[rng.choice(vocabulary, size=(stories, ASPECTS), p=popularity)]
    sizes = rng.geometric(1.0 / STORY_SIZE, stories).astype(np.float64)
    sizes /= sizes.sum()
    shared = _directions(rng, 1, d)[0]
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, BLOCK):
        size = min(BLOCK, n - start)
        story = rng.choice(stories, size=size, p=sizes)
        chosen = story_aspects[story]
        swap = rng.random((size, ASPECTS)) < ASPECT_SWAP
        chosen[swap] = shuffle[rng.choice(vocabulary, size=int(swap.sum()), p=popularity)]
        block = MIX_SHARED * shared + MIX_STORY * story_dirs[story]
        block += (MIX_ASPECT / np.sqrt(ASPECTS)) * aspects[chosen].sum(axis=1)
        scale = np.exp(rng.normal(0.0, MIX_SPREAD, size)).astype(np.float32)[:, None]
        block += MIX_NOISE * scale * _directions(rng, size, d)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + size] = block
    return out


GENERATORS = {"clustered": clustered_unit_vectors, "mixture": mixture_unit_vectors}


def _directions(rng: np.random.Generator, count: int, d: int) -> np.ndarray:
    rows = rng.standard_normal((count, d), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def neighbour_stats(vectors: np.ndarray, queries: int = 2_000, seed: int = 1) -> dict[str, float]:
    """Mean cosine to the 1st/5th/10th nearest other vector, between random pairs, and the
    recall@10 of an IVF index (sqrt(n) lists, 8 probed), on a sample of queries."""
    import faiss

    rng = np.random.default_rng(seed)
    n = len(vectors)
    picked = np.sort(rng.choice(n, min(n, queries), replace=False))
    scores, truth = faiss.knn(vectors[picked], vectors, 11, metric=faiss.METRIC_INNER_PRODUCT)
    a, b = rng.integers(0, n, 20_000), rng.integers(0, n, 20_000)
    keep = a != b
    random_pairs = np.sum(vectors[a[keep]] * vectors[b[keep]], axis=1)
    lists = max(1, round(np.sqrt(n)))
    quantizer = faiss.IndexFlatIP(vectors.shape[1])
    ivf = faiss.IndexIVFFlat(quantizer, vectors.shape[1], lists, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.min_points_per_centroid = 1
    ivf.train(vectors[rng.choice(n, min(n, lists * 64), replace=False)])
    ivf.add(vectors)
    ivf.nprobe = 8
    _, found = ivf.search(vectors[picked], 11)
    recall = [
        len(set(f[f != q][:10].tolist()) & set(t[t != q][:10].tolist())) / 10
        for q, f, t in zip(picked, found, truth, strict=True)
    ]
    return {
        "nn1": float(scores[:, 1].mean()),
        "nn5": float(scores[:, 5].mean()),
        "nn10": float(scores[:, 10].mean()),
        "random": float(random_pairs.mean()),
        "ivf8_recall": float(np.mean(recall)),
    }


def main() -> None:
    from bench.encoder import huffpost_texts
    from recs.backends import load_encoder
    from recs.encoder import embed_all

    texts = huffpost_texts()
    real = embed_all(load_encoder(), texts)
    rows = [("HuffPost, all-MiniLM-L6-v2", neighbour_stats(real))]
    for name, generate in GENERATORS.items():
        rows.append((f"synthetic, {name}", neighbour_stats(generate(len(texts)))))
    print("| vectors (10,000) | nn1 | nn5 | nn10 | random pairs | IVF recall@10 (8 of sqrt(n)) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, s in rows:
        print(
            f"| {name} | {s['nn1']:.3f} | {s['nn5']:.3f} | {s['nn10']:.3f} | {s['random']:.3f} "
            f"| {s['ivf8_recall']:.3f} |"
        )


if __name__ == "__main__":
    main()
