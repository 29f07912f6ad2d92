"""The ONNX backend: backend choice, precision in the model id, thread settings, and the
real model's vectors against sentence-transformers on every HuffPost text (the files it
runs from: tests/test_onnx_export.py)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from recs import onnx
from recs.articles import embed_text
from recs.backends import TorchEncoder
from recs.encoder import Warming
from recs.onnx import OnnxEncoder
from recs.onnx_export import exported_path
from tests.conftest import read_jsonl
from tests.test_onnx_export import AnyTokenizer, fake_model


@pytest.mark.parametrize("spin", [False, True])
def test_sessions_take_the_thread_settings(tmp_path, monkeypatch, spin):
    """Threads from the CPUs this process may use; spinning as recs.cpus.SPIN says (off)."""
    import onnxruntime
    import tokenizers

    from recs import cpus

    spec = fake_model(tmp_path / "model")
    monkeypatch.setattr(onnx, "ensure_exported", lambda *args, **kwargs: tmp_path / "m.onnx")
    monkeypatch.setattr(tokenizers.Tokenizer, "from_file", lambda path: AnyTokenizer())
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
    encoder.load()
    flag = "1" if spin else "0"
    assert seen == {
        "threads": cpus.cores(),
        "session.intra_op.allow_spinning": flag,
        "session.inter_op.allow_spinning": flag,
    }
    assert cpus.SPIN is False and OnnxEncoder(spec).spin is False
    # int8 runs one text a run, texts side by side on one thread each (one vector per text).
    int8 = OnnxEncoder(spec, tmp_path, precision="int8", spin=spin)
    int8.load()
    assert int8.batch_size == 1 and int8.across_texts == (cpus.cores() > 1)
    assert seen["threads"] == (1 if cpus.cores() > 1 else cpus.cores())


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
    assert isinstance(OnnxEncoder(spec), Warming), "a build starts the load through Warming"
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
