"""Every article's related list: all at once, or only the lists a change can reach.

`link_all` searches all pairs in blocks and ranks each article. `link_changes` takes the
previous lists and recomputes only those a change can alter: the changed articles' own,
every list whose candidates a new or old version of a changed article reaches (cosine at
or above that list's `floor`), and every list that pins or excludes a changed URL. The
rest are carried over. Both paths rank with the same function on the same float64 scores,
so they produce identical lists (tests/test_related.py checks it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recs.articles import Article
from recs.encoder import Progress, no_progress
from recs.engine import LOCAL, Engine
from recs.index import IndexSettings, VectorIndex
from recs.rank import SEARCH_MARGIN, Catalog, Query, Ranked, RankSettings, rank

# Cosines are compared with floors in float32 here; the margin keeps the test conservative.
FLOOR_MARGIN = 1e-4
# Front-matter keys that hold recs' own output (an article's related list): never an input.
OUTPUT_KEYS = frozenset({"related"})


def input_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """An article's fields less its own related list, which cannot change any list."""
    return {k: v for k, v in fields.items() if k not in OUTPUT_KEYS}


@dataclass
class Lists:
    """Related lists by row, with each list's floor (see rank.Ranked)."""

    related: list[list[tuple[int, float]]]
    floors: np.ndarray
    recomputed: int


def _rank_rows(
    rows: Sequence[int],
    articles: Sequence[Article],
    vectors: np.ndarray,
    catalog: Catalog,
    index: VectorIndex,
    settings: RankSettings,
    progress: Progress,
) -> dict[int, Ranked]:
    n = len(articles)
    first_k = min(n, settings.pool + 1 + SEARCH_MARGIN + 16)
    results: dict[int, Ranked] = {}
    rows = list(rows)
    block = 2048
    done = 0
    progress("ranking", 0, len(rows))
    for start in range(0, len(rows), block):
        chunk = rows[start : start + block]
        found, _ = index.search(vectors[chunk], first_k)
        for position, row in enumerate(chunk):
            cached = found[position]

            def search(k: int, row: int = row, cached: np.ndarray = cached) -> np.ndarray:
                if k <= len(cached):
                    return cached[:k]
                return index.search(vectors[row : row + 1], k)[0][0]

            query = Query.for_article(articles[row], vectors[row], catalog.title_keys[row])
            results[row] = rank(query, catalog, search, settings)
        done += len(chunk)
        progress("ranking", done, len(rows))
    return results


@dataclass
class RankJob:
    """The ranking of some rows of one corpus: picklable, so an engine can run it anywhere."""

    articles: Sequence[Article]
    vectors: np.ndarray
    catalog: Catalog
    index: VectorIndex
    settings: RankSettings

    def __call__(self, rows: Sequence[int], progress: Progress = no_progress) -> dict[int, Ranked]:
        return _rank_rows(
            rows, self.articles, self.vectors, self.catalog, self.index, self.settings, progress
        )


def link_all(
    articles: Sequence[Article],
    vectors: np.ndarray,
    settings: RankSettings,
    progress: Progress = no_progress,
    engine: Engine = LOCAL,
    index_settings: IndexSettings | None = None,
) -> Lists:
    """Rank every article against all others."""
    catalog = Catalog.from_articles(articles, vectors)
    index = VectorIndex(vectors, index_settings)
    job = RankJob(articles, vectors, catalog, index, settings)
    ranked = engine.rank(job, range(len(articles)), progress)
    return _lists(ranked, len(articles), len(articles))


def _lists(ranked: dict[int, Ranked], n: int, recomputed: int) -> Lists:
    related = [ranked[row].items for row in range(n)]
    floors = np.array([ranked[row].floor for row in range(n)], dtype=np.float64)
    return Lists(related=related, floors=floors, recomputed=recomputed)


def _same(old: Article, new: Article) -> bool:
    """Whether nothing that can change a list, or how an entry looks, differs."""
    return old is new or (
        old.text_hash == new.text_hash
        and old.pinned == new.pinned
        and old.excluded == new.excluded
        and input_fields(old.fields) == input_fields(new.fields)
    )


def link_changes(
    old_articles: Sequence[Article],
    old_vectors: np.ndarray,
    old_lists: Lists,
    articles: Sequence[Article],
    vectors: np.ndarray,
    settings: RankSettings,
    progress: Progress = no_progress,
    engine: Engine = LOCAL,
    index_settings: IndexSettings | None = None,
) -> Lists:
    """The lists of `articles`, recomputing only those the differences from old can change."""
    old_row = {a.url: i for i, a in enumerate(old_articles)}
    new_row = {a.url: i for i, a in enumerate(articles)}
    changed_urls: set[str] = set()
    fresh: list[int] = []  # rows whose own article is new or changed
    for row, article in enumerate(articles):
        before = old_row.get(article.url)
        if (
            before is None
            or not _same(old_articles[before], article)
            or not np.array_equal(old_vectors[before], vectors[row])
        ):
            changed_urls.add(article.url)
            fresh.append(row)
    removed = [url for url in old_row if url not in new_row]
    changed_urls.update(removed)

    if not changed_urls:
        related = [
            [(new_row[old_articles[r].url], s) for r, s in old_lists.related[old_row[a.url]]]
            for a in articles
        ]
        floors = np.array([old_lists.floors[old_row[a.url]] for a in articles], dtype=np.float64)
        return Lists(related=related, floors=floors, recomputed=0)
    excluded_most = max((len(a.excluded) + len(a.pinned) for a in articles), default=0)
    if min(len(old_articles), len(articles)) <= settings.pool + excluded_most + 1:
        # A list may have looked at every article; whether it did depends on the corpus
        # size, so in a corpus this small recompute everything (it is cheap).
        return link_all(articles, vectors, settings, progress, engine, index_settings)

    catalog = Catalog.from_articles(articles, vectors)
    index = VectorIndex(vectors, index_settings)

    # Vectors of every changed article, before and after.
    probes = [vectors[new_row[u]] for u in changed_urls if u in new_row]
    probes += [old_vectors[old_row[u]] for u in changed_urls if u in old_row]
    probe_matrix = np.asarray(probes, dtype=np.float32)
    affected = set(fresh)
    # Old floors in new row order (rows of new articles are in `fresh` already).
    floors = np.array(
        [old_lists.floors[old_row[a.url]] if a.url in old_row else np.inf for a in articles]
    )
    # A -inf floor: that list looked at every article, so any change can reach it.
    reached = np.max(vectors @ probe_matrix.T, axis=1) >= floors - FLOOR_MARGIN
    affected.update(int(row) for row in np.flatnonzero(reached))
    for row, article in enumerate(articles):
        if (article.pinned or article.excluded) and (
            changed_urls.intersection(article.pinned) or changed_urls.intersection(article.excluded)
        ):
            affected.add(row)

    job = RankJob(articles, vectors, catalog, index, settings)
    ranked = engine.rank(job, sorted(affected), progress)
    for row, article in enumerate(articles):
        if row not in ranked:
            before = old_row[article.url]
            items = [(new_row[old_articles[r].url], s) for r, s in old_lists.related[before]]
            ranked[row] = Ranked(items, float(old_lists.floors[before]))
    return _lists(ranked, len(articles), len(affected))
