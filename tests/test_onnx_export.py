"""The ONNX files: export, int8 quantisation, the per-machine cache and its checks."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from recs import onnx_export
from recs.errors import ModelError
from recs.models import ModelSpec
from recs.onnx_export import ensure_exported, exported_path, max_seq_length
from tests.conftest import BIN, EXAMPLES


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
    assert onnx_export.unsupported_reason(fake_model(tmp_path / "mean")) is None
    cls = fake_model(tmp_path / "cls", pooling={"pooling_mode_cls_token": True})
    assert "pooling_mode_cls_token" in str(onnx_export.unsupported_reason(cls))
    dense = fake_model(tmp_path / "dense", modules=["Transformer", "Pooling", "Dense"])
    assert "Dense" in str(onnx_export.unsupported_reason(dense))
    slow = fake_model(tmp_path / "slow")
    (slow.path / "tokenizer.json").unlink()
    assert "tokenizer.json" in str(onnx_export.unsupported_reason(slow))


def test_max_seq_length_follows_sentence_transformers_config(tmp_path):
    spec = fake_model(tmp_path / "m")
    (spec.path / "config.json").write_text('{"max_position_embeddings": 512}', encoding="utf-8")
    assert max_seq_length(spec) == 512
    (spec.path / "sentence_bert_config.json").write_text('{"max_seq_length": 128}', "utf-8")
    assert max_seq_length(spec) == 128


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
    onnx_export.export_model = _slow_export  # this forked child only
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
    monkeypatch.setattr(onnx_export, "export_model", _slow_export)
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
    monkeypatch.setattr(onnx_export, "export_model", _slow_export)
    monkeypatch.setattr(onnx_export, "quantize_model", _fake_quantize)
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
    monkeypatch.setattr(onnx_export, "export_model", _slow_export)

    def broken(spec: ModelSpec, source: Path, target: Path) -> None:
        target.write_bytes(b"partial")
        raise KeyError("Attention_5")

    monkeypatch.setattr(onnx_export, "quantize_model", broken)
    with pytest.raises(ModelError, match=r"cannot quantise model to ONNX \('Attention_5'\)"):
        ensure_exported(spec, tmp_path / "cache", precision="int8")
    folder = exported_path(spec, tmp_path / "cache").parent
    assert sorted(p.name for p in folder.iterdir()) == [
        ".lock",
        "calls",
        "model-v1.onnx",
        "model-v1.onnx.sha256",
    ]


class AnyTokenizer:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def test_failed_export_says_how_to_fall_back_and_leaves_nothing(tmp_path, monkeypatch):
    spec = fake_model(tmp_path / "model")

    def broken(spec: ModelSpec, target: Path) -> None:
        target.write_bytes(b"partial")
        raise RuntimeError("Unsupported: ONNX export of operator foo\nmore detail")

    monkeypatch.setattr(onnx_export, "export_model", broken)
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

    monkeypatch.setattr(onnx_export, "export_model", read_only)
    with pytest.raises(ModelError, match="Read-only file system; set RECS_CACHE_DIR to a writable"):
        ensure_exported(spec, tmp_path / "store")


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
