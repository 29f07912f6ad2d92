"""Every article's related list: all at once, or only the lists a change can reach.

`link_all` searches all pairs in blocks and ranks each article. `link_changes` takes the
previous lists and recomputes only those a change can alter: the changed articles' own,
every list whose candidates a new or old version of a changed article reaches (cosine at
or above that list's `floor`), and every list that pins or excludes a changed URL. The
rest are carried over. Both paths rank with the same function on the same float64 scores,
so they produce identical lists (tests/test_related.py checks it).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from recs.articles import Article, input_fields
from recs.catalog import Catalog, Query
from recs.engine import LOCAL, Engine
from recs.index import VectorIndex
from recs.options import IndexSettings
from recs.progress import Progress, no_progress
from recs.rank import POOL_GROWTH, SEARCH_MARGIN, rank
from recs.rank_settings import RankSettings
from recs.ranked import Basis, Item, Ranked
from recs.scoring import date_waits
from recs.unchanged import settled, still

# Cosines are compared with floors in float32 here; the margin keeps the test conservative.
FLOOR_MARGIN = 1e-4


@dataclass
class Lists:
    """Related lists by row, with each list's floor and basis (see rank.Ranked).

    `bases` may be shorter than `related` (a store written before bases were kept): a
    missing basis is None, and that list is ranked again whenever a change reaches it.
    """

    related: list[list[Item]]
    floors: np.ndarray
    recomputed: int
    bases: list[Basis | None] = field(default_factory=list)

    def ranked(self, row: int) -> Ranked:
        basis = self.bases[row] if row < len(self.bases) else None
        return Ranked(self.related[row], float(self.floors[row]), basis)


def _rank_rows(job: CorpusJob, rows: Sequence[int], progress: Progress) -> dict[int, Ranked]:
    articles, vectors, catalog, index, settings = (
        job.articles,
        job.vectors,
        job.catalog,
        job.index,
        job.settings,
    )
    n = len(articles)
    # One search for the whole chunk, deep enough for a list that must look at a grown
    # pool once (rank.POOL_GROWTH; 16: room for blocked rows). A deeper first search costs
    # little: all-pairs top-300 of 20,000 vectors took 1.12 times top-75's time, where a
    # list needing the grown pool searched again alone: an API write whose new article
    # reached 51 lists of near-duplicates took 75 ms in those searches, 10 ms in this one.
    first_k = min(n, (settings.pool + 1 + 16) * POOL_GROWTH + SEARCH_MARGIN)
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
                return np.asarray(index.search(vectors[row : row + 1], k)[0][0], dtype=np.int64)

            query = Query.for_row(catalog, row, articles[row])
            before = job.before.get(row)
            kept = None
            if before is not None:
                kept = still(query, catalog, search, before, job.changed, settings)
            results[row] = kept or rank(query, catalog, search, settings)
        done += len(chunk)
        progress("ranking", done, len(rows))
    return results


@dataclass
class CorpusJob:
    """The ranking of some rows of one corpus: picklable, so an engine can run it anywhere."""

    articles: Sequence[Article]
    vectors: np.ndarray
    catalog: Catalog
    index: VectorIndex
    settings: RankSettings
    # Lists from before a change, by row, to keep when `rank.still` proves them unchanged;
    # `changed` are the rows of the new and changed articles.
    before: Mapping[int, Ranked] = field(default_factory=dict)
    changed: set[int] = field(default_factory=set)

    def __call__(self, rows: Sequence[int], progress: Progress = no_progress) -> dict[int, Ranked]:
        return _rank_rows(self, rows, progress)

    def share(self) -> None:
        """Build what forked workers then share instead of each building it."""
        self.catalog.prepare()
        self.index.build()


def link_all(
    articles: Sequence[Article],
    vectors: np.ndarray,
    settings: RankSettings,
    progress: Progress = no_progress,
    engine: Engine = LOCAL,
    index_settings: IndexSettings | None = None,
    *,
    now: float | None = None,
) -> Lists:
    """Rank every article against all others, judging dates at `now` (recs.catalog)."""
    catalog = Catalog.from_articles(articles, vectors, now)
    index = VectorIndex(vectors, index_settings)
    job = CorpusJob(articles, vectors, catalog, index, settings)
    ranked = engine.rank(job, range(len(articles)), progress)
    return _lists(ranked, len(articles), len(articles))


def _lists(ranked: dict[int, Ranked], n: int, recomputed: int) -> Lists:
    related = [ranked[row].items for row in range(n)]
    floors = np.array([ranked[row].floor for row in range(n)], dtype=np.float64)
    bases = [ranked[row].basis for row in range(n)]
    return Lists(related=related, floors=floors, recomputed=recomputed, bases=bases)


def _carried_over(old: Lists, ranked: Mapping[int, Ranked], n: int, recomputed: int) -> Lists:
    """The old lists, rows beyond them added, with the lists of `ranked` put in: for
    articles that all kept their rows. Copies of the three columns, without an object per
    list (an API write to a 20,000-article store would make 20,000 of them)."""
    added = n - len(old.related)
    related = [*old.related, *([] for _ in range(added))]
    floors = np.concatenate([old.floors, np.full(added, -np.inf)])
    bases = [*old.bases, *([None] * (n - len(old.bases)))]
    for row, list_ in ranked.items():
        related[row], floors[row], bases[row] = list_.items, list_.floor, list_.basis
    return Lists(related=related, floors=floors, recomputed=recomputed, bases=bases)


def _same(old: Article, new: Article) -> bool:
    """Whether nothing that can change a list, or how an entry looks, differs."""
    return old is new or (
        old.text_hash == new.text_hash
        and old.pinned == new.pinned
        and old.excluded == new.excluded
        and (old.fields == new.fields or input_fields(old.fields) == input_fields(new.fields))
    )


def rows_per_block(columns: int, mib: int = 64) -> int:
    """Rows per block so that a float32 block of `columns` columns stays near `mib` MiB."""
    return max(1, (mib << 18) // max(1, columns))


def moved_vectors(old_vectors: np.ndarray, vectors: np.ndarray, before: list[int]) -> np.ndarray:
    """Whether each row's vector differs from its old one (`before`: old row, -1 if none).

    Blocks of 4 MiB; a block whose rows kept their place (no article came or went
    before it: the usual small rebuild) is compared in place, without gathering a copy.
    """
    moved = np.ones(len(vectors), dtype=bool)
    old = np.asarray(before, dtype=np.int64)
    step = rows_per_block(vectors.shape[1], mib=4)
    for start in range(0, len(vectors), step):
        stop = min(start + step, len(vectors))
        if np.array_equal(old[start:stop], np.arange(start, stop)):
            moved[start:stop] = np.any(old_vectors[start:stop] != vectors[start:stop], axis=1)
            continue
        rows = start + np.flatnonzero(old[start:stop] >= 0)
        moved[rows] = np.any(old_vectors[old[rows]] != vectors[rows], axis=1)
    return moved


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
    *,
    changed: Collection[str] | None = None,
    catalog: Catalog | None = None,
    old_catalog: Catalog | None = None,
    now: float | None = None,
    old_now: float | None = None,
    overwritten: Mapping[int, np.ndarray] | None = None,
) -> Lists:
    """The lists of `articles`, recomputing only those the differences from old can change.

    `changed`: the URLs that differ, when the caller knows them (API writes); otherwise
    every article is compared with its old version. `overwritten`, with `changed`: the
    old vectors of rows whose `old_vectors` row the caller has overwritten since (an API
    write folded into a server's shared matrix). `catalog`, `old_catalog`: those of
    `articles` and `old_articles`, when the caller has them. Old articles that keep their
    row (rows only appended after them, or replaced in place) keep their lists as they
    are, without renumbering. Dates are
    judged at `now`; the old lists were ranked at `old_now`, and an article whose date
    made it wait then and not now (or the other way round) counts as changed.
    """
    if old_catalog is not None:
        old_row = old_catalog.row_of
    else:
        old_row = {a.url: i for i, a in enumerate(old_articles)}
    new_row = catalog.row_of if catalog is not None else {a.url: i for i, a in enumerate(articles)}
    n_old = len(old_articles)
    # Each new row's old row (-1: new). Old articles that kept their rows, as API writes
    # leave them, are told by comparing the URL lists at C speed instead of one lookup
    # per article.
    if catalog is not None and old_catalog is not None and catalog.urls[:n_old] == old_catalog.urls:
        tail = [old_row.get(url, -1) for url in catalog.urls[n_old:]]
        old_of = np.concatenate([np.arange(n_old), np.array(tail, dtype=np.int64)])
    else:
        old_of = np.array([old_row.get(a.url, -1) for a in articles], dtype=np.int64)
    overwritten = overwritten or {}
    if overwritten and changed is None:
        raise ValueError("overwritten old vectors need the changed URLs")

    def old_vector(row: int) -> np.ndarray:
        return overwritten[row] if row in overwritten else old_vectors[row]

    if changed is None:
        moved = moved_vectors(old_vectors, vectors, old_of.tolist())
        changed_urls = {
            a.url
            for row, a in enumerate(articles)
            if old_of[row] < 0 or moved[row] or not _same(old_articles[old_of[row]], a)
        }
        changed_urls.update(url for url in old_row if url not in new_row)
    else:
        changed_urls = set(changed)
    if now != old_now:
        ts = np.array([math.nan if a.published_ts is None else a.published_ts for a in articles])
        flipped = np.flatnonzero(date_waits(ts, now, settings) != date_waits(ts, old_now, settings))
        changed_urls.update(articles[row].url for row in flipped.tolist() if old_of[row] >= 0)
    fresh = sorted(new_row[url] for url in changed_urls if url in new_row)  # new or changed

    # Every old article at the row it had: its list names the same rows as before.
    same_rows = len(articles) >= n_old and np.array_equal(old_of[:n_old], np.arange(n_old))

    def carried(row: int) -> Ranked:
        """The old list of the article now at `row`, in new rows (it lists no removed one)."""
        if same_rows:
            return old_lists.ranked(row)
        old = old_lists.ranked(int(old_of[row]))
        return old.renumbered(lambda r: new_row[old_articles[r].url])

    if not changed_urls:
        return (
            _carried_over(old_lists, {}, len(articles), 0)
            if same_rows
            else _lists({row: carried(row) for row in range(len(articles))}, len(articles), 0)
        )
    if catalog is None:
        catalog = Catalog.from_articles(articles, vectors, now)
    excluded_most = max((len(catalog.references[row]) for row in catalog.curated), default=0)
    if min(len(old_articles), len(articles)) <= settings.pool + excluded_most + 1:
        # A list may have looked at every article; whether it did depends on the corpus
        # size, so in a corpus this small recompute everything (it is cheap).
        return link_all(articles, vectors, settings, progress, engine, index_settings, now=now)
    if any((u in new_row) != (u in old_row) for u in changed_urls & set(settings.exclude_url)):
        # An excluded URL that came or went changes how many candidates every list takes.
        return link_all(articles, vectors, settings, progress, engine, index_settings, now=now)

    index = VectorIndex(vectors, index_settings)

    # Old floors in new row order (rows of new articles are in `fresh` already).
    floors = np.where(old_of >= 0, np.asarray(old_lists.floors)[np.maximum(old_of, 0)], np.inf)
    edited = sorted(u for u in changed_urls if u in new_row and u in old_row)
    others = [u for u in changed_urls if u not in new_row or u not in old_row]

    def reaching(*groups: list[np.ndarray]) -> list[np.ndarray]:
        """For each group of probes, the lists with a cosine to one of them at or above
        their floor: one pass over the vectors for all groups."""
        found = [np.zeros(len(articles), dtype=bool) for _ in groups]
        probes = [probe for group in groups for probe in group]
        if not probes:
            return found
        matrix = np.asarray(probes, dtype=np.float32).T
        ends = np.cumsum([len(group) for group in groups])
        step = rows_per_block(len(probes))  # bounded memory: 1M lists x 20k probes would be 80 GB
        for start in range(0, len(articles), step):
            sims = vectors[start : start + step] @ matrix
            # A -inf floor: that list looked at every article, so any change reaches it.
            bar = floors[start : start + step] - FLOOR_MARGIN
            for mask, end, size in zip(found, ends, map(len, groups), strict=True):
                if size:
                    mask[start : start + step] = sims[:, end - size : end].max(axis=1) >= bar
        return found

    # Every changed article, before and after, and lists an added or removed one reaches.
    by_others, by_edits = reaching(
        [vectors[new_row[u]] for u in others if u in new_row]
        + [old_vector(old_row[u]) for u in others if u in old_row],
        [vectors[new_row[u]] for u in edited] + [old_vector(old_row[u]) for u in edited],
    )
    reach = by_others | by_edits
    affected = set(fresh)
    affected.update(
        row for row in catalog.curated if changed_urls.intersection(catalog.references[row])
    )

    # A reached list is old_of when its basis proves it unchanged: all at once here for lists
    # only edits reach (rank.settled), else against its new candidate pool in the ranking
    # job (rank.still); the rest, and the rows of new and changed articles, are ranked.
    reached = set(np.flatnonzero(reach).tolist()) - affected
    previous: dict[int, Ranked] = {}
    for row in reached:
        was = old_lists.ranked(old_row[articles[row].url])
        # A list without a basis, or resting on a removed article, is ranked again.
        if was.basis is None:
            continue
        if all(old_articles[r].url in new_row for r in was.named()):
            previous[row] = carried(row)
    kept: dict[int, Ranked] = {}
    candidates = [row for row in sorted(previous) if not by_others[row]]
    edited_rows = [new_row[u] for u in edited]
    edited_before = np.array([old_vector(old_row[u]) for u in edited], dtype=np.float32).reshape(
        len(edited), vectors.shape[1]
    )
    step = rows_per_block(len(edited))
    for start in range(0, len(candidates) if edited else 0, step):
        chunk = candidates[start : start + step]
        proved = settled(
            catalog, chunk, [previous[row] for row in chunk], edited_rows, edited_before, settings
        )
        kept.update((row, previous.pop(row)) for row, ok in zip(chunk, proved, strict=True) if ok)
    affected |= reached - kept.keys()
    job = CorpusJob(articles, vectors, catalog, index, settings, previous, set(fresh))
    ranked = engine.rank(job, sorted(affected), progress)
    recomputed = len(affected) - sum(r.kept for r in ranked.values())
    ranked.update((row, list_) for row, list_ in kept.items() if row not in ranked)
    if same_rows:
        return _carried_over(old_lists, ranked, len(articles), recomputed)
    for row in range(len(articles)):
        if row not in ranked:
            ranked[row] = carried(row)
    return _lists(ranked, len(articles), recomputed)
