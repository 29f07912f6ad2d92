"""The ONNX backend: backend choice, the fp32 and int8 exports in the cache and their races,
thread settings, and the real model's vectors against sentence-transformers on every
HuffPost text."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from recs import onnx
from recs.articles import embed_text
from recs.backends import BACKENDS, TorchEncoder, load_encoder, precision_of
from recs.encoder import HashingEncoder
from recs.errors import ConfigError, ModelError
from recs.models import ModelSpec, model_id_of, resolve_model
from recs.onnx import OnnxEncoder, ensure_exported, exported_path, max_seq_length
from tests.conftest import BIN, EXAMPLES, read_jsonl


def fake_model(folder: Path, pooling: dict | None = None, modules: list | None = None) -> ModelSpec:
    """A model directory with only the small files recs reads before loading weights."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text("{}", encoding="utf-8")
    (folder / "config.json").write_text('{"hidden_size": 8}', encoding="utf-8")
    types = modules or ["Transformer", "Pooling", "Normalize"]
    listed = [{"type": f"sentence_transformers.models.{t}"} for t in types]
    (folder / "modules.json").write_text(json.dumps(listed), encoding="utf-8")
    (folder / "1_Pooling").mkdir(exist_ok=True)
    mode = pooling or {"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(mode), encoding="utf-8")
    return ModelSpec(path=folder, name=folder.name, model_id=f"{folder.name}@0123", dim=8)


def test_supported_and_unsupported_models(tmp_path):
    assert onnx.unsupported_reason(fake_model(tmp_path / "mean")) is None
    cls = fake_model(tmp_path / "cls", pooling={"pooling_mode_cls_token": True})
    assert "pooling_mode_cls_token" in str(onnx.unsupported_reason(cls))
    dense = fake_model(tmp_path / "dense", modules=["Transformer", "Pooling", "Dense"])
    assert "Dense" in str(onnx.unsupported_reason(dense))
    slow = fake_model(tmp_path / "slow")
    (slow.path / "tokenizer.json").unlink()
    assert "tokenizer.json" in str(onnx.unsupported_reason(slow))


def test_max_seq_length_follows_sentence_transformers_config(tmp_path):
    spec = fake_model(tmp_path / "m")
    (spec.path / "config.json").write_text('{"max_position_embeddings": 512}', encoding="utf-8")
    assert max_seq_length(spec) == 512
    (spec.path / "sentence_bert_config.json").write_text('{"max_seq_length": 128}', "utf-8")
    assert max_seq_length(spec) == 128


def test_backend_choice(tmp_path):
    assert BACKENDS == ("auto", "onnx", "onnx-int8", "torch")
    assert isinstance(load_encoder("hashing", "onnx"), HashingEncoder)
    auto = load_encoder(None, "auto", tmp_path)
    assert isinstance(auto, OnnxEncoder) and auto.precision == "int8"  # the default
    fp32 = load_encoder(None, "onnx", tmp_path)
    int8 = load_encoder(None, "onnx-int8", tmp_path)
    assert isinstance(fp32, OnnxEncoder) and isinstance(int8, OnnxEncoder)
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    assert int8.model_id == fp32.model_id + "+int8" and "+" not in fp32.model_id
    assert isinstance(load_encoder(None, "torch", tmp_path), TorchEncoder)
    # A model the export cannot reproduce: auto falls back, an explicit onnx says why.
    cls = fake_model(tmp_path / "cls", pooling={"pooling_mode_cls_token": True})
    assert isinstance(load_encoder(str(cls.path), "auto"), TorchEncoder)
    with pytest.raises(ModelError, match="--backend torch"):
        load_encoder(str(cls.path), "onnx", tmp_path).encode(["a text"])
    with pytest.raises(ConfigError, match="auto, onnx, onnx-int8, torch"):
        load_encoder(None, "tensorflow")


def test_a_store_records_the_precision_it_was_built_with():
    """model_id_of names what load_encoder would record, so a store refuses the other one."""
    spec = resolve_model(None)
    assert spec is not None
    for backend in BACKENDS:
        expected = load_encoder(None, backend).model_id
        assert model_id_of(None, backend) == expected
        assert expected.endswith("+int8") == (precision_of(spec, backend) == "int8")
    assert model_id_of(None, "onnx") == model_id_of(None, "torch") == spec.model_id
    assert model_id_of(None, "onnx-int8") == spec.model_id + "+int8"
    assert model_id_of("hashing", "onnx-int8") == HashingEncoder().model_id


def _slow_export(spec: ModelSpec, target: Path) -> None:
    """Stands in for torch.onnx: counts calls, writes a file slowly in two parts."""
    with open(target.parent / "calls", "a", encoding="utf-8") as calls:
        calls.write(f"{os.getpid()}\n")
    with open(target, "wb") as handle:
        handle.write(b"first half;")
        handle.flush()
        time.sleep(0.5)
        handle.write(b"second half")


def _export_in_child(spec: ModelSpec, cache: Path, results: multiprocessing.Queue) -> None:
    onnx._export = _slow_export  # this forked child only
    path = ensure_exported(spec, cache)
    results.put((str(path), path.read_bytes()))


def test_two_processes_exporting_at_once_export_once(tmp_path):
    spec = fake_model(tmp_path / "model")
    cache = tmp_path / "store"
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    children = [
        context.Process(target=_export_in_child, args=(spec, cache, results)) for _ in range(2)
    ]
    for child in children:
        child.start()
    got = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    target = exported_path(spec, cache)
    assert got == [(str(target), b"first half;second half")] * 2
    assert len((target.parent / "calls").read_text().split()) == 1
    checksum = target.name + ".sha256"
    assert sorted(p.name for p in target.parent.iterdir()) == [
        ".lock",
        "calls",
        target.name,
        checksum,
    ]


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(path.read_bytes()[:5]),  # cut short
        lambda path: path.write_bytes(path.read_bytes().replace(b"first", b"fir5t")),  # same size
        lambda path: (path.parent / (path.name + ".sha256")).unlink(),  # killed before the record
    ],
)
def test_a_damaged_cached_export_is_found_and_made_again(tmp_path, monkeypatch, damage):
    spec = fake_model(tmp_path / "model")
    monkeypatch.setattr(onnx, "_export", _slow_export)
    cache = tmp_path / "cache"
    target = ensure_exported(spec, cache)
    assert ensure_exported(spec, cache) == target  # intact: not exported again
    damage(target)
    heard: list[str] = []
    assert ensure_exported(spec, cache, heard.append) == target
    assert target.read_bytes() == b"first half;second half"
    assert len((target.parent / "calls").read_text().split()) == 2
    assert "damaged" in heard[0] or "once" in heard[0]


