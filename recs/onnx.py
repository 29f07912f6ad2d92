"""The ONNX backend: the sentence-transformers model exported once, run with onnxruntime.

The first `encode` exports the model's transformer, with mean pooling in the graph, using
torch.onnx into `<cache_dir>/onnx/<model id>/model-v<N>.onnx`, once per machine and model
(`cache_dir` is RECS_CACHE_DIR, by default the user's cache folder, never a store: a new
store or a `--check` run does not export again). The file is written under a lock to a
temporary name and renamed into place, so two processes exporting at once wait for each
other and a reader never sees half a file; a checksum beside it lets a later run find a
damaged file and export again. Every later run loads that file with
onnxruntime alone: torch is not imported.

`precision="int8"` is a second file beside it, made from that export once: its MatMuls
and word-embedding lookup quantised to int8, weights per output channel, activations on
the fly (onnxruntime's dynamic quantisation; Int8Recipe says why this recipe). Texts run
one at a time, side by side on one thread each, so a text's vector never depends on what
else is embedded with it. It does the work of fp32 in under half the CPU time for the
same related-list quality on the evaluation data (docs/quality.md, "int8"); its vectors
are not fp32's, so a store records the precision in its model id (`<id>+int8`) and refuses
to mix them.

Texts go through the model's own fast tokenizer (`tokenizer.json`, the `tokenizers`
library) with sentence-transformers' truncation (`max_seq_length` of
`sentence_bert_config.json`), are sorted by token count, batched, pooled by the mean of
their real tokens and L2-normalised, as sentence-transformers does. tests/test_onnx.py
checks cosine >= 0.9999 against the torch backend on every HuffPost text.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from recs.cpus import SPIN, cores
from recs.encoder import normalise
from recs.errors import ModelError
from recs.fsio import scratch_folder
from recs.models import INT8_SUFFIX, ModelSpec
from recs.onnx_export import (
    BATCH_SIZE,
    FALLBACK,
    PRECISIONS,
    ensure_exported,
    exported_path,
    max_seq_length,
    read_json,
    unsupported_reason,
)
from recs.progress import Notify, no_progress_message


class OnnxEncoder:
    """The model exported to ONNX, run with onnxruntime on every core; loads on first use.

    `cache_dir` keeps the export (RECS_CACHE_DIR); None exports into a temporary
    folder that lives as long as this encoder. `notify` hears about a first-time export.
    `precision` "int8" runs the quantised model; its `model_id` then ends in `+int8`.
    `spin` lets onnxruntime's threads busy-wait between operators (recs.cpus.SPIN).
    """

    def __init__(
        self,
        spec: ModelSpec,
        cache_dir: Path | None = None,
        batch_size: int | None = None,
        threads: int | None = None,
        notify: Notify = no_progress_message,
        precision: str = "fp32",
        spin: bool = SPIN,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        self.spec = spec
        self.precision = precision
        self.model_id = spec.model_id + (INT8_SUFFIX if precision == "int8" else "")
        self.spin = spin
        self.dim = spec.dim
        self.batch_size = batch_size or BATCH_SIZE[precision]
        self.threads = threads or cores()
        self.cache_dir = cache_dir
        self.notify = notify
        self.max_length = max_seq_length(spec)
        self.lower_case = bool(
            read_json(spec.path / "sentence_bert_config.json").get("do_lower_case")
        )
        # One text a run: the texts run side by side, each on one thread (see BATCH_SIZE).
        self.across_texts = self.batch_size == 1 and self.threads > 1
        self._pool: ThreadPoolExecutor | None = None
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: list[str] = []
        self._temp: Path | None = None
        self._loading = threading.Lock()

    def model_file(self) -> Path:
        """The exported model, exporting it on first call."""
        cache_dir = self.cache_dir
        if cache_dir is None:
            if self._temp is None:  # removed when this encoder goes
                self._temp = scratch_folder(self, "recs-onnx-")
            cache_dir = self._temp
        return ensure_exported(self.spec, cache_dir, self.notify, self.precision)

    def warm_up(self) -> threading.Thread | None:
        """Start loading the session in a background thread; None when there is nothing to
        gain (already loaded, or not exported yet: a first export stays in the foreground).

        The modules are imported here, in the caller's thread: loading onnxruntime's
        shared library holds the GIL, and a build reading its folder meanwhile waited for
        it (about 0.04 s more than importing first). The session and the tokenizer then
        load without holding the GIL. A failure here is silent: the first `encode` raises it.
        """
        if self._session is not None or self.cache_dir is None:
            return None
        if not exported_path(self.spec, self.cache_dir, self.precision).is_file():
            return None
        with contextlib.suppress(ImportError):  # the first `encode` says what is missing
            import onnxruntime  # noqa: F401
            import tokenizers  # noqa: F401

        def load() -> None:
            with contextlib.suppress(Exception):
                self.load()

        thread = threading.Thread(target=load, name="recs-encoder-warm-up", daemon=True)
        thread.start()
        return thread

    def load(self) -> tuple[Any, Any]:
        """The onnxruntime session and the tokenizer, loaded (and the model exported) on
        first call; `encode` calls it, `warm_up` calls it early in the background."""
        with self._loading:
            return self._load_once()

    def _load_once(self) -> tuple[Any, Any]:
        if self._session is None:
            reason = unsupported_reason(self.spec)
            if reason:
                raise ModelError(
                    f"the ONNX backend cannot run {self.spec.path}: {reason}; {FALLBACK}"
                )
            path = self.model_file()
            import onnxruntime
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self.spec.path / "tokenizer.json"))
            tokenizer.no_padding()
            tokenizer.enable_truncation(self.max_length)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1 if self.across_texts else self.threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            spin = "1" if self.spin else "0"
            options.add_session_config_entry("session.intra_op.allow_spinning", spin)
            options.add_session_config_entry("session.inter_op.allow_spinning", spin)
            try:
                session = onnxruntime.InferenceSession(
                    str(path), options, providers=["CPUExecutionProvider"]
                )
            except RuntimeError as error:
                raise ModelError(
                    f"cannot load the ONNX export {path} ({error}); delete it to export again, "
                    f"or {FALLBACK}"
                ) from None
            self._inputs = [i.name for i in session.get_inputs()]
            self._tokenizer = tokenizer
            self._session = session
        return self._session, self._tokenizer

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        _, tokenizer = self.load()
        prepared = [t.lower() if self.lower_case else t for t in texts]
        encodings = tokenizer.encode_batch(prepared)
        lengths = np.array([len(e.ids) for e in encodings])
        # Shortest first, ties in input order, so a batch pads little and runs are repeatable.
        order = np.argsort(lengths, kind="stable")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        batches = []
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = int(lengths[rows].max())
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros((len(rows), width), dtype=np.int64)
            for position, row in enumerate(rows):
                encoding = encodings[row]
                size = len(encoding.ids)
                ids[position, :size] = encoding.ids
                mask[position, :size] = 1
                types[position, :size] = encoding.type_ids
            batches.append((rows, ids, mask, types))
        if self.across_texts and len(batches) > 1:
            with self._loading:  # one pool, whichever thread (a server's requests) comes first
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="recs-onnx")
            results = self._pool.map(lambda batch: self.pooled(*batch[1:]), batches)
        else:
            results = (self.pooled(*batch[1:]) for batch in batches)
        for (rows, *_), pooled in zip(batches, results, strict=True):
            out[rows] = pooled
        return normalise(out)

    def pooled(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray | None = None) -> Any:
        """The model's mean-pooled output for a batch of token ids (rows padded with 0 where
        `mask` is 0), not normalised. `encode` runs every batch through this."""
        session, _ = self.load()
        types = np.zeros_like(ids) if types is None else types
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return session.run(None, {name: feed[name] for name in self._inputs})[0]
