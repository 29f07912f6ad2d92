"""Ranking: invariants (Hypothesis) and each option's documented behaviour."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recs.articles import Article
from recs.catalog import Catalog, Query, title_key
from recs.encoder import normalise
from recs.index import VectorIndex
from recs.rank import rank
from recs.rank_settings import RankSettings

DAY = 86_400.0


def make_articles(
    n: int, providers: int = 3, overrides: dict[int, dict] | None = None
) -> list[Article]:
    articles = []
    for i in range(n):
        fields = {
            "title": f"Title {i}",
            "excerpt": f"Excerpt {i}",
            "webUrl": f"https://a.com/{i:03d}",
            "provider": {"name": f"P{i % providers}", "domain": "a.com"},
            "quality": i,
            "type": "article" if i % 4 else "video",
            "published": bool(i % 5),
        }
        fields.update((overrides or {}).get(i, {}))
        articles.append(
            Article(
                url=fields["webUrl"],
                title=fields["title"],
                excerpt=fields["excerpt"],
                fields=fields,
                source=f"{i}.md",
                published_ts=1_600_000_000.0 + i * DAY,
            )
        )
    return articles


# The rules most tests here are not about: no relevance floor (their vectors are made up,
# their cosines small) and drafts listed (make_articles marks every fifth one).
OTHER_RULES_OFF = {"min_similarity": None, "include_drafts": True}


def ranked(articles, vectors, row, now=None, **options):
    catalog = Catalog.from_articles(articles, vectors, now)
    index = VectorIndex(vectors)
    query = Query.for_article(articles[row], vectors[row])
    settings = RankSettings().with_options(**{**OTHER_RULES_OFF, **options})
    return rank(query, catalog, lambda k: index.search(vectors[row : row + 1], k)[0][0], settings)


def random_vectors(n: int, seed: int = 0, dim: int = 16) -> np.ndarray:
    return normalise(np.random.default_rng(seed).normal(size=(n, dim)))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    limit=st.integers(1, 12),
    seed=st.integers(0, 10_000),
    row=st.integers(0, 39),
    expand=st.sampled_from([0, 2]),
)
def test_never_itself_at_most_limit_and_full_when_possible(n, limit, seed, row, expand):
    row = row % n
    articles = make_articles(n)
    vectors = random_vectors(n, seed)
    result = ranked(
        articles,
        vectors,
        row,
        limit=limit,
        dedup_threshold=None,
        dedup_titles=False,
        pool=3,
        expand_neighbours=expand,
        half_life_days=None,
    )
    rows = [i.row for i in result.items]
    assert row not in rows
    assert len(rows) == len(set(rows)) == min(limit, n - 1)
    if not expand:  # plain order is by cosine; expansion orders by the moved query
        scores = [i.similarity for i in result.items]
        assert scores == sorted(scores, reverse=True)


def test_order_is_score_then_url_on_ties():
    articles = make_articles(4)
    vectors = normalise(np.array([[1, 0], [1, 0], [1, 0], [0, 1]], dtype=np.float32))
    result = ranked(articles, vectors, 0, limit=3, dedup_threshold=None, dedup_titles=False)
    assert [i.row for i in result.items] == [1, 2, 3]


def test_near_duplicates_of_the_article_itself_are_dropped():
    articles = make_articles(4)
    vectors = normalise(
        np.array([[1, 0, 0], [1, 0.01, 0], [1, 0.5, 0], [0, 0, 1]], dtype=np.float32)
    )
    result = ranked(articles, vectors, 0, limit=2)
    assert [i.row for i in result.items] == [2, 3]


def test_same_normalised_title_is_a_duplicate():
    articles = make_articles(3)
    articles[1] = replace(articles[1], title="TITLE   0!")
    vectors = normalise(np.array([[1, 0], [0.6, 0.8], [0.5, -0.86]], dtype=np.float32))
    assert title_key("TITLE   0!") == title_key("Title 0")
    assert [i.row for i in ranked(articles, vectors, 0, limit=2).items] == [2]
    assert [i.row for i in ranked(articles, vectors, 0, limit=2, dedup_titles=False).items] == [
        1,
        2,
    ]


def test_duplicates_among_chosen_collapse_keeping_the_earliest():
    articles = make_articles(5)
    # 1 and 2 are the same story (cosine ~0.9999); 2 was published earlier.
    articles[2] = replace(articles[2], published_ts=1_000.0)
    vectors = normalise(
        np.array(
            [[1, 0, 0], [0.8, 0.6, 0], [0.8, 0.6001, 0], [0.5, 0, 0.86], [0, 0, 1]],
            dtype=np.float32,
        )
    )
    rows = [i.row for i in ranked(articles, vectors, 0, limit=3).items]
    assert 1 not in rows and rows[0] == 2
    assert rows == [2, 3, 4]
    rows_quality = [
        i.row for i in ranked(articles, vectors, 0, limit=3, dedup_keep="quality").items
    ]
    assert rows_quality[0] == 2  # quality 2 > quality 1


def test_hard_filters():
    articles = make_articles(20)
    vectors = random_vectors(20, 1)
    result = ranked(
        articles,
        vectors,
        0,
        limit=10,
        min_quality=5,
        type=("article",),
        include_drafts=False,
        exclude_provider=("p1",),
    )
    for row in (i.row for i in result.items):
        a = articles[row].fields
        assert (
            a["quality"] >= 5
            and a["type"] == "article"
            and a["published"]
            and a["provider"]["name"] != "P1"
        )
    required = ranked(articles, vectors, 0, limit=10, provider=("P2",))
    assert {articles[i.row].fields["provider"]["name"] for i in required.items} == {"P2"}
    since = 1_600_000_000.0 + 5 * DAY
    windowed = ranked(articles, vectors, 0, limit=10, since=since, until=since + 3 * DAY)
    assert sorted(i.row for i in windowed.items) == [5, 6, 7, 8]


def test_excluded_urls_and_pins():
    articles = make_articles(10)
    articles[0] = replace(
        articles[0],
        pinned=("https://a.com/009", "https://a.com/unknown"),
        excluded=("https://a.com/001",),
    )
    vectors = normalise(np.array([[1.0, i / 10] for i in range(10)], dtype=np.float32))
    rows = [i.row for i in ranked(articles, vectors, 0, limit=3, dedup_threshold=None).items]
    assert rows[0] == 9
    assert 1 not in rows and len(rows) == 3


def test_provider_cap_and_fallback_ladder():
    articles = make_articles(10, providers=1)
    vectors = random_vectors(10, 2)
    capped = ranked(articles, vectors, 0, limit=4, provider_cap=2, dedup_threshold=None)
    # One provider only: the cap cannot be met, the ladder drops it, the list is still full.
    assert len(capped.items) == 4
    articles = make_articles(12, providers=3)
    capped = ranked(
        articles, vectors := random_vectors(12, 3), 0, limit=4, provider_cap=1, dedup_threshold=None
    )
    providers = [articles[i.row].fields["provider"]["name"] for i in capped.items]
    assert len(set(providers[:3])) == 3  # one per provider first...
    assert len(capped.items) == 4  # ...then the ladder drops the cap to fill the 4th


def test_window_and_no_newer():
    articles = make_articles(20)
    vectors = random_vectors(20, 4)
    result = ranked(
        articles, vectors, 10, limit=3, window_days=2.5, allow_newer=False, dedup_threshold=None
    )
    # Only 8 and 9 fit the window without being newer; they come first, the ladder fills the third.
    assert sorted(i.row for i in result.items[:2]) == [8, 9]
    assert len(result.items) == 3


def test_mmr_trades_relevance_for_diversity():
    articles = make_articles(5)
    vectors = normalise(
        np.array(
            [[1, 0, 0], [0.9, 0.43, 0], [0.89, 0.45, 0.05], [0.8, 0, 0.6], [0, 1, 0]],
            dtype=np.float32,
        )
    )
    plain = [i.row for i in ranked(articles, vectors, 0, limit=2, dedup_threshold=None).items]
    diverse = [
        i.row
        for i in ranked(articles, vectors, 0, limit=2, dedup_threshold=None, mmr_lambda=0.5).items
    ]
    assert plain == [1, 2]
    assert diverse == [1, 3]


def test_taxonomy_boost_reorders_but_score_stays_cosine():
    articles = make_articles(3)
    articles[2] = replace(articles[2], fields={**articles[2].fields, "topics": ["AI"]})
    articles[0] = replace(articles[0], fields={**articles[0].fields, "topics": ["AI"]})
    vectors = normalise(np.array([[1, 0], [0.9, 0.43], [0.88, 0.47]], dtype=np.float32))
    boosted = ranked(articles, vectors, 0, limit=2, dedup_threshold=None, taxonomy_boost=0.1).items
    assert [i.row for i in boosted] == [2, 1]
    assert boosted[0].similarity == pytest.approx(float(vectors[0] @ vectors[2]), abs=1e-6)


def test_freshness_decay_prefers_close_dates():
    articles = make_articles(3)
    articles[1] = replace(articles[1], published_ts=articles[0].published_ts + 400 * DAY)
    vectors = normalise(np.array([[1, 0], [0.9, 0.43], [0.88, 0.47]], dtype=np.float32))
    assert [
        i.row
        for i in ranked(
            articles, vectors, 0, limit=2, dedup_threshold=None, half_life_days=30
        ).items
    ] == [2, 1]


def test_floor_is_minus_infinity_when_everything_was_seen():
    articles = make_articles(5)
    vectors = random_vectors(5)
    assert ranked(articles, vectors, 0, limit=2).floor == -math.inf
    big = make_articles(200)
    floor = ranked(big, random_vectors(200), 0, limit=2, pool=10).floor
    assert -1.0 <= floor <= 1.0


def test_an_article_sharing_the_query_url_as_original_url_is_never_recommended():
    articles = make_articles(4)
    articles[2] = Article(**{**articles[2].__dict__, "original_url": articles[0].url})
    articles[3] = Article(**{**articles[3].__dict__, "original_url": "https://b.com/zero"})
    articles[0] = Article(**{**articles[0].__dict__, "original_url": "https://b.com/zero"})
    vectors = random_vectors(4, 5)
    rows = [i.row for i in ranked(articles, vectors, 0, limit=3, dedup_threshold=None).items]
    assert rows == [1]


# 4 is the same story as 1 (cosine 0.956) but ranks below 2 and 3 (cosines with 0:
# 1 0.906, 2 0.800, 3 0.780, 4 0.743), so it is only seen once a list of 3 is full.
SAME_STORY = normalise(
    np.array(
        [
            [1.0, 0.0, 0.0],
            [0.9063, 0.4226, 0.0],
            [0.8, 0.0, 0.6],
            [0.78, 0.0, -0.6257],
            [0.7431, 0.6691, 0.0],
            [0.0, 1.0, 0.0],
        ],
        dtype=np.float32,
    )
)


def test_the_kept_duplicate_is_the_earliest_even_when_found_after_the_list_is_full():
    articles = make_articles(6)
    assert [i.row for i in ranked(articles, SAME_STORY, 0, limit=3).items] == [1, 2, 3]
    articles[4] = Article(**{**articles[4].__dict__, "published_ts": 1_000.0})
    result = ranked(articles, SAME_STORY, 0, limit=3).items
    assert [i.row for i in result] == [4, 2, 3]  # in 1's place, with its own cosine
    assert result[0].similarity == pytest.approx(0.743, abs=1e-3)
    # quality: 4 (quality 4) beats 1 (quality 1); with quality 0 it does not.
    assert [
        i.row for i in ranked(articles, SAME_STORY, 0, limit=3, dedup_keep="quality").items
    ] == [
        4,
        2,
        3,
    ]
    articles[4] = Article(
        **{**articles[4].__dict__, "fields": {**articles[4].fields, "quality": 0}}
    )
    assert [
        i.row for i in ranked(articles, SAME_STORY, 0, limit=3, dedup_keep="quality").items
    ] == [
        1,
        2,
        3,
    ]


def test_a_replacement_never_breaks_the_date_window():
    articles = make_articles(6)
    articles[4] = Article(**{**articles[4].__dict__, "published_ts": 1_000.0})  # far outside
    rows = [i.row for i in ranked(articles, SAME_STORY, 0, limit=3, window_days=30).items]
    assert rows == [1, 2, 3]


def test_nothing_duplicates_a_pinned_item():
    articles = make_articles(6)
    articles[0] = Article(**{**articles[0].__dict__, "pinned": ("https://a.com/004",)})
    rows = [i.row for i in ranked(articles, SAME_STORY, 0, limit=3).items]
    assert rows == [4, 2, 3]


def test_neighbour_expansion_reorders_towards_the_neighbourhood_but_scores_stay_cosine():
    articles = make_articles(5)
    # 1 and 2 are equally close to 0; 0's nearest neighbour 3 leans towards 2.
    vectors = normalise(
        np.array(
            [[1, 0, 0], [0.8, 0.6, 0], [0.8, 0, 0.6], [0.9, 0, 0.44], [0, 1, 0]],
            dtype=np.float32,
        )
    )
    plain = ranked(articles, vectors, 0, limit=3, dedup_threshold=None, expand_neighbours=0).items
    expanded = ranked(articles, vectors, 0, limit=3, dedup_threshold=None, expand_neighbours=1)
    assert [i.row for i in plain] == [3, 1, 2]
    assert [i.row for i in expanded.items] == [3, 2, 1]
    assert {i.row: i.similarity for i in expanded.items}[2] == pytest.approx(
        float(vectors[0] @ vectors[2]), abs=1e-6
    )


def test_freshness_decay_never_lifts_a_negative_score():
    articles = make_articles(3)
    # 1 is the less similar (-0.5 < -0.2) and far older: decay must not lift it above 2.
    articles[1] = Article(
        **{**articles[1].__dict__, "published_ts": articles[0].published_ts - 900 * DAY}
    )
    vectors = normalise(np.array([[1, 0], [-0.5, 0.86], [-0.2, 0.98]], dtype=np.float32))
    items = ranked(articles, vectors, 0, limit=2, dedup_threshold=None, half_life_days=1)
    assert [i.row for i in items.items] == [2, 1]


def test_a_replacement_respects_the_provider_cap_it_was_chosen_under():
    articles = make_articles(6, providers=1)  # one provider: the ladder drops the cap
    articles[4] = Article(**{**articles[4].__dict__, "published_ts": 1_000.0})
    assert [i.row for i in ranked(articles, SAME_STORY, 0, limit=3, provider_cap=1).items] == [
        4,
        2,
        3,
    ]
    articles = make_articles(6)  # 1: P1, 2: P2, 3: P0; the earlier copy 4 is from P2
    articles[4] = Article(
        **{
            **articles[4].__dict__,
            "published_ts": 1_000.0,
            "fields": {**articles[4].fields, "provider": {"name": "P2", "domain": "a.com"}},
        }
    )
    assert [i.row for i in ranked(articles, SAME_STORY, 0, limit=3, provider_cap=1).items] == [
        1,
        2,
        3,
    ]
    assert [i.row for i in ranked(articles, SAME_STORY, 0, limit=3, provider_cap=2).items] == [
        4,
        2,
        3,
    ]


# --- lists an editor trusts: the floor, drafts, filters, scores and reasons ---------------


def test_nothing_below_the_relevance_floor_is_listed_even_if_the_list_is_short():
    articles = make_articles(5)
    vectors = normalise(np.array([[1, 0], [0.9, 0.44], [0.5, 0.87], [0.1, 1.0], [-1, 0.1]]))
    cosines = vectors @ vectors[0]
    result = ranked(articles, vectors, 0, limit=4, min_similarity=0.3, expand_neighbours=0)
    assert [i.row for i in result.items] == [1, 2]  # 3 (cosine 0.1) and 4 would be filler
    assert all(i.similarity >= 0.3 for i in result.items)
    assert ranked(articles, vectors, 0, limit=4, min_similarity=None).items[-1].row == 4
    assert cosines[3] < 0.3 <= cosines[2]


def test_neighbours_below_the_floor_do_not_move_the_query():
    """The query is moved towards related articles only: an unrelated nearest article (the
    salmon recipe's football stories) cannot pull its list towards its topic."""
    articles = make_articles(4)
    vectors = normalise(np.array([[1, 0, 0], [0.5, 0.86, 0], [0.15, 0.2, 0.97], [0.05, 0.99, 0]]))
    options = {"limit": 2, "min_similarity": 0.3, "expand_neighbours": 2, "half_life_days": None}
    assert [i.row for i in ranked(articles, vectors, 0, **options).items] == [1]


@pytest.mark.parametrize(
    ("fields", "listed"), [({}, True), ({"published": False}, False), ({"draft": True}, False)]
)
def test_drafts_are_not_recommended_unless_asked(fields, listed):
    articles = make_articles(
        3, overrides={1: {"published": True, **fields}, 2: {"published": True}}
    )
    vectors = normalise(np.array([[1, 0], [0.9, 0.44], [0.8, 0.6]]))  # below duplicates
    rows = [i.row for i in ranked(articles, vectors, 0, limit=2, include_drafts=False).items]
    assert (1 in rows) is listed
    assert 1 in [i.row for i in ranked(articles, vectors, 0, limit=2, include_drafts=True).items]


def test_an_article_dated_in_the_future_waits_and_max_age_counts_back_from_now():
    articles = make_articles(4, overrides={i: {"published": True} for i in range(4)})
    vectors = normalise(np.array([[1, 0], [0.9, 0.44], [0.6, 0.8], [0.3, 0.95]]))
    now = articles[2].published_ts  # article 3 is a day later: not yet
    plain = {"limit": 3, "include_drafts": False, "half_life_days": None}
    assert [i.row for i in ranked(articles, vectors, 0, now=now, **plain).items] == [1, 2]
    assert [i.row for i in ranked(articles, vectors, 0, now=now + DAY, **plain).items] == [1, 2, 3]
    recent = ranked(articles, vectors, 0, now=now + DAY, max_age_days=1.5, **plain).items
    assert [i.row for i in recent] == [2, 3]  # 1 is 2 days old


def test_topic_and_category_filters():
    articles = make_articles(
        4,
        overrides={
            0: {"category": "Sport", "topics": ["Football"]},
            1: {"category": "sport", "topics": ["Tennis"]},
            2: {"category": "News", "topics": ["FOOTBALL", "Politics"]},
            3: {"topics": ["Politics"]},
        },
    )
    vectors = normalise(np.array([[1, 0], [0.9, 0.44], [0.6, 0.8], [0.3, 0.95]]))
    rows = lambda **f: [i.row for i in ranked(articles, vectors, 0, limit=3, **f).items]  # noqa: E731
    assert rows() == [1, 2, 3]
    assert rows(same_category=True) == [1]
    assert rows(topic=("football",)) == [2]
    assert rows(exclude_topic=("Politics",)) == [1]
    assert rows(type=("article",), exclude_type=("video",)) == [1, 2, 3]


def test_scores_never_go_up_pins_come_first_and_similarity_is_the_cosine():
    articles = make_articles(5)
    articles[0] = replace(articles[0], pinned=(articles[4].url,))
    vectors = normalise(np.array([[1, 0], [0.9, 0.44], [0.95, 0.3], [0.99, 0.1], [-1, 0.2]]))
    items = ranked(articles, vectors, 0, limit=4, dedup_threshold=None).items
    assert [i.row for i in items] == [4, 3, 2, 1]
    assert items[0].step == -1 and items[0].score >= items[1].score  # a pin shows at least...
    assert all(a.score >= b.score for a, b in itertools.pairwise(items))
    for item in items:
        assert item.similarity == pytest.approx(float(vectors[0] @ vectors[item.row]), abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), mmr=st.sampled_from([1.0, 0.5]), cap=st.sampled_from([None, 1]))
