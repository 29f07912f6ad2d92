"""Encoders turn texts into unit float32 rows: the protocol, and what works on any encoder.

The protocol has one method, `encode`, plus two attributes: `model_id` (recorded in the
store; vectors from another model are never mixed in) and `dim`. Every encoder returns
L2-normalised float32 rows, so an inner product is a cosine everywhere in recs.

Here too: `HashingEncoder`, a deterministic bag-of-words feature-hashing encoder (no model,
no download; used by the unit tests and handy for trying recs without the model, much
weaker), and `embed_all`, which encodes many texts in the groups every engine uses. The
real models are found by recs.models and run by the backends of recs.backends.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from recs.errors import ModelError
from recs.progress import Progress, no_progress

HASHING_MODEL = "hashing"


class Encoder(Protocol):
    """texts -> unit float32 rows of width `dim`."""

    model_id: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class Warming(Protocol):
    """An encoder that can load its model in the background while a build reads files."""

    def warm_up(self) -> threading.Thread | None:
        """Start loading (a thread to join before the model is needed), or None if loaded."""
        ...


def normalise(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32. All-zero rows stay zero."""
    rows = np.asarray(matrix, dtype=np.float32)
    if rows.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {rows.shape}")
    if not rows.size:
        return np.ascontiguousarray(rows)
    # Each row is first scaled by a power of two that brings its largest value into
    # [0.5, 1): exact, and the float32 sum of squares then neither underflows (a row of
    # values near 1e-22 came out 0.9966 long) nor overflows (near 1e20: all zeros). On
    # embeddings and word counts the result is the same, bit for bit, as without it.
    _, exponent = np.frexp(np.max(np.abs(rows), axis=1, keepdims=True))
    scaled = np.ldexp(rows, -exponent)
    norms = np.linalg.norm(scaled, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(scaled / norms, dtype=np.float32)


# --- the hashing encoder ----------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEncoder:
    """Deterministic bag of words (3+ letters) and word pairs, hashed into `dim` signed buckets."""

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim
        self.model_id = f"{HASHING_MODEL}-{dim}-v1"

    def _bucket(self, feature: str) -> tuple[int, float]:
        digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        return value % self.dim, 1.0 if (value >> 63) & 1 else -1.0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = [w for w in _WORD.findall(text.lower()) if len(w) > 2]
            features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
            for feature in features:
                bucket, sign = self._bucket(feature)
                out[row, bucket] += sign
        return normalise(out)


def embedding_groups(texts: Sequence[str], chunk: int = 256) -> list[list[int]]:
    """Positions of `texts` in the groups `embed_all` encodes together, in order.

    A model's vector of a text can differ in its last bits with the texts batched with it,
    so an engine that embeds elsewhere (recs.ray_engine) encodes these same groups.
    """
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    return [order[start : start + chunk] for start in range(0, len(order), chunk)]


def embed_all(
    encoder: Encoder,
    texts: Sequence[str],
    chunk: int = 256,
    progress: Progress = no_progress,
) -> np.ndarray:
    """Encode many texts in chunks, longest first so batches hold texts of similar length."""
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    progress("embedding", 0, len(texts))
    done = 0
    for rows in embedding_groups(texts, chunk):
        vectors = encoder.encode([texts[i] for i in rows])
        if vectors.shape != (len(rows), encoder.dim):
            raise ModelError(
                f"the encoder returned shape {vectors.shape} for {len(rows)} texts; "
                f"expected ({len(rows)}, {encoder.dim})"
            )
        out[rows] = vectors
        done += len(rows)
        progress("embedding", done, len(texts))
    return out