def _fake_quantize(spec: ModelSpec, source: Path, target: Path) -> None:
    """Stands in for the optimizer and quantizer: the source's bytes, marked."""
    with open(target.parent / "quantized", "a", encoding="utf-8") as calls:
        calls.write(f"{source.name}\n")
    target.write_bytes(b"int8 of " + source.read_bytes())


def test_the_int8_model_is_made_once_from_the_fp32_export_and_cached_beside_it(
    tmp_path, monkeypatch
):
    spec = fake_model(tmp_path / "model")
    monkeypatch.setattr(onnx, "_export", _slow_export)
    monkeypatch.setattr(onnx, "_quantize", _fake_quantize)
    cache = tmp_path / "cache"
    heard: list[str] = []
    int8 = ensure_exported(spec, cache, heard.append, precision="int8")
    fp32 = exported_path(spec, cache)
    assert int8 == exported_path(spec, cache, "int8") and int8.parent == fp32.parent != int8
    assert int8.read_bytes() == b"int8 of first half;second half"
    assert [line.split(" (")[0] for line in heard[::2]] == [
        "exporting model to ONNX",
        "quantising model to int8",
    ]
    assert ensure_exported(spec, cache, precision="int8") == int8  # cached: nothing made
    assert ensure_exported(spec, cache) == fp32
    assert (fp32.parent / "quantized").read_text().split() == [fp32.name]
    assert len((fp32.parent / "calls").read_text().split()) == 1
    # Damage to the int8 file is found by its own checksum; the fp32 export is kept.
    int8.write_bytes(b"int8 of first half;second hal!")
    assert ensure_exported(spec, cache, precision="int8") == int8
    assert int8.read_bytes() == b"int8 of first half;second half"
    assert len((fp32.parent / "quantized").read_text().split()) == 2
    assert len((fp32.parent / "calls").read_text().split()) == 1
    with pytest.raises(ValueError, match="fp16"):
        ensure_exported(spec, cache, precision="fp16")