def test_scores_are_non_increasing_whatever_reorders_the_list(seed, mmr, cap):
    articles = make_articles(30)
    vectors = random_vectors(30, seed, dim=4)
    items = ranked(
        articles, vectors, 0, limit=6, mmr_lambda=mmr, provider_cap=cap, window_days=5
    ).items
    assert all(a.score >= b.score for a, b in itertools.pairwise(items))


def test_a_collapsed_duplicate_is_named_by_the_item_it_collapsed_into():
    articles = make_articles(5)
    articles[2] = replace(articles[2], published_ts=1_000.0)  # 1 and 2: one story, 2 earlier
    vectors = normalise(
        np.array([[1, 0, 0], [0.8, 0.6, 0], [0.8, 0.6001, 0], [0.5, 0, 0.86], [0, 0, 1]])
    )
    items = ranked(articles, vectors, 0, limit=3).items
    assert [(i.row, i.same_story) for i in items] == [(2, (1,)), (3, ()), (4, ())]


def test_explain_gives_the_parts_the_scores_were_made_of():
    from recs.rank import explain

    articles = make_articles(30)
    articles = [
        replace(a, fields={**a.fields, "topics": ["t"] if i % 2 else []})
        for i, a in enumerate(articles)
    ]
    vectors = random_vectors(30, 5, dim=4)
    catalog = Catalog.from_articles(articles, vectors)
    index = VectorIndex(vectors)
    query = Query.for_article(articles[1], vectors[1])
    s = RankSettings(limit=5, taxonomy_boost=0.2, half_life_days=10.0, **OTHER_RULES_OFF)
    search = lambda k: index.search(vectors[1:2], k)[0][0]  # noqa: E731
    items = rank(query, catalog, search, s).items
    parts = explain(query, catalog, search, s, items)
    for item, part in zip(items, parts, strict=True):
        assert part["cosine"] == pytest.approx(item.similarity, abs=1e-6)
        made = part["cosine"] + part["expansion"] + part["boost"]
        assert part["value"] == pytest.approx(made * part["decay"] if made > 0 else made)
        assert item.score <= round(part["value"], 6) + 1e-9  # shown scores never rise
    assert items[0].score == round(parts[0]["value"], 6)
    assert any(p["boost"] > 0 for p in parts) and any(p["decay"] < 1 for p in parts)
