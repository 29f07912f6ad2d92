"""recs/records.py: the one stored form of an Article (record, fields text) and the way
back; an article already in memory is taken as it is when its stored texts are equal."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from recs import records, store
from recs.articles import Article
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


def an_article(**changes) -> Article:
    fields = {"title": "Café", "excerpt": "E", "webUrl": "https://a.example/x", "quality": 3}
    article = Article(
        url="https://a.example/x",
        title="Café",
        excerpt="E",
        fields=fields,
        source="news/x.md",
        line=None,
        original_url="https://old.example/x",
        published_ts=1_600_000_000.0,
        pinned=("https://a.example/p",),
        excluded=("https://a.example/q",),
    )
    return replace(article, **changes)


def test_a_record_and_its_fields_give_the_article_back():
    article = an_article()
    record = records.record(article)
    assert list(record) == list(records.RECORD_KEYS)
    back = records.article_from_record(record, json.loads(records.fields_text(article.fields)))
    assert back == article and back.text_hash == article.text_hash
    values = json.loads(records.record_text(article))  # the parse cache's column: a list
    assert records.article_from_record(values, dict(article.fields)) == article


def test_fields_text_keeps_the_key_order_and_the_characters_as_written():
    text = records.fields_text({"title": "Café", "excerpt": "E", "a": [1, 2]})
    assert text == '{"title": "Café", "excerpt": "E", "a": [1, 2]}'
    assert records.fields_text({"b": 1, "a": 2}) != records.fields_text({"a": 2, "b": 1})
    assert records.urls_text(("https://a.example/p",)) == '["https://a.example/p"]'
    assert records.urls_text(()) == json.dumps([])


@pytest.mark.parametrize("pinned", [(), ("https://a.example/p", "https://b.example/q")])
def test_the_stored_record_is_the_record_in_its_key_order(pinned):
    article = replace(an_article(), pinned=pinned, excluded=pinned[:1])
    expected = [records.record(article)[key] for key in records.RECORD_KEYS]
    expected[5], expected[6] = json.dumps(expected[5]), json.dumps(expected[6])
    assert list(records.stored_record(article)) == expected


@pytest.mark.parametrize(
    ("values", "fields", "error"),
    [
        ({"url": "https://a.example/x"}, {"title": "T", "excerpt": "E"}, KeyError),  # no source
        (["https://a.example/x", "x.md"], {"title": "T", "excerpt": "E"}, ValueError),
        (records.record(an_article()), ["not", "a", "mapping"], TypeError),
        (records.record(an_article()), {"excerpt": "no title"}, KeyError),
    ],
)
def test_a_record_recs_did_not_write_is_an_error_readers_can_catch(values, fields, error):
    with pytest.raises(error):
        records.article_from_record(values, fields)


def test_a_known_article_is_taken_only_when_record_and_fields_are_the_same():
    article = an_article()
    fields = records.fields_text(article.fields)
    values = list(records.stored_record(article))
    known = {article.url: (fields, article)}
    assert records.known_article(values, fields, known) is article
    assert records.known_article(values, fields.replace("Café", "Cafe"), known) is None
    moved = [*values[:2], 12, *values[3:]]  # another line
    assert records.known_article(moved, fields, known) is None
    assert records.known_article(values, fields, {}) is None
