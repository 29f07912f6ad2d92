"""The write journal: appending, reading, clearing, and folding writes into a generation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recs.articles import alias_map
from recs.encoder import normalise
from recs.generation import Snapshot
from recs.journal import Change, fold
from recs.rank_settings import RankSettings
from recs.related import link_all
from tests.test_rank import make_articles
from tests.test_related import clustered_vectors


def snapshot_of(articles, vectors, rank: RankSettings) -> Snapshot:
    lists = link_all(articles, vectors, rank)
    return Snapshot(
        "fake-model",
        vectors.shape[1],
        rank,
        list(articles),
        vectors,
        lists.related,
        lists.floors,
        alias_map(articles),
        lists.bases,
        generation="gen-000001",
    )


def by_url(snapshot: Snapshot) -> dict[str, tuple[list[tuple[str, float]], float]]:
    """Each article's list by URLs, with its floor: what a reader sees, whatever the rows."""
    urls = [a.url for a in snapshot.articles]
    return {
        urls[row]: ([(urls[r], s) for r, s in snapshot.related[row]], float(snapshot.floors[row]))
        for row in range(len(urls))
    }


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(30, 150),
    seed=st.integers(0, 10_000),
    writes=st.lists(st.sampled_from(["new", "replace", "same", "delete"]), min_size=1, max_size=6),
    limit=st.integers(1, 5),
    pool=st.integers(4, 25),
)
def test_folded_writes_give_the_lists_of_a_full_build(n, seed, writes, limit, pool):
    """Writes folded in (rows kept, appended, or renumbered by a deletion) leave every list
    as ranking all articles again gives it."""
    rank = RankSettings(limit=limit, pool=pool)
    rng = np.random.default_rng(seed)
    articles = make_articles(n)
    vectors = clustered_vectors(n, seed)
    before = snapshot_of(articles, vectors, rank)
    current = {a.url: (a, vectors[i]) for i, a in enumerate(articles)}
    changes = []
    for number, kind in enumerate(writes, start=1):
        urls = sorted(current)
        if kind == "new":
            template = articles[0]
            url = f"https://a.com/api-{number}"
            fields = {**template.fields, "webUrl": url, "title": f"Written {number}"}
            article = replace(template, url=url, title=fields["title"], fields=fields)
        elif kind == "delete" and len(current) > 3:
            url = urls[int(rng.integers(0, len(urls)))]
            del current[url]
            changes.append(Change(number, "delete", url))
            continue
        else:
            url = urls[int(rng.integers(0, len(urls)))]
            article = current[url][0]
            if kind == "replace":
                article = replace(article, excerpt=article.excerpt + f" take {number}")
        vector = normalise(rng.normal(size=(1, vectors.shape[1])))[0].astype(np.float32)
        if kind == "same":
            vector = current[url][1]
        current[url] = (article, vector)
        changes.append(Change(number, "upsert", url, article, vector))
    folded = fold(before, changes)
    urls = sorted(current)
    full = snapshot_of([current[u][0] for u in urls], np.array([current[u][1] for u in urls]), rank)
    assert by_url(folded) == by_url(full)
    assert folded.revision == len(writes) and folded.generation == before.generation
    assert folded.catalog.urls == [a.url for a in folded.articles]
