"""recs/recommender.py: the Python API over a built store: a stored article's list (stored,
or ranked live for filters and larger limits), each entry with its score, cosine and reason,
every list at once, a draft's list, and the parts of each score."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from recs.config import Settings
from recs.encoder import HashingEncoder
from recs.errors import ArticleNotFound, InvalidInput, StoreIncompatible
from recs.options import EXACT_MAX, LIVE_EXACT_MAX
from recs.ranked import PINNED, Item
from recs.recommender import Recommender
from recs.select import LADDER

SPACE0 = "https://example.com/space/0"


def urls(entries: list[dict]) -> list[str]:
    return [entry["webUrl"] for entry in entries]


def test_a_stored_article_is_found_by_any_form_of_its_url(recommender):
    row = recommender.row(SPACE0)
    assert recommender.row("HTTP://Example.com/space/0/?utm_source=feed#top") == row
    assert recommender.canonical("http://example.com/space/0/") == SPACE0
    with pytest.raises(ArticleNotFound) as missing:
        recommender.row("http://example.com/x?utm_medium=mail")
    assert str(missing.value) == "no stored article has the URL https://example.com/x"
    with pytest.raises(InvalidInput):
        recommender.row("not a url")


def test_the_stored_list_answers_up_to_the_build_limit(recommender):
    row = recommender.row(SPACE0)
    stored = recommender.snapshot.related[row]
    assert len(stored) == 3  # built with limit 3
    for limit in (None, 1, 3):
        items = recommender.related_items(row, recommender.rank_settings(limit))
        assert items == stored[: limit or 3]
    entries = recommender.related(SPACE0, limit=2)
    assert urls(entries) == [recommender.snapshot.articles[i.row].url for i in stored[:2]]
    assert all("/space/" in url for url in urls(recommender.related(SPACE0)))


def test_filters_and_larger_limits_are_ranked_live(recommender):
    first = urls(recommender.related(SPACE0))
    more = recommender.related(SPACE0, limit=6)
    assert len(more) == 6 and urls(more)[:3] == first
    filtered = urls(recommender.related(SPACE0, exclude_url=(first[0],)))
    assert first[0] not in filtered and filtered[:2] == first[1:]
    assert urls(recommender.related(SPACE0, topic=("nothing",))) == []


def test_a_limit_outside_the_bounds_names_them(recommender):
    for limit in (0, Settings().max_limit + 1):
        with pytest.raises(
            InvalidInput, match=f"limit must be between 1 and {Settings().max_limit}"
        ):
            recommender.related(SPACE0, limit=limit)
    with pytest.raises(InvalidInput, match="unknown ranking option"):
        recommender.related(SPACE0, colour="blue")


def test_an_entry_is_the_articles_short_copy_then_score_similarity_and_reason(recommender):
    entry = recommender.related(SPACE0, limit=1)[0]
    chosen = recommender.snapshot.articles[recommender.row(entry["webUrl"])]
    assert list(entry) == [*chosen.entry(), "score", "similarity", "reason"]
    assert entry["reason"]["kind"] == "similar"
    assert -1.0 <= entry["similarity"] <= 1.0 and entry["score"] >= 0


def test_the_reason_says_how_an_item_was_chosen_and_what_the_two_share(recommender):
    articles = recommender.snapshot.articles
    query = replace(
        articles[0],
        fields={**articles[0].fields, "topics": ["Rockets", "moon"], "category": " news "},
    )
    articles[1] = replace(
        articles[1],
        fields={**articles[1].fields, "topics": ["ROCKETS", "sea"], "category": "News"},
    )
    pinned = recommender.entry(Item(1, 0.5, 0.4, PINNED, same_story=(2,)), query)
    assert pinned["pinned"] is True
    assert pinned["reason"] == {
        "kind": "pinned",
        "topics": ["ROCKETS"],  # as the chosen article writes it
        "category": "News",
        "same_story": [articles[2].url],
    }
    fallback = recommender.reason(Item(1, 0.5, 0.4, step=2), query)
    assert (fallback["kind"], fallback["step"]) == ("fallback", LADDER[2].name)
    plain = recommender.reason(Item(2, 0.5, 0.4), articles[5])
    assert plain == {"kind": "similar", "category": "news"}  # no topics: only the category


def test_every_list_at_once_by_canonical_url(recommender):
    lists = recommender.related_map(limit=2)
    assert set(lists) == {a.url for a in recommender.snapshot.articles}
    assert lists[SPACE0] == recommender.related(SPACE0, limit=2)


def test_a_drafts_list_is_ranked_against_the_store(recommender):
    fields = {"title": "Rocket launch to the space station", "excerpt": "A crewed space rocket."}
    url, entries = recommender.related_to_draft(fields, limit=2, encoder=HashingEncoder())
    assert url is None and len(entries) == 2
    assert all("/space/" in u for u in urls(entries))
    named = {**fields, "webUrl": "HTTP://example.com/space/new/"}
    assert recommender.related_to_draft(named, encoder=HashingEncoder())[0] == (
        "https://example.com/space/new"
    )
    with pytest.raises(InvalidInput):
        recommender.related_to_draft({"excerpt": "no title"}, encoder=HashingEncoder())


def test_an_explanation_gives_each_entry_the_parts_of_its_score(recommender):
    explained = recommender.explain(SPACE0, limit=3)
    assert [entry for entry, _ in explained] == recommender.related(SPACE0, limit=3)
    for entry, parts in explained:
        assert parts["cosine"] == pytest.approx(entry["similarity"], abs=1e-6)
        assert set(parts) >= {"cosine", "expansion", "boost", "decay", "value"}


def test_open_refuses_a_store_of_another_model_only_when_asked(recommender, tmp_path):
    store_dir = tmp_path / "store"
    other = Settings(store=store_dir, model=None)  # the bundled model: not what built it
    assert len(Recommender.open(settings=other).snapshot) == 12  # stored lists need no model
    with pytest.raises(StoreIncompatible):
        Recommender.open(settings=other, check_model=True)
    hashing = Recommender.open(store_dir, Settings(model="hashing"), check_model=True)
    assert hashing.related(SPACE0) == recommender.related(SPACE0)


def test_a_live_ranking_searches_exactly_up_to_live_exact_max_rows():
    """Past EXACT_MAX a build uses an inverted file; a live ranking's few queries do not
    pay for building one (a server would build it again after every write), up to
    LIVE_EXACT_MAX rows."""

    def index_of(rows: int):
        vectors = np.zeros((rows, 2), dtype=np.float32)
        return Recommender(SimpleNamespace(vectors=vectors)).index

    assert LIVE_EXACT_MAX > EXACT_MAX
    assert index_of(EXACT_MAX + 1).kind == "exact"
    assert index_of(LIVE_EXACT_MAX).kind == "exact"
    assert index_of(LIVE_EXACT_MAX + 1).kind == "ivf"