def test_a_failed_quantisation_says_how_to_fall_back(tmp_path, monkeypatch):
    spec = fake_model(tmp_path / "model")
    monkeypatch.setattr(onnx, "_export", _slow_export)

    def broken(spec: ModelSpec, source: Path, target: Path) -> None:
        target.write_bytes(b"partial")
        raise KeyError("Attention_5")

    monkeypatch.setattr(onnx, "_quantize", broken)
    with pytest.raises(ModelError, match=r"cannot quantise model to ONNX \('Attention_5'\)"):
        ensure_exported(spec, tmp_path / "cache", precision="int8")
    folder = exported_path(spec, tmp_path / "cache").parent
    assert sorted(p.name for p in folder.iterdir()) == [
        ".lock",
        "calls",
        "model-v1.onnx",
        "model-v1.onnx.sha256",
    ]


@pytest.mark.parametrize("spin", [False, True])
def test_sessions_take_the_thread_settings(tmp_path, monkeypatch, spin):
    """Threads from the CPUs this process may use; spinning as recs.cpus.SPIN says (off)."""
    import onnxruntime
    import tokenizers

    from recs import cpus

    spec = fake_model(tmp_path / "model")
    monkeypatch.setattr(onnx, "ensure_exported", lambda *args, **kwargs: tmp_path / "m.onnx")
    monkeypatch.setattr(tokenizers.Tokenizer, "from_file", lambda path: _AnyTokenizer())
    seen = {}

    class Session:
        def __init__(self, path, options, providers):
            seen["threads"] = options.intra_op_num_threads
            for entry in ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning"):
                seen[entry] = options.get_session_config_entry(entry)

        def get_inputs(self):
            return []

    monkeypatch.setattr(onnxruntime, "InferenceSession", Session)
    encoder = OnnxEncoder(spec, tmp_path, spin=spin)
    encoder._load()
    flag = "1" if spin else "0"
    assert seen == {
        "threads": cpus.cores(),
        "session.intra_op.allow_spinning": flag,
        "session.inter_op.allow_spinning": flag,
    }
    assert cpus.SPIN is False and OnnxEncoder(spec).spin is False
    # int8 runs one text a run, texts side by side on one thread each (one vector per text).
    int8 = OnnxEncoder(spec, tmp_path, precision="int8", spin=spin)
    int8._load()
    assert int8.batch_size == 1 and int8.across_texts == (cpus.cores() > 1)
    assert seen["threads"] == (1 if cpus.cores() > 1 else cpus.cores())


class _AnyTokenizer:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def test_failed_export_says_how_to_fall_back_and_leaves_nothing(tmp_path, monkeypatch):
    spec = fake_model(tmp_path / "model")

    def broken(spec: ModelSpec, target: Path) -> None:
        target.write_bytes(b"partial")
        raise RuntimeError("Unsupported: ONNX export of operator foo\nmore detail")

    monkeypatch.setattr(onnx, "_export", broken)
    with pytest.raises(ModelError) as caught:
        ensure_exported(spec, tmp_path / "store")
    message = str(caught.value)
    assert "operator foo" in message and "more detail" not in message
    assert "--backend torch" in message and "RECS_BACKEND=torch" in message
    folder = exported_path(spec, tmp_path / "store").parent
    assert [p.name for p in folder.iterdir()] == [".lock"]


