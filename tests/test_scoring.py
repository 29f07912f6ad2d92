"""recs/scoring.py: the primitives ranking and its proof share: the ordering value and its
parts, the hard filters and the draft rule, duplicates, the query moved towards its
neighbours, and the stable order of equal scores."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recs import scoring
from recs.catalog import DAY, Catalog, Query
from recs.encoder import normalise
from recs.rank_settings import RankSettings
from tests.test_rank import make_articles

START = 1_600_000_000.0  # make_articles' first date; article i is i days later


def catalog_of(n: int, now: float | None = None, overrides=None, vectors=None) -> Catalog:
    articles = make_articles(n, overrides=overrides)
    if vectors is None:
        vectors = normalise(np.random.default_rng(n).normal(size=(n, 8)))
    return Catalog.from_articles(articles, vectors, now)


def query_of(catalog: Catalog, row: int, **changes) -> Query:
    query = Query(
        vector=catalog.vectors[row],
        url=catalog.urls[row],
        title_key=catalog.title_keys[row],
        published_ts=float(catalog.published_ts[row]),
        tags=catalog.tags[row],
        topics=catalog.topics[row],
        category=catalog.categories[row],
    )
    return replace(query, **changes)


def test_equal_scores_are_ordered_by_url():
    catalog = catalog_of(5)  # URLs https://a.com/000 ... /004
    rows = np.array([4, 1, 3, 0])
    scores = np.array([0.5, 0.9, 0.5, 0.5])
    assert rows[scoring.by_score(catalog, rows, scores)].tolist() == [1, 0, 3, 4]


def test_the_query_itself_is_found_by_either_of_its_urls():
    articles = make_articles(4)
    articles[2] = replace(articles[2], original_url="https://old.example/zero")
    catalog = Catalog.from_articles(articles, np.eye(4, 8, dtype=np.float32))
    query = query_of(catalog, 0, original_url="https://old.example/zero")
    assert scoring.own_rows(query, catalog) == {0, 2}
    assert scoring.own_rows(query_of(catalog, 1, url=None), catalog) == set()


def test_blocked_rows_are_the_articles_and_the_settings_exclusions_that_are_stored():
    catalog = catalog_of(4)
    query = query_of(catalog, 0, excluded=("https://a.com/001", "https://a.com/404"))
    settings_ = RankSettings(exclude_url=("https://a.com/003",))
    assert scoring.blocked_rows(query, catalog, settings_) == {1, 3}
    assert scoring.blocked_rows(query_of(catalog, 0), catalog, RankSettings()) == set()


def test_duplicates_by_title_or_by_cosine_as_the_settings_say():
    articles = make_articles(3)
    articles[1] = replace(articles[1], title="TITLE 0!")  # the same title key as article 0
    vectors = normalise(np.array([[1, 0], [0, 1], [1, 0.01]], dtype=np.float32))
    catalog = Catalog.from_articles(articles, vectors)
    plain = RankSettings()
    assert scoring.is_duplicate(0, 1, 0.0, catalog, plain)  # same title
    assert not scoring.is_duplicate(0, 1, 0.0, catalog, replace(plain, dedup_titles=False))
    assert scoring.is_duplicate(0, 2, 0.96, catalog, plain)  # at or above the threshold
    assert not scoring.is_duplicate(0, 2, 0.96, catalog, replace(plain, dedup_threshold=None))
    assert scoring.duplicates_any(2, [1, 0], catalog, plain)  # 2 and 0: cosine 0.99995
    assert not scoring.duplicates_any(1, [2], catalog, plain)
    assert not scoring.duplicates_any(1, [], catalog, plain)
    query = query_of(catalog, 0)
    assert scoring.duplicates_query(1, 0.0, query, catalog, plain)
    assert not scoring.duplicates_query(1, 0.0, replace(query, title_key=""), catalog, plain)
    assert scoring.duplicates_query(2, 0.95, query, catalog, plain)
    assert not scoring.duplicates_query(2, 0.94, query, catalog, plain)


def test_the_moved_query_is_a_unit_vector_towards_the_neighbours_mean():
    vectors = normalise(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32))
    catalog = catalog_of(3, vectors=vectors)
    query = np.array([1.0, 0.0, 0.0])
    moved = scoring.moved_query(query, catalog, [1, 2], RankSettings(expand_weight=2.0))
    assert moved.dtype == np.float64
    assert np.allclose(moved, np.array([1.0, 1.0, 1.0]) / np.sqrt(3))
    # Moved nowhere (the neighbours' mean cancels the query): the query as it is.
    against = catalog_of(1, vectors=np.array([[-1.0, 0.0, 0.0]], dtype=np.float32))
    stays = scoring.moved_query(query, against, [0], RankSettings(expand_weight=1.0))
    assert np.array_equal(stays, query)


def test_eligible_applies_every_hard_filter_and_the_draft_rule():
    overrides = {
        0: {"topics": ["Space"]},
        1: {"topics": ["space", "AI"], "quality": 40},
        3: {"topics": ["Football"]},
    }
    catalog = catalog_of(10, overrides=overrides)  # every fifth (0, 5) is published: false
    rows = lambda **f: np.flatnonzero(scoring.eligible(catalog, RankSettings(**f))).tolist()  # noqa: E731
    assert rows() == [1, 2, 3, 4, 6, 7, 8, 9]
    assert rows(include_drafts=True) == list(range(10))
    assert rows(include_drafts=True, topic=("SPACE",)) == [0, 1]
    assert rows(exclude_topic=("space", "football")) == [2, 4, 6, 7, 8, 9]
    assert rows(provider=("p1",)) == [1, 4, 7]  # providers P0, P1, P2 in turn
    assert rows(exclude_provider=("P1", "p2")) == [3, 6, 9]
    assert rows(type=("video",)) == [4, 8]  # every fourth is a video
    assert rows(exclude_type=("article",)) == [4, 8]
    assert rows(min_quality=8) == [1, 8, 9]  # quality is the number, 40 for article 1
    assert rows(since=START + 3 * DAY, until=START + 6 * DAY) == [3, 4, 6]


def test_eligibility_is_worked_out_once_per_catalog_and_filters():
    catalog = catalog_of(6)
    first = scoring.eligible(catalog, RankSettings(provider=("p0",)))
    assert scoring.eligible(catalog, RankSettings(provider=("p0",), limit=9)) is first
    assert scoring.eligible(catalog, RankSettings(provider=("p1",))) is not first


def test_dates_after_now_wait_unless_drafts_are_included_and_max_age_counts_back():
    ts = np.array([START, START + 5 * DAY, np.nan, START + 20 * DAY])
    now = START + 10 * DAY
    waits = lambda **f: scoring.date_waits(ts, now, RankSettings(**f)).tolist()  # noqa: E731
    assert waits() == [False, False, False, True]
    assert waits(include_drafts=True) == [False, False, False, False]
    assert waits(max_age_days=7) == [True, False, False, True]  # an unknown date never waits
    assert scoring.date_waits(ts, None, RankSettings(max_age_days=1)).tolist() == [False] * 4


def test_the_ordering_value_is_cosine_plus_boost_times_decay():
    articles = make_articles(4, overrides={1: {"topics": ["a", "b"]}, 2: {"topics": ["a"]}})
    articles[3] = replace(articles[3], published_ts=None)
    catalog = Catalog.from_articles(articles, np.eye(4, 4, dtype=np.float32))
    rows = np.array([1, 2, 3])
    base = np.array([0.8, 0.6, -0.4])
    s = RankSettings(taxonomy_boost=0.5, half_life_days=10.0)
    query_ts = START - 10 * DAY  # article 1 is 11 days away, article 2 is 12
    parts = scoring.order_parts(catalog, rows, base, s, query_ts, frozenset({"a"}))
    assert np.allclose(parts.base, base)
    assert np.allclose(parts.boost, [0.5 * 1 / 2, 0.5 * 1 / 1, 0.0])  # Jaccard of the tags
    assert np.allclose(parts.decay, [0.5 ** (11 / 10), 0.5 ** (12 / 10), 1.0])  # no date: 1
    made = base + parts.boost
    assert np.allclose(parts.value[:2], made[:2] * parts.decay[:2])
    assert parts.value[2] == -0.4  # a negative value is never decayed towards zero
    same = scoring.order_values(catalog, rows, base, s, query_ts, frozenset({"a"}))
    assert np.array_equal(same, parts.value)


def test_without_boost_or_decay_the_ordering_value_is_the_cosine():
    catalog = catalog_of(3)
    base = np.array([0.3, -0.2])
    s = RankSettings(taxonomy_boost=0.0, half_life_days=None)
    parts = scoring.order_parts(catalog, np.array([1, 2]), base, s, START, frozenset({"x"}))
    assert np.array_equal(parts.value, base) and not parts.boost.any()
    assert np.array_equal(parts.decay, [1.0, 1.0])
    unknown = scoring.order_parts(
        catalog, np.array([1, 2]), base, RankSettings(), None, frozenset()
    )
    assert np.array_equal(unknown.value, base)  # no query date: no decay


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    boost=st.sampled_from([0.0, 0.3]),
    half_life=st.sampled_from([None, 5.0]),
)
def test_many_queries_at_once_give_each_querys_own_values(seed, boost, half_life):
    """The proof (recs.unchanged) asks for many queries at once: per candidate dates and
    tags give what each query alone gets."""
    overrides = {i: {"topics": [["a"], ["b"], ["a", "b"], []][i % 4]} for i in range(12)}
    catalog = catalog_of(12, overrides=overrides)
    rng = np.random.default_rng(seed)
    s = RankSettings(taxonomy_boost=boost, half_life_days=half_life)
    queries = rng.integers(0, 12, 5)
    rows = rng.integers(0, 12, 5)
    base = rng.uniform(-1, 1, 5)
    ts = catalog.published_ts[queries]
    tags = [catalog.tags[q] for q in queries]
    together = scoring.order_values(catalog, rows, base, s, ts, tags)
    alone = [
        scoring.order_values(catalog, rows[i : i + 1], base[i : i + 1], s, ts[i], tags[i])[0]
        for i in range(5)
    ]
    assert np.allclose(together, alone)


@pytest.mark.parametrize("name", scoring.ELIGIBILITY)
def test_every_setting_eligibility_depends_on_is_a_request_filter(name):
    from recs.rank_settings import REQUEST_FILTERS

    assert name in REQUEST_FILTERS  # the build-time settings never change eligibility
