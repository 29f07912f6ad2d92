"""The ONNX backend: the sentence-transformers model exported once, run with onnxruntime.

The first `encode` exports the model's transformer, with mean pooling in the graph, using
torch.onnx into `<cache_dir>/onnx/<model id>/model-v<N>.onnx`, once per machine and model
(`cache_dir` is RECS_CACHE_DIR, by default the user's cache folder, never a store: a new
store or a `--check` run does not export again). The file is written under a lock to a
temporary name and renamed into place, so two processes exporting at once wait for each
other and a reader never sees half a file; a checksum beside it lets a later run find a
damaged file and export again. Every later run loads that file with
onnxruntime alone: torch is not imported.

Texts go through the model's own fast tokenizer (`tokenizer.json`, the `tokenizers`
library) with sentence-transformers' truncation (`max_seq_length` of
`sentence_bert_config.json`), are sorted by token count, batched, pooled by the mean of
their real tokens and L2-normalised, as sentence-transformers does. tests/test_onnx.py
checks cosine >= 0.9999 against the torch backend on every HuffPost text.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recs.cpus import cores
from recs.encoder import normalise
from recs.errors import ModelError
from recs.models import ModelSpec, offline_transformers
from recs.progress import Notify, no_progress_message

# Bump when the exported graph changes: older exports are then ignored, not reused.
EXPORT_VERSION = 1
ONNX_DIR = "onnx"
OPSET = 17
FALLBACK = "use --backend torch (RECS_BACKEND=torch) to run the model with sentence-transformers"
# Modules of modules.json the export reproduces (Normalize is applied anyway).
_SUPPORTED_MODULES = {
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot read {path}: {error}") from None
    return value if isinstance(value, dict) else {}


def unsupported_reason(spec: ModelSpec) -> str | None:
    """Why the ONNX backend cannot run this model (None when it can). Reads small files only.

    Supported: a transformer with a fast tokenizer (tokenizer.json) and mean pooling,
    optionally followed by Normalize, which is what all-MiniLM-L6-v2 and most
    sentence-transformers text models are.
    """
    if not (spec.path / "tokenizer.json").is_file():
        return "the model has no tokenizer.json (fast tokenizer)"
    modules = spec.path / "modules.json"
    if modules.is_file():
        try:
            listed = json.loads(modules.read_text(encoding="utf-8"))
            types = [str(m.get("type", "")) for m in listed]
        except (OSError, ValueError, AttributeError) as error:
            return f"cannot read {modules}: {error}"
        others = sorted(set(types) - _SUPPORTED_MODULES)
        if others:
            return f"the model has modules the export does not cover: {', '.join(others)}"
    pooling = _read_json(spec.path / "1_Pooling" / "config.json")
    if pooling:
        modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
        if modes != ["pooling_mode_mean_tokens"]:
            return f"the model pools with {', '.join(modes) or 'nothing'}, not the mean of tokens"
    return None


def max_seq_length(spec: ModelSpec) -> int:
    """The token limit sentence-transformers truncates to for this model."""
    value = _read_json(spec.path / "sentence_bert_config.json").get("max_seq_length")
    if isinstance(value, int) and value > 0:
        return value
    limits = [
        _read_json(spec.path / "config.json").get("max_position_embeddings"),
        _read_json(spec.path / "tokenizer_config.json").get("model_max_length"),
    ]
    usable = [v for v in limits if isinstance(v, int) and 0 < v < 1_000_000]
    return min(usable) if usable else 512


def exported_path(spec: ModelSpec, cache_dir: Path) -> Path:
    """Where the export of `spec` lives under `cache_dir` (RECS_CACHE_DIR: one per machine)."""
    return cache_dir / ONNX_DIR / spec.model_id / f"model-v{EXPORT_VERSION}.onnx"


def _checksum_path(model: Path) -> Path:
    return model.with_name(model.name + ".sha256")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _intact(model: Path) -> bool:
    """Whether `model` is the whole export its checksum file describes. An export is
    written under a temporary name and renamed, so a partial file means outside damage (a
    disk that filled while copying a cache, an edit): hashing 87 MB costs about 0.08 s
    per process that loads the model, and a damaged file is then remade, not run."""
    try:
        recorded = json.loads(_checksum_path(model).read_text(encoding="utf-8"))
        if model.stat().st_size != recorded["size"]:
            return False
        return bool(_sha256(model) == recorded["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


@contextlib.contextmanager
def _export_lock(folder: Path) -> Iterator[None]:
    """One exporter per model folder at a time, across processes (waits for the other)."""
    with open(folder / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _export(spec: ModelSpec, target: Path) -> None:
    """Write the model (transformer + mean pooling) to `target` with torch.onnx."""
    offline_transformers()
    import torch
    import transformers

    model = transformers.AutoModel.from_pretrained(str(spec.path), attn_implementation="eager")
    model.eval()
    takes_types = "token_type_ids" in inspect.signature(model.forward).parameters

    class MeanPooled(torch.nn.Module):
        """The transformer, then sentence-transformers' mean over real tokens."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, *rest: Any) -> Any:
            extra = {"token_type_ids": rest[0]} if rest else {}
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, **extra
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / torch.clamp(mask.sum(1), min=1e-9)

    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if takes_types else [])
    example = tuple(torch.ones((2, 8), dtype=torch.long) for _ in names)
    axes = {name: {0: "batch", 1: "tokens"} for name in names}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            MeanPooled(),
            example,
            str(target),
            input_names=names,
            output_names=["embedding"],
            dynamic_axes={**axes, "embedding": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def ensure_exported(spec: ModelSpec, cache_dir: Path, notify: Notify = no_progress_message) -> Path:
    """The exported model file, exporting it first if no process has yet, or again if the
    cached file is damaged (`_intact`). Safe to race: one exporter at a time."""
    target = exported_path(spec, cache_dir)
    if _intact(target):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _export_lock(target.parent):
            if _intact(target):  # another process exported it while we waited
                return target
            what = "again: the cached one is damaged" if target.exists() else "once"
            notify(f"exporting {spec.name} to ONNX ({what}; cached in {target.parent}) ...")
            started = time.monotonic()
            temp = target.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{target.name}")
            checksum = temp.with_name(temp.name + ".sha256")
            try:
                _export(spec, temp)
                with open(temp, "rb+") as handle:
                    os.fsync(handle.fileno())
                record = {"size": temp.stat().st_size, "sha256": _sha256(temp)}
                checksum.write_text(json.dumps(record), encoding="utf-8")
                # The checksum names the model it describes only once both are in place.
                os.replace(temp, target)
                os.replace(checksum, _checksum_path(target))
            finally:
                temp.unlink(missing_ok=True)
                checksum.unlink(missing_ok=True)
            notify(f"exported {spec.name} to ONNX in {time.monotonic() - started:.1f}s")
    except OSError as error:
        raise ModelError(
            f"cannot write the ONNX export of {spec.name} in {target.parent}: "
            f"{error.strerror or error}; set RECS_CACHE_DIR to a writable folder, or {FALLBACK}"
        ) from None
    except (RuntimeError, ValueError, TypeError, ImportError) as error:
        # torch.onnx raises RuntimeError subclasses; transformers ValueError/ImportError.
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"cannot export {spec.name} to ONNX ({first}); {FALLBACK}") from None
    return target