def test_unwritable_cache_is_a_model_error(tmp_path, monkeypatch):
    spec = fake_model(tmp_path / "model")

    def read_only(spec: ModelSpec, target: Path) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(target))

    monkeypatch.setattr(onnx, "_export", read_only)
    with pytest.raises(ModelError, match="Read-only file system; set RECS_CACHE_DIR to a writable"):
        ensure_exported(spec, tmp_path / "store")


def test_cli_help_lists_the_backends():
    result = subprocess.run(
        [str(BIN / "recs"), "build", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"COLUMNS": "300"},
    )
    assert result.returncode == 0
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "auto (onnx when the model allows, else torch), onnx, onnx-int8 or torch" in text
    assert "MiniLM-L6-v2-static, multilingual-e5-small, 'hashing'" in text  # click breaks "all-"


# --- the real model ---------------------------------------------------------------------


def session_fp32(model_encoder) -> OnnxEncoder:
    """An fp32 encoder sharing the session encoder's export folder (the default encoder may
    be the int8 one, made from that same fp32 export)."""
    inner = model_encoder.inner
    folder = inner.model_file().parents[2]  # <cache>/onnx/<model id>/<file>
    return OnnxEncoder(inner.spec, cache_dir=folder)


@pytest.mark.model
@pytest.mark.data
@pytest.mark.timeout(1800)
def test_onnx_matches_sentence_transformers_on_every_huffpost_text(model_encoder):
    """fp32: cosine >= 0.9999 on all 10,000 texts (int8 is held to the lists instead, in
    tests/test_quality.py when it is the default and in docs/quality.md)."""
    assert isinstance(model_encoder.inner, OnnxEncoder)  # the default backend
    texts = list(
        dict.fromkeys(embed_text(r["title"], r["excerpt"]) for r in read_jsonl("huffpost.jsonl"))
    )
    assert len(texts) > 9_900
    fp32 = session_fp32(model_encoder)
    fast = model_encoder.encode(texts) if model_encoder.model_id == fp32.model_id else None
    fast = fp32.encode(texts) if fast is None else fast
    reference = TorchEncoder(model_encoder.inner.spec).encode(texts)
    cosines = np.sum(fast.astype(np.float64) * reference.astype(np.float64), axis=1)
    worst = int(np.argmin(cosines))
    assert cosines[worst] >= 0.9999, (cosines[worst], texts[worst])
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)


@pytest.mark.model
def test_edge_texts_match_sentence_transformers(model_encoder):
    # Longer than max_seq_length (truncated), empty, non-ASCII, surrounding whitespace.
    texts = ["", " padded  text ", "Ünïcödé — “quotes” 東京 😀", "word " * 400, "SHORT"]
    fp32 = session_fp32(model_encoder)
    fast = fp32.encode(texts)
    reference = TorchEncoder(model_encoder.inner.spec).encode(texts)
    assert np.min(np.sum(fast * reference, axis=1)) >= 0.9999
    # Batching by length never changes which row is which.
    alone = np.vstack([fp32.encode([t]) for t in texts])
    assert np.min(np.sum(fast * alone, axis=1)) >= 0.9999


