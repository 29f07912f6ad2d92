"""The ONNX files a model runs from: the export, its int8 version, and their cache.

`ensure_exported` gives the file for a model and precision, making it first where no
process has (or where the cached one is damaged): `export_model` writes the model's
transformer with mean pooling in the graph using torch.onnx; `quantize_model` makes the int8
file from that export (Int8Recipe says which recipe and why). Files live under
`<cache_dir>/onnx/<model id>/` (RECS_CACHE_DIR, never a store), are written under a lock to
a temporary name and renamed into place with a checksum beside them (`ensure_cached`), so
two processes making one wait for each other and a reader never sees half a file.
recs.onnx runs them; recs.static keeps its distilled table the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import logging
import os
import re
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recs.errors import ModelError
from recs.models import ModelSpec, offline_transformers
from recs.progress import Notify, no_progress_message

# Bump when the exported graph changes: older exports are then ignored, not reused.
EXPORT_VERSION = 1
# Bump when the int8 recipe (Int8Recipe) changes, and change models.INT8_SUFFIX with it:
# stores record the suffix, and vectors of two recipes must not mix.
INT8_VERSION = 2
PRECISIONS = ("fp32", "int8")
# Texts per onnxruntime run. fp32: 16 beat 64 by 9-14% on 2 cores. int8: one text a run,
# because dynamic quantisation scales each activation tensor by its own range, so a text
# batched with others would get a vector that depends on them (cosine to itself alone
# 0.979-1.0, mean 0.992, on 200 HuffPost texts) and a build's vectors on its batches. Alone,
# a text always gets the same vector; the texts then run side by side, one thread each
# (a session of one thread, run from `threads` threads at once): on 800 HuffPost texts, 5
# interleaved rounds, 2.25x fp32's texts per CPU-second, against 1.95x for one text a run
# on two threads and 2.23x for 16 texts a run (whose vectors depend on their batch).
BATCH_SIZE = {"fp32": 16, "int8": 1}
ONNX_DIR = "onnx"
OPSET = 17
FALLBACK = "use --backend torch (RECS_BACKEND=torch) to run the model with sentence-transformers"
# Modules of modules.json the export reproduces (Normalize is applied anyway).
_SUPPORTED_MODULES = {
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
}


def read_json(path: Path) -> dict[str, Any]:
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
    pooling = read_json(spec.path / "1_Pooling" / "config.json")
    if pooling:
        modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
        if modes != ["pooling_mode_mean_tokens"]:
            return f"the model pools with {', '.join(modes) or 'nothing'}, not the mean of tokens"
    return None


def max_seq_length(spec: ModelSpec) -> int:
    """The token limit sentence-transformers truncates to for this model."""
    value = read_json(spec.path / "sentence_bert_config.json").get("max_seq_length")
    if isinstance(value, int) and value > 0:
        return value
    limits = [
        read_json(spec.path / "config.json").get("max_position_embeddings"),
        read_json(spec.path / "tokenizer_config.json").get("model_max_length"),
    ]
    usable = [v for v in limits if isinstance(v, int) and 0 < v < 1_000_000]
    return min(usable) if usable else 512


def exported_path(spec: ModelSpec, cache_dir: Path, precision: str = "fp32") -> Path:
    """Where the export of `spec` at `precision` lives under `cache_dir` (RECS_CACHE_DIR:
    one per machine); the int8 file sits beside the fp32 one it is made from."""
    folder = cache_dir / ONNX_DIR / spec.model_id
    if precision == "int8":
        return folder / f"model-v{EXPORT_VERSION}-int8-v{INT8_VERSION}.onnx"
    return folder / f"model-v{EXPORT_VERSION}.onnx"


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


def export_model(spec: ModelSpec, target: Path) -> None:
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


@dataclass(frozen=True)
class Int8Recipe:
    """How the int8 model is made from the fp32 export. The default is what ships; the
    other values exist for bench/quantize.py, which measures the alternatives.

    Measured against fp32 on both evaluation files with the default ranking (bench
    `--part int8`, docs/quality.md "int8"), every recipe below kept precision@5 and nDCG@5
    within 0.003 of fp32 with no near-duplicates; the shipped one is the fastest of them:
    the exported graph as it is (onnxruntime fuses what it can when it loads it), every
    MatMul and the word-embedding lookup quantised, weights per output channel (per tensor
    moved a quarter more of the lists at the same speed). Fusing the graph first with the
    transformer optimizer ran 12% slower one text a run, and keeping the feed-forward
    output in fp32 kept more of the lists but ran at 1.7x instead of 2.9x fp32's texts/s.
    """

    fuse: bool = False  # run onnxruntime's transformer optimizer (BERT fusions) first
    per_channel: bool = True
    operators: tuple[str, ...] | None = None  # None: onnxruntime's default (MatMul, Gather)
    keep: tuple[str, ...] = ()  # node name patterns (regular expressions) left in fp32


def quantize_model(
    spec: ModelSpec, source: Path, target: Path, recipe: Int8Recipe = Int8Recipe()
) -> None:
    """Write the int8 model of `source` to `target` (see Int8Recipe)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    config = read_json(spec.path / "config.json")
    heads, hidden = config.get("num_attention_heads", 0), config.get("hidden_size", 0)
    fused = target.with_name(target.name + ".fused")
    try:
        quiet = logging.getLogger("onnxruntime")
        with warnings.catch_warnings(), _quiet_logging(quiet, logging.getLogger()):
            warnings.simplefilter("ignore")
            if recipe.fuse:
                optimized = optimize_model(
                    str(source), model_type="bert", num_heads=heads, hidden_size=hidden
                )
                optimized.save_model_to_file(str(fused))
            graph = fused if recipe.fuse else source
            kept = [
                node.name
                for node in onnx.load(str(graph)).graph.node
                if any(re.search(pattern, node.name) for pattern in recipe.keep)
            ]
            quantize_dynamic(
                str(graph),
                str(target),
                per_channel=recipe.per_channel,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=list(recipe.operators) if recipe.operators else None,
                nodes_to_exclude=kept,
                # The fused operators are not in onnx's shape inference: their outputs are
                # float32, as everything in this graph.
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    finally:
        fused.unlink(missing_ok=True)


@contextlib.contextmanager
def _quiet_logging(*loggers: logging.Logger) -> Iterator[None]:
    """The optimizer and quantizer log advice at INFO and WARNING on every run: hidden."""
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def ensure_cached(
    target: Path, make: Callable[[Path], None], notify: Notify, doing: str, done: str
) -> Path:
    """`target`, made first with `make(temporary_path)` if no process has yet, or again if
    the cached file is damaged (`_intact`). Safe to race: one maker per folder at a time,
    the others wait and then find it. `notify` hears `doing` before and `done` after.
    Raises what `make` raises, and OSError."""
    if _intact(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _export_lock(target.parent):
        if _intact(target):  # another process made it while we waited
            return target
        again = "again: the cached one is damaged" if target.exists() else "once"
        notify(f"{doing} ({again}; cached in {target.parent}) ...")
        started = time.monotonic()
        temp = target.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{target.name}")
        checksum = temp.with_name(temp.name + ".sha256")
        try:
            make(temp)
            with open(temp, "rb+") as handle:
                os.fsync(handle.fileno())
            record = {"size": temp.stat().st_size, "sha256": _sha256(temp)}
            checksum.write_text(json.dumps(record), encoding="utf-8")
            # The checksum names the file it describes only once both are in place.
            os.replace(temp, target)
            os.replace(checksum, _checksum_path(target))
        finally:
            temp.unlink(missing_ok=True)
            checksum.unlink(missing_ok=True)
        notify(f"{done} in {time.monotonic() - started:.1f}s")
    return target


def ensure_exported(
    spec: ModelSpec,
    cache_dir: Path,
    notify: Notify = no_progress_message,
    precision: str = "fp32",
) -> Path:
    """The exported model file at `precision`, exporting (and for int8, quantising) it first
    if no process has yet, or again if the cached file is damaged."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    target = exported_path(spec, cache_dir, precision)
    try:
        if precision == "int8":
            source = ensure_exported(spec, cache_dir, notify)
            return ensure_cached(
                target,
                lambda temp: quantize_model(spec, source, temp),
                notify,
                f"quantising {spec.name} to int8",
                f"quantised {spec.name} to int8",
            )
        return ensure_cached(
            target,
            lambda temp: export_model(spec, temp),
            notify,
            f"exporting {spec.name} to ONNX",
            f"exported {spec.name} to ONNX",
        )
    except OSError as error:
        raise ModelError(
            f"cannot write the ONNX export of {spec.name} in {target.parent}: "
            f"{error.strerror or error}; set RECS_CACHE_DIR to a writable folder, or {FALLBACK}"
        ) from None
    except (RuntimeError, ValueError, TypeError, ImportError, KeyError) as error:
        # torch.onnx raises RuntimeError subclasses; transformers ValueError/ImportError;
        # the optimizer and quantizer ValueError, KeyError or RuntimeError.
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        step = "quantise" if precision == "int8" else "export"
        raise ModelError(f"cannot {step} {spec.name} to ONNX ({first}); {FALLBACK}") from None
