"""The encoder protocol's shared parts: normalising, the hashing encoder, batching."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recs.encoder import HashingEncoder, Warming, embed_all, embedding_groups, normalise
from recs.errors import ModelError


class GroupRecorder(HashingEncoder):
    """The hashing encoder, remembering the texts of every encode call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def encode(self, texts):
        self.calls.append(list(texts))
        return super().encode(texts)


def test_embed_all_encodes_exactly_the_embedding_groups():
    # Remote engines rely on this to batch every text with the same texts as locally.
    texts = [f"text {'word ' * (i % 37)} {i}" for i in range(700)]
    recorder = GroupRecorder()
    embed_all(recorder, texts)
    groups = embedding_groups(texts)
    assert recorder.calls == [[texts[i] for i in group] for group in groups]
    assert sorted(i for group in groups for i in group) == list(range(700))
    assert [len(group) for group in groups] == [256, 256, 188]


@given(
    st.lists(
        st.lists(
            st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=3, max_size=3
        ),
        min_size=1,
        max_size=20,
    )
)
@settings(max_examples=200, deadline=None)
def test_normalised_rows_have_unit_length_or_stay_zero(rows):
    """Any finite float32 values, subnormal and huge ones included (their squares underflow or
    overflow in float32)."""
    out = normalise(np.array(rows, dtype=np.float32))
    assert out.dtype == np.float32 and out.flags["C_CONTIGUOUS"]
    norms = np.linalg.norm(out.astype(np.float64), axis=1)
    for row, norm in zip(rows, norms, strict=True):
        if not any(row):
            assert norm == 0
        else:
            assert abs(norm - 1) < 1e-5


def test_ordinary_rows_are_divided_by_their_norm_bit_for_bit():
    """Stored vectors do not change: on embedding-like rows the scaling that guards tiny
    and huge rows gives exactly the plain division."""
    rows = np.random.default_rng(3).normal(scale=0.1, size=(2000, 384)).astype(np.float32)
    plain = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    assert np.array_equal(normalise(rows), plain)


def test_normalise_wants_a_matrix():
    with pytest.raises(ValueError, match="2-D"):
        normalise(np.ones(3))


def test_the_hashing_encoder_is_deterministic_and_relates_shared_words():
    encoder = HashingEncoder()
    texts = ["Storm floods the coastal town", "Coastal town floods after storm", "Cake recipe"]
    first, again = encoder.encode(texts), HashingEncoder().encode(texts)
    assert np.array_equal(first, again) and first.shape == (3, 384)
    assert first[0] @ first[1] > first[0] @ first[2]
    assert not encoder.encode(["a an"]).any()  # words of under three letters: no features
    assert HashingEncoder(dim=64).model_id != encoder.model_id


def test_embedding_groups_put_the_longest_texts_first_in_chunks():
    texts = ["a" * n for n in (3, 10, 1, 7, 5)]
    assert embedding_groups(texts, chunk=2) == [[1, 3], [4, 0], [2]]
    assert embedding_groups([]) == []


def test_embed_all_refuses_an_encoder_that_returns_the_wrong_shape():
    class Broken(HashingEncoder):
        def encode(self, texts):
            return super().encode(texts)[:-1]

    with pytest.raises(ModelError, match="expected"):
        embed_all(Broken(), ["one text", "another text"])


def test_embed_all_keeps_the_order_of_the_texts_and_reports_progress():
    texts = [f"text number {i} " + "word " * (i % 5) for i in range(10)]
    seen = []
    out = embed_all(HashingEncoder(), texts, chunk=3, progress=lambda *a: seen.append(a))
    assert np.array_equal(out, HashingEncoder().encode(texts))
    assert seen[0] == ("embedding", 0, 10) and seen[-1] == ("embedding", 10, 10)


def test_an_encoder_without_a_model_to_load_is_not_warmed():
    assert not isinstance(HashingEncoder(), Warming)
