"""The backends that run a sentence-transformers model, and how an encoder is chosen.

- `onnx` (recs.onnx, the default): the model exported once to ONNX and run with
  onnxruntime; cosine >= 0.9999 to `torch` and faster on a CPU.
- `torch`: sentence-transformers' `encode` on the CPU.
`load_encoder` picks one ("auto": onnx where the model allows it); `EncoderSettings` are
the plain values a remote worker needs to build the same encoder.
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
from recs.models import BUNDLED_MODEL, ModelSpec, offline_transformers, resolve_model
from recs.progress import no_progress_message

BACKENDS = ("auto", "onnx", "torch")


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


def load_encoder(
    model: str | None = None,
    backend: str = "auto",
    cache_dir: Path | None = None,
    notify: Callable[[str], None] | None = None,
) -> Encoder:
    """The encoder for `model` with `backend` ("auto" picks the fastest available).

    "auto" is "onnx" when the ONNX backend can run the model (recs.onnx.unsupported_reason),
    else "torch". `cache_dir` is where the ONNX backend keeps its exported model (the store
    directory); `notify` hears one line when that export runs (it takes seconds, once).
    Nothing heavy is imported here; the model loads on the first `encode` call.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"RECS_BACKEND/--backend {backend!r} is not one of {', '.join(BACKENDS)}")
    spec = resolve_model(model)
    if spec is None:
        return HashingEncoder()
    if backend == "torch":
        return TorchEncoder(spec)
    from recs.onnx import OnnxEncoder, unsupported_reason

    if backend == "auto" and unsupported_reason(spec) is not None:
        return TorchEncoder(spec)
    return OnnxEncoder(spec, cache_dir, notify=notify or no_progress_message)


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
        named = (HASHING_MODEL, BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}")
        if model and model not in named and Path(model).expanduser().exists():
            model = str(Path(model).expanduser().resolve())
        cache_dir = None if cache_dir is None else cache_dir.expanduser().resolve()
        return cls(model, backend, cache_dir)

    def load(self) -> Encoder:
        return load_encoder(self.model, self.backend, self.cache_dir)