class OnnxEncoder:
    """The model exported to ONNX, run with onnxruntime on every core; loads on first use.

    `cache_dir` keeps the export (RECS_CACHE_DIR); None exports into a temporary
    folder that lives as long as this encoder. `notify` hears about a first-time export.
    """

    def __init__(
        self,
        spec: ModelSpec,
        cache_dir: Path | None = None,
        batch_size: int = 16,  # measured: 16 texts a run beat 64 by 9-14% on 2 cores
        threads: int | None = None,
        notify: Notify = no_progress_message,
    ) -> None:
        self.spec = spec
        self.model_id = spec.model_id
        self.dim = spec.dim
        self.batch_size = batch_size
        self.threads = threads or cores()
        self.cache_dir = cache_dir
        self.notify = notify
        self.max_length = max_seq_length(spec)
        self.lower_case = bool(
            _read_json(spec.path / "sentence_bert_config.json").get("do_lower_case")
        )
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
                self._temp = Path(tempfile.mkdtemp(prefix="recs-onnx-"))
                weakref.finalize(self, shutil.rmtree, self._temp, ignore_errors=True)
            cache_dir = self._temp
        return ensure_exported(self.spec, cache_dir, self.notify)

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
        if not exported_path(self.spec, self.cache_dir).is_file():
            return None
        with contextlib.suppress(ImportError):  # the first `encode` says what is missing
            import onnxruntime  # noqa: F401
            import tokenizers  # noqa: F401

        def load() -> None:
            with contextlib.suppress(Exception):
                self._load()

        thread = threading.Thread(target=load, name="recs-encoder-warm-up", daemon=True)
        thread.start()
        return thread

    def _load(self) -> tuple[Any, Any]:
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
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
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
        session, tokenizer = self._load()
        prepared = [t.lower() if self.lower_case else t for t in texts]
        encodings = tokenizer.encode_batch(prepared)
        lengths = np.array([len(e.ids) for e in encodings])
        # Shortest first, ties in input order, so a batch pads little and runs are repeatable.
        order = np.argsort(lengths, kind="stable")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
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
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            out[rows] = session.run(None, {name: feed[name] for name in self._inputs})[0]
        return normalise(out)
