"""recs/records.py: the one stored form of an Article (record, fields text) and the way
back; an article already in memory is taken as it is when its stored texts are equal."""

from __future__ import annotations

from recs import store
from recs.encoder import HashingEncoder
from recs.pipeline import build
from recs.rank_settings import RankSettings


def test_a_known_article_whose_row_holds_the_same_values_is_taken_as_is(topic_corpus, tmp_path):
    from dataclasses import replace

    from recs.records import fields_text

    build(topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings())
    plain = store.load(tmp_path / "s")
    same, moved, other = plain.articles[0], plain.articles[1], plain.articles[2]
    moved = replace(moved, line=7)  # equal fields, another stored value
    other_fields = {**other.fields, "category": "elsewhere"}
    known = {
        same.url: (fields_text(same.fields), same),
        moved.url: (fields_text(moved.fields), moved),
        other.url: (fields_text(other_fields), replace(other, fields=other_fields)),
    }
    loaded = store.load(tmp_path / "s", known=known)
    assert loaded.articles[0] is same
    assert loaded.articles[1] is not moved and loaded.articles[1].line is None
    assert loaded.articles[2].fields["category"] == other.fields["category"] != "elsewhere"
    assert [dict(a.fields) for a in loaded.articles] == [dict(a.fields) for a in plain.articles]
    assert [a.text_hash for a in loaded.articles] == [a.text_hash for a in plain.articles]