@pytest.mark.model
@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_cli_exports_once_per_machine_and_a_check_writes_nothing(tmp_path):
    """The export goes to the machine's cache (RECS_CACHE_DIR), never into a store: a
    `--check` with no store writes nothing, and a second store does not export again."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env["RECS_CACHE_DIR"] = str(tmp_path / "cache")
    content = tmp_path / "content"
    shutil.copytree(EXAMPLES, content)
    files = {p: p.read_bytes() for p in content.rglob("*") if p.is_file()}
    check = [str(BIN / "recs"), "regenerate", str(content), "--check", "--store"]
    checked = subprocess.run(
        [*check, str(tmp_path / "none")], capture_output=True, text=True, env=env, timeout=500
    )
    assert checked.returncode == 1, checked.stderr  # every block is stale: exit 1
    assert "nothing written" in checked.stdout and "exporting all-MiniLM-L6-v2" in checked.stderr
    assert not (tmp_path / "none").exists()
    assert {p: p.read_bytes() for p in content.rglob("*") if p.is_file()} == files
    assert list((tmp_path / "cache" / "onnx").glob("*/model-v*.onnx"))
    command = [str(BIN / "recs"), "build", str(content), "--store", str(tmp_path / "store")]
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=500)
    assert first.returncode == 0, first.stderr
    assert "ONNX" not in first.stderr  # exported once for the machine, not per store
    assert not (tmp_path / "store" / "onnx").exists()
    second = subprocess.run(
        [*command, "--rebuild"], capture_output=True, text=True, env=env, timeout=500
    )
    assert second.returncode == 0, second.stderr
    assert "ONNX" not in second.stderr  # the cached export is reused
    quiet = subprocess.run(
        [*command, "--quiet"],
        capture_output=True,
        text=True,
        env=env | {"RECS_BACKEND": "onnx-int8"},  # the default, named
    )
    assert quiet.returncode == 0 and quiet.stderr == ""


@pytest.mark.model
def test_int8_gives_each_text_one_vector_close_to_fp32(model_encoder, tmp_path):
    """Quantised from the session's fp32 export: the same vector for a text alone or among
    others (dynamic quantisation would otherwise scale it with its batch-mates), close to
    fp32, recorded as another model."""
    fp32 = OnnxEncoder(model_encoder.inner.spec, cache_dir=tmp_path)
    target = exported_path(fp32.spec, tmp_path)
    target.parent.mkdir(parents=True)
    exported = session_fp32(model_encoder).model_file()
    shutil.copyfile(exported, target)
    shutil.copyfile(f"{exported}.sha256", f"{target}.sha256")
    int8 = OnnxEncoder(fp32.spec, cache_dir=tmp_path, precision="int8")
    texts = [r["title"] for r in read_jsonl("huffpost.jsonl", limit=40)] + ["", "word " * 400]
    together = int8.encode(texts)
    alone = np.vstack([int8.encode([t]) for t in texts])
    assert np.array_equal(together, alone)
    cosines = np.sum(together * fp32.encode(texts), axis=1)
    assert cosines.min() >= 0.97 and cosines.mean() >= 0.99, (cosines.min(), cosines.mean())
    assert int8.model_id == fp32.model_id + "+int8"


@pytest.mark.model
def test_warm_up_loads_in_the_background_and_changes_no_vector(model_encoder, tmp_path):
    spec = model_encoder.inner.spec
    assert OnnxEncoder(spec).warm_up() is None, "no store to hold an export: nothing to warm"
    assert OnnxEncoder(spec, cache_dir=tmp_path).warm_up() is None, "not exported yet"
    target = exported_path(spec, tmp_path)
    target.parent.mkdir(parents=True)
    cold = session_fp32(model_encoder)
    exported = cold.model_file()
    shutil.copyfile(exported, target)
    shutil.copyfile(f"{exported}.sha256", f"{target}.sha256")
    texts = ["a warm model", "gives the vectors of a cold one", "Ünïcödé 東京"]
    warm = OnnxEncoder(spec, cache_dir=tmp_path)
    thread = warm.warm_up()
    assert thread is not None
    during = warm.encode(texts)  # waits for the load in progress rather than loading twice
    thread.join(timeout=120)
    assert not thread.is_alive() and warm.warm_up() is None, "loaded: nothing left to warm"
    expected = cold.encode(texts)
    assert np.array_equal(during, expected) and np.array_equal(warm.encode(texts), expected)
