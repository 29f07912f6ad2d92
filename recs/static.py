"""The static tier: a table of token vectors distilled from the bundled model, averaged per text.

For corpora of tens of millions of articles, or instant previews, where running a
transformer over every text costs too much. A text's vector is the mean of the table rows of
its tokens (the model's own WordPiece tokenizer, no special tokens), L2-normalised: no
attention, no context, so word order and the sense a word takes in its sentence are lost.
docs/quality.md ("Static tier") measures what that costs on the evaluation data.

The table is made once per machine, on first use, from the bundled model alone (offline):
1. every token of the vocabulary goes through the fp32 ONNX export (recs.onnx) on its own,
   as `[CLS] token [SEP]`, and its mean-pooled output is that token's vector;
2. the vectors are centred and projected on their `STATIC_DIM` principal axes (numpy's
   SVD), which drops the direction every token shares;
3. each row is scaled by `weight(rank)` so that frequent tokens weigh less in a mean:
   a / (a + p), with p the token's Zipf probability from its place in the vocabulary
   (BERT's WordPiece vocabulary lists whole words roughly by frequency).
The idea follows model2vec's distillation (Tulkens and van Dongen, 2024); the code is recs'
own, so no second copy of transformers is needed. The table (about 31 MB) is cached in
`<cache_dir>/static/<model id>/` with a checksum, like the ONNX export.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recs.encoder import normalise
from recs.errors import ModelError
from recs.fsio import scratch_folder
from recs.models import BUNDLED_MODEL, ModelSpec, resolve_model
from recs.onnx_export import ensure_cached, read_json
from recs.progress import Notify, no_progress_message

STATIC_DIR = "static"
TABLE = "table.npy"
# Distillation batch: 512 three-token inputs a run.
BATCH = 512
# SIF weight a / (a + p): with a = 1e-3 a token of Zipf probability 1e-3 weighs 0.5.
SIF = 1e-3
# Ids before this one in BERT's uncased vocabulary are padding, [unused], special tokens and
# single characters; from it on, words come roughly in order of frequency ("the" is 1996).
FIRST_WORD = 1996


def table_path(spec: ModelSpec, cache_dir: Path) -> Path:
    """Where the distilled table of `spec` is kept under `cache_dir` (RECS_CACHE_DIR)."""
    return cache_dir / STATIC_DIR / spec.model_id / TABLE


def weight(ids: np.ndarray, first_word: int = FIRST_WORD, a: float = SIF) -> np.ndarray:
    """The down-weighting of frequent tokens, by vocabulary position (see the module doc)."""
    rank = np.maximum(ids - first_word, 0).astype(np.float64) + 1.0
    probability = (1.0 / rank) / np.sum(1.0 / np.arange(1, len(ids) + 1))
    weights: np.ndarray = (a / (a + probability)).astype(np.float32)
    return weights


def principal(vectors: np.ndarray, dim: int) -> np.ndarray:
    """`vectors` centred and projected on their first `dim` principal axes, with a sign
    fixed per axis (largest coordinate positive) so that a table is reproducible."""
    centred = vectors.astype(np.float64) - vectors.mean(axis=0, dtype=np.float64)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    axes = axes[:dim]
    signs = np.sign(axes[np.arange(len(axes)), np.argmax(np.abs(axes), axis=1)])
    projected: np.ndarray = (centred @ (axes * signs[:, None]).T).astype(np.float32)
    return projected


def token_vectors(spec: ModelSpec, cache_dir: Path, notify: Notify) -> np.ndarray:
    """Every vocabulary token's mean-pooled output of the bundled model, `[CLS] t [SEP]`."""
    from tokenizers import Tokenizer

    from recs.onnx import OnnxEncoder

    source = resolve_model(BUNDLED_MODEL)
    assert source is not None
    tokenizer = Tokenizer.from_file(str(spec.path / "tokenizer.json"))
    size = tokenizer.get_vocab_size()
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    if cls is None or sep is None:
        raise ModelError(f"the tokenizer of {spec.path} has no [CLS] and [SEP] tokens")
    encoder = OnnxEncoder(source, cache_dir, notify=notify)
    out = np.zeros((size, source.dim), dtype=np.float32)
    mask = np.ones((BATCH, 3), dtype=np.int64)
    for start in range(0, size, BATCH):
        ids = np.arange(start, min(start + BATCH, size), dtype=np.int64)
        batch = np.stack([np.full_like(ids, cls), ids, np.full_like(ids, sep)], axis=1)
        out[start : start + len(ids)] = encoder.pooled(batch, mask[: len(ids)])
    return out


