"""The static tier: the distilled table (made once, cached with a checksum), and texts as the
normalised mean of their tokens' rows."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from recs import static
from recs.backends import load_encoder
from recs.models import STATIC_DIM, STATIC_MODEL, ModelSpec, resolve_model
from recs.onnx_export import exported_path
from recs.static import StaticEncoder, principal, table_path, weight


def static_spec() -> ModelSpec:
    spec = resolve_model(STATIC_MODEL)
    assert spec is not None
    return spec


def test_the_static_model_is_named_and_versioned():
    spec = static_spec()
    assert (spec.kind, spec.dim, spec.name) == ("static", STATIC_DIM, STATIC_MODEL)
    assert spec.model_id.startswith(f"{STATIC_MODEL}@") and spec.model_id.endswith("-v1")
    assert isinstance(load_encoder(STATIC_MODEL, "onnx-int8"), StaticEncoder)  # own engine


def test_frequent_tokens_weigh_less():
    ids = np.arange(30_000)
    w = weight(ids)
    assert np.all(np.diff(w[static.FIRST_WORD :]) >= 0)  # later (rarer) words weigh more
    assert np.all(w[: static.FIRST_WORD] == w[static.FIRST_WORD])  # specials: as the first word
    assert 0 < w.min() < w.max() < 1


def test_principal_axes_do_not_depend_on_row_order():
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((300, 12)) @ rng.standard_normal((12, 12))
    projected = principal(vectors, 5)
    assert projected.shape == (300, 5) and projected.dtype == np.float32
    assert np.allclose(projected.mean(axis=0), 0, atol=1e-4)
    variances = projected.var(axis=0)
    assert np.all(np.diff(variances) <= 1e-6)  # the first axes carry the most
    order = rng.permutation(300)
    assert np.allclose(principal(vectors[order], 5), projected[order], atol=1e-4)


class _Tokenizer:
    """Whitespace words -> ids of a fixed vocabulary; unknown words are dropped."""

    def __init__(self, vocabulary: list[str]) -> None:
        self.ids = {word: i for i, word in enumerate(vocabulary)}

    def encode_batch(self, texts, add_special_tokens=True):
        assert add_special_tokens is False
        return [
            SimpleNamespace(ids=[self.ids[w] for w in text.split() if w in self.ids])
            for text in texts
        ]


def test_a_text_is_the_normalised_mean_of_its_token_rows():
    encoder = StaticEncoder(static_spec())
    table = np.random.default_rng(2).standard_normal((4, encoder.dim)).astype(np.float32)
    tokenizer = _Tokenizer(["a", "b", "c", "d"])
    encoder.load = lambda: (table, tokenizer)  # type: ignore[method-assign]
    vectors = encoder.encode(["a b", "", "zzz", "c c d", "d"])
    expected = [table[0] + table[1], None, None, 2 * table[2] + table[3], table[3]]
    for row, mean in enumerate(expected):
        if mean is None:
            assert not vectors[row].any()  # no known token: a zero row, cosine 0 to all
        else:
            assert np.allclose(vectors[row], mean / np.linalg.norm(mean), atol=1e-6)
    assert encoder.encode([]).shape == (0, encoder.dim)


def test_the_table_is_distilled_once_and_made_again_when_damaged(tmp_path, monkeypatch):
    spec = static_spec()
    calls = []

    def fake_vectors(spec, cache_dir, notify):
        calls.append(cache_dir)
        return np.random.default_rng(3).standard_normal((40, 384)).astype(np.float32)

    monkeypatch.setattr(static, "token_vectors", fake_vectors)
    monkeypatch.setattr(static, "STATIC_DIR", "static")
    spec = ModelSpec(spec.path, spec.name, spec.model_id, 8, spec.kind)
    heard: list[str] = []
    encoder = StaticEncoder(spec, tmp_path, notify=heard.append)
    path = encoder.table_file()
    assert path == table_path(spec, tmp_path) and len(calls) == 1
    table = np.load(path)
    assert table.shape == (40, 8) and table.dtype == np.float32
    assert heard[0].startswith(f"distilling {STATIC_MODEL} from all-MiniLM-L6-v2 (once;")
    assert StaticEncoder(spec, tmp_path).table_file() == path and len(calls) == 1
    path.write_bytes(path.read_bytes()[:-4])
    assert StaticEncoder(spec, tmp_path).table_file() == path and len(calls) == 2
    assert np.array_equal(np.load(path), table)


@pytest.mark.model
@pytest.mark.timeout(300)
def test_the_distilled_table_brings_related_texts_together(model_encoder, tmp_path):
    """Distilled from the session's fp32 export (copied into a fresh cache)."""
    fp32 = exported_path(model_encoder.inner.spec, model_encoder.inner.model_file().parents[2])
    target = exported_path(model_encoder.inner.spec, tmp_path)
    target.parent.mkdir(parents=True)
    shutil.copyfile(fp32, target)
    shutil.copyfile(f"{fp32}.sha256", f"{target}.sha256")
    encoder = StaticEncoder(static_spec(), tmp_path)
    texts = [
        "Stocks tumble on Wall Street as investors fear a recession",
        "Shares fall sharply in New York trading amid economic worries",
        "A simple recipe for fluffy pancakes",
        "",
    ]
    v = encoder.encode(texts)
    assert v.shape == (4, STATIC_DIM)
    assert np.allclose(np.linalg.norm(v[:3], axis=1), 1, atol=1e-5) and not v[3].any()
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert np.array_equal(encoder.encode(texts[:1])[0], v[0])  # batch-independent
    assert Path(encoder.table_file()).stat().st_size > 30_000_000
