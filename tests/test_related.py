"""All lists at once vs only the lists a change can reach: always identical."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recs.encoder import normalise
from recs.rank import RankSettings
from recs.related import link_all, link_changes
from tests.test_rank import make_articles


def clustered_vectors(n: int, seed: int, dim: int = 24) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, dim))
    return normalise(centres[rng.integers(0, 6, n)] + 0.6 * rng.normal(size=(n, dim)))


def apply_edits(articles, vectors, seed, edits):
    """Change, add and remove a few articles; return the new corpus."""
    rng = np.random.default_rng(seed)
    articles = list(articles)
    vectors = vectors.copy()
    for _ in range(edits):
        kind = rng.integers(0, 3)
        if kind == 0 and len(articles) > 2:  # edit text -> new vector
            i = int(rng.integers(0, len(articles)))
            articles[i] = replace(articles[i], excerpt=articles[i].excerpt + " edited")
            vectors[i] = normalise(rng.normal(size=(1, vectors.shape[1])))[0]
        elif kind == 1:  # add
            number = 1000 + int(rng.integers(0, 10**6))
            template = make_articles(1)[0]
            url = f"https://a.com/new-{number}"
            fields = {**template.fields, "webUrl": url, "title": f"New {number}"}
            articles.append(replace(template, url=url, title=fields["title"], fields=fields))
            vectors = np.vstack([vectors, normalise(rng.normal(size=(1, vectors.shape[1])))])
        elif len(articles) > 2:  # remove
            i = int(rng.integers(0, len(articles)))
            del articles[i]
            vectors = np.delete(vectors, i, axis=0)
    order = sorted(range(len(articles)), key=lambda i: articles[i].url)
    return [articles[i] for i in order], vectors[order]


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(5, 120),
    seed=st.integers(0, 1000),
    edits=st.integers(1, 4),
    limit=st.integers(1, 6),
    pool=st.integers(3, 20),
)
def test_incremental_equals_full(n, seed, edits, limit, pool):
    rank_settings = RankSettings(limit=limit, pool=pool)
    articles = make_articles(n)
    vectors = clustered_vectors(n, seed)
    before = link_all(articles, vectors, rank_settings)
    new_articles, new_vectors = apply_edits(articles, vectors, seed, edits)
    full = link_all(new_articles, new_vectors, rank_settings)
    incremental = link_changes(articles, vectors, before, new_articles, new_vectors, rank_settings)
    assert incremental.related == full.related
    assert np.array_equal(incremental.floors, full.floors)


def test_one_change_recomputes_few_lists_in_a_large_corpus():
    n = 2000
    rank_settings = RankSettings(limit=5, pool=20)
    articles = make_articles(n)
    vectors = clustered_vectors(n, 7, dim=48)
    before = link_all(articles, vectors, rank_settings)
    changed = vectors.copy()
    changed[17] = normalise(np.random.default_rng(1).normal(size=(1, 48)))[0]
    edited = list(articles)
    edited[17] = replace(articles[17], excerpt="new text")
    result = link_changes(articles, vectors, before, edited, changed, rank_settings)
    assert result.related == link_all(edited, changed, rank_settings).related
    assert 1 <= result.recomputed < n // 10


def test_nothing_changed_recomputes_nothing():
    articles = make_articles(50)
    vectors = clustered_vectors(50, 3)
    before = link_all(articles, vectors, RankSettings())
    again = link_changes(articles, vectors, before, articles, vectors, RankSettings())
    assert again.recomputed == 0
    assert again.related == before.related


def test_pin_to_a_changed_article_is_recomputed():
    articles = make_articles(300)
    articles[0] = replace(articles[0], pinned=("https://a.com/299",))
    vectors = clustered_vectors(300, 5)
    settings_ = RankSettings(pool=10)
    before = link_all(articles, vectors, settings_)
    assert before.related[0][0][0] == 299
    removed = articles[:299]
    result = link_changes(articles, vectors, before, removed, vectors[:299], settings_)
    assert result.related == link_all(removed, vectors[:299], settings_).related
    assert all(r != 299 for r, _ in result.related[0])
