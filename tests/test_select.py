"""recs/select.py: choosing a list's items from its candidates: what is never a candidate,
the fallback ladder, and the value a plainly filled list rests on (its bar)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recs.catalog import Catalog, Query
from recs.encoder import normalise
from recs.rank_settings import RankSettings
from recs.select import LADDER, select_items, shares_topic
from tests.test_rank import OTHER_RULES_OFF, make_articles

PLAIN = RankSettings(**OTHER_RULES_OFF, half_life_days=None, dedup_threshold=None)


def chosen(articles, vectors, s=PLAIN, want=3, blocked=(), pinned=(), query=None):
    """select_items for article 0 over every other row: (rows, steps, bar)."""
    catalog = Catalog.from_articles(articles, vectors)
    query = query or Query.for_article(articles[0], vectors[0])
    rows = np.arange(len(articles))
    cosines = (vectors @ vectors[0]).astype(np.float64)
    items, bar = select_items(
        query, catalog, rows, cosines, cosines, set(blocked), list(pinned), s, want
    )
    return [i.row for i in items], [i.step for i in items], bar, items


# Cosines with article 0: 1 0.99, 2 0.8, 3 0.6, 4 0.3, 5 -0.5
VECTORS = normalise(
    np.array(
        [[1, 0], [0.99, 0.141], [0.8, 0.6], [0.6, 0.8], [0.3, 0.954], [-0.5, 0.866]],
        dtype=np.float64,
    )
)


def test_nothing_is_chosen_when_nothing_is_wanted():
    assert chosen(make_articles(6), VECTORS, want=0)[0::2] == ([], None)


def test_the_best_candidates_in_order_and_the_bar_of_a_plainly_filled_list():
    rows, steps, bar, items = chosen(make_articles(6), VECTORS)
    assert rows == [1, 2, 3] and steps == [0, 0, 0]
    assert [i.score for i in items] == sorted((i.score for i in items), reverse=True)
    assert [i.similarity for i in items] == [round(float(VECTORS[r] @ VECTORS[0]), 6) for r in rows]
    assert bar == items[-1].score  # what a change must stay below to leave the list alone


def test_a_short_list_or_mmr_records_no_bar():
    assert chosen(make_articles(6), VECTORS, want=9)[2] is None  # five candidates only
    assert chosen(make_articles(6), VECTORS, replace(PLAIN, mmr_lambda=0.5))[2] is None


def test_never_the_article_itself_a_blocked_row_or_a_duplicate_of_it():
    articles = make_articles(6)
    articles[3] = replace(articles[3], title=articles[0].title)  # the same story, retitled
    rows = chosen(articles, VECTORS, replace(PLAIN, dedup_threshold=0.95), blocked={4})[0]
    assert rows == [2, 5]  # 1 is a near-duplicate (0.99), 3 the same title, 4 blocked


def test_below_the_relevance_floor_is_never_listed_the_list_is_shorter():
    rows, _, bar, _ = chosen(make_articles(6), VECTORS, replace(PLAIN, min_similarity=0.5), want=5)
    assert rows == [1, 2, 3] and bar is None


def test_ineligible_and_other_category_candidates_are_left_out():
    articles = make_articles(
        6, overrides={i: {"category": "a" if i % 2 else "b"} for i in range(6)}
    )
    s = replace(PLAIN, include_drafts=False)  # make_articles marks 0 and 5 as drafts
    assert chosen(articles, VECTORS, s, want=5)[0] == [1, 2, 3, 4]
    assert chosen(articles, VECTORS, replace(PLAIN, same_category=True), want=5)[0] == [2, 4]


def test_the_ladder_fills_with_articles_sharing_a_topic_after_the_related_ones():
    topics = {0: {"topics": ["Space"]}, 3: {"topics": ["space"]}, 4: {"topics": ["SPACE"]}}
    articles = make_articles(6, overrides=topics)
    s = replace(PLAIN, relevant_similarity=0.7)  # related by meaning alone: 1 and 2
    rows, steps, bar, _ = chosen(articles, VECTORS, s, want=4)
    assert rows == [1, 2, 3, 4] and steps == [0, 0, 1, 1] and bar is None
    assert LADDER[1].name == "same topics"
    assert chosen(articles, VECTORS, s, want=2)[1:3] == ([0, 0], pytest.approx(0.8, abs=1e-6))


def test_the_ladder_runs_from_the_strictest_step():
    assert [step.name for step in LADDER] == ["similar", "same topics", "relaxed"]
    first = LADDER[0]
    assert first.cap and first.dates and first.relevant and not first.own_topics
    assert not any(step.cap or step.dates for step in LADDER[1:])


def test_a_topic_is_shared_or_else_the_category_stands_in():
    articles = make_articles(3, overrides={1: {"topics": ["AI"], "category": "x"}, 2: {}})
    catalog = Catalog.from_articles(articles, np.eye(3, 2))
    with_topics = Query(np.zeros(2), topics=frozenset({"ai"}), category="y")
    assert shares_topic(with_topics, catalog, 1) and not shares_topic(with_topics, catalog, 2)
    by_category = Query(np.zeros(2), category="x")
    assert shares_topic(by_category, catalog, 1) and not shares_topic(by_category, catalog, 2)
    assert not shares_topic(Query(np.zeros(2)), catalog, 2)  # neither: nothing is shared