def distil(spec: ModelSpec, cache_dir: Path, target: Path, notify: Notify) -> None:
    """Write the static table of `spec` (rows: vocabulary ids) to `target` as .npy."""
    vectors = token_vectors(spec, cache_dir, notify)
    table = principal(vectors, spec.dim) * weight(np.arange(len(vectors)))[:, None]
    with open(target, "wb") as handle:
        np.save(handle, table.astype(np.float32), allow_pickle=False)


class StaticEncoder:
    """Texts -> the normalised mean of their tokens' rows in the distilled table.

    `cache_dir` keeps the table (RECS_CACHE_DIR); None distils into a temporary folder
    that lives as long as this encoder. `notify` hears about a first-time distillation.
    """

    def __init__(
        self, spec: ModelSpec, cache_dir: Path | None = None, notify: Notify = no_progress_message
    ) -> None:
        self.spec = spec
        self.model_id = spec.model_id
        self.dim = spec.dim
        self.cache_dir = cache_dir
        self.notify = notify
        self.lower_case = bool(
            read_json(spec.path / "sentence_bert_config.json").get("do_lower_case")
        )
        self._table: np.ndarray | None = None
        self._tokenizer: Any = None
        self._temp: Path | None = None
        self._loading = threading.Lock()

    def table_file(self) -> Path:
        """The distilled table, distilling it on first call."""
        cache_dir = self.cache_dir
        if cache_dir is None:
            if self._temp is None:  # removed when this encoder goes
                self._temp = scratch_folder(self, "recs-static-")
            cache_dir = self._temp
        target = table_path(self.spec, cache_dir)
        try:
            return ensure_cached(
                target,
                lambda temp: distil(self.spec, cache_dir, temp, self.notify),
                self.notify,
                f"distilling {self.spec.name} from {BUNDLED_MODEL}",
                f"distilled {self.spec.name}",
            )
        except OSError as error:
            raise ModelError(
                f"cannot write the static table of {self.spec.name} in {target.parent}: "
                f"{error.strerror or error}; set RECS_CACHE_DIR to a writable folder"
            ) from None

    def load(self) -> tuple[np.ndarray, Any]:
        """The distilled table and the tokenizer, loaded (and distilled) on first call."""
        with self._loading:
            if self._table is None:
                from tokenizers import Tokenizer

                path = self.table_file()
                try:
                    table = np.load(path, allow_pickle=False)
                except (OSError, ValueError) as error:
                    raise ModelError(
                        f"cannot read the static table {path} ({error}); delete it to distil "
                        "it again"
                    ) from None
                tokenizer = Tokenizer.from_file(str(self.spec.path / "tokenizer.json"))
                tokenizer.no_padding()
                tokenizer.no_truncation()
                if table.shape != (tokenizer.get_vocab_size(), self.dim):
                    raise ModelError(f"the static table {path} has shape {table.shape}: delete it")
                self._tokenizer = tokenizer
                self._table = table
            return self._table, self._tokenizer

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        table, tokenizer = self.load()
        prepared = [t.lower() if self.lower_case else t for t in texts]
        encodings = tokenizer.encode_batch(prepared, add_special_tokens=False)
        counts = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        ids = np.fromiter(
            (i for e in encodings for i in e.ids), dtype=np.int64, count=int(counts.sum())
        )
        # The means as one sparse product (texts x vocabulary, 1/n per token, times the
        # table): 10,000 HuffPost texts in 0.1 s, where np.add.reduceat over the gathered
        # rows took 2.3-3.5 s.
        from scipy.sparse import csr_matrix

        offsets = np.concatenate(([0], np.cumsum(counts)))
        shares = np.repeat(1.0 / np.maximum(counts, 1), counts).astype(np.float32)
        means = csr_matrix((shares, ids, offsets), shape=(len(texts), len(table))) @ table
        return normalise(np.asarray(means, dtype=np.float32))
