"""From nearest neighbours to a related list: filters, de-duplication, diversity, fallback.

Pure functions over a `Catalog` (what ranking knows of every stored article) and a
`Query` (the article asking). The cosine of two articles is their `score`; ranking may
order by an adjusted value (taxonomy boost, freshness), but the score it reports is always
the cosine. Every option is a field of `RankSettings`; docs/ranking.md describes them.

The steps, for one article:
1. Candidates: the `pool` nearest stored articles (more are fetched when too few survive).
2. Never the article itself, nor anything sharing one of its URLs (webUrl or originalUrl),
   nor an excluded URL.
3. Hard filters: type, minimum quality, published only, providers, since/until. These are
   what the caller asked for and are never relaxed.
4. Near-duplicates of the article itself (cosine >= `dedup_threshold`, or the same
   normalised title) are dropped: the same story is not "related", it is the story.
5. Order: the cosine, or with `expand_neighbours` the score against the query moved towards
   its nearest neighbours; plus the taxonomy boost; times the freshness decay.
6. Greedy selection in that order (MMR when `mmr_lambda` < 1), skipping a candidate that
   duplicates an item already in the list (pins included). Then, within each item's
   duplicate group, the member shown is the one `dedup_keep` prefers: "earliest"
   published (the original report) or best "quality".
7. Soft constraints (date window, no newer articles, per-provider cap) apply first; when
   they leave fewer than `limit` items, the fallback ladder drops the provider cap, then the
   date constraints, so an article with enough eligible candidates always gets `limit` items.
8. Pinned URLs come first, in their order, and count towards `limit`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from recs.catalog import Catalog, Query
from recs.index import exact_scores
from recs.progress import Progress
from recs.rank_settings import RankSettings
from recs.scoring import blocked_rows, by_score, duplicates_query, moved_query, own_rows
from recs.select import select_items


@dataclass(frozen=True)
class Basis:
    """What a plainly filled list rested on: enough to prove that a change leaves it alone.

    Kept for a list filled on the first search, at the strictest ladder step, greedily
    (no MMR), without pins and without a duplicate-group swap: with the default settings,
    nearly every list. See `still`.
    """

    neighbours: tuple[int, ...]  # the rows the query was moved towards (expand_neighbours)
    bar: float  # the ordering value (adjusted score) of the last item chosen


@dataclass(frozen=True)
class Ranked:
    """A related list (row, cosine) and the lowest cosine of the candidates it looked at.

    `floor` is what incremental updates need: an article whose cosine with this one is
    below the floor cannot change this list. -inf means every article was looked at.
    `basis`, when known, lets an update prove the list unchanged without ranking it again.
    """

    items: list[tuple[int, float]]
    floor: float
    basis: Basis | None = None
    kept: bool = False  # proved unchanged by `still` rather than ranked again


Search = Callable[[int], np.ndarray]  # k -> up to k candidate rows, best first (may hold -1)

# (rows, progress) -> their related lists; see related.RankJob. Picklable for remote engines.
RankJob = Callable[[Sequence[int], Progress], dict[int, "Ranked"]]

SEARCH_MARGIN = 8


def rank(query: Query, catalog: Catalog, search: Search, settings: RankSettings) -> Ranked:
    """The related list of `query`: at most `settings.limit` (row, cosine) pairs."""
    n = len(catalog)
    limit = settings.limit
    pinned_rows = _pinned_rows(query, catalog, limit)
    pinned: list[tuple[int, float]] = []
    if pinned_rows:
        pinned_scores = exact_scores(catalog.vectors, query.vector, pinned_rows)
        pinned = [(r, round(float(s), 6)) for r, s in zip(pinned_rows, pinned_scores, strict=True)]
    if len(pinned) >= limit:
        return Ranked(pinned, math.inf)  # pins fill the list: similarity cannot change it
    if n == 0:
        return Ranked([], -math.inf)
    blocked = blocked_rows(query, catalog, settings)
    blocked.update(pinned_rows)
    want = limit - len(pinned_rows)
    k = min(n, settings.pool + len(blocked) + 1)
    searches = 0
    while True:
        rows, cosines = candidate_pool(query, catalog, search, k)
        everything = k >= n
        base, neighbours = _expanded(query, catalog, rows, cosines, settings)
        chosen, bar = select_items(
            query, catalog, rows, cosines, base, blocked, pinned_rows, settings, want
        )
        searches += 1
        if len(chosen) >= want or everything:
            break
        k = min(n, k * 4)
    floor = -math.inf if everything or not len(cosines) else float(cosines[-1])
    basis = None
    if bar is not None and searches == 1 and not everything and not pinned_rows:
        basis = Basis(tuple(neighbours), bar)
    return Ranked(pinned + chosen, floor, basis)


def candidate_pool(
    query: Query, catalog: Catalog, search: Search, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows by exact cosine (equal cosines in URL order), and their cosines."""
    rows = search(min(len(catalog), k + SEARCH_MARGIN))
    rows = np.unique(rows[rows >= 0])
    cosines = exact_scores(catalog.vectors, query.vector, rows)
    order = by_score(catalog, rows, cosines)[:k]
    return rows[order], cosines[order]


def _pinned_rows(query: Query, catalog: Catalog, limit: int) -> list[int]:
    rows: list[int] = []
    for url in query.pinned:
        row = catalog.row_of.get(url)
        if row is not None and url != query.url and row not in rows and url not in query.excluded:
            rows.append(row)
    return rows[:limit]


def _expanded(
    query: Query, catalog: Catalog, rows: np.ndarray, cosines: np.ndarray, s: RankSettings
) -> tuple[np.ndarray, list[int]]:
    """Candidates' scores against the query moved towards its nearest neighbours, and those.

    With `expand_neighbours` = m > 0 the query vector plus `expand_weight` times the mean
    of its m nearest other articles (near-duplicates of it left out: they add nothing) is
    normalised and scored against every candidate: the neighbourhood says what the article
    is about better than one short text does. The neighbours are the nearest candidates,
    so a list still depends only on articles whose cosine is at or above its floor.
    """
    neighbours = query_neighbours(query, catalog, rows, cosines, s)
    if not neighbours:
        return cosines, []
    return exact_scores(
        catalog.vectors, moved_query(query.vector, catalog, neighbours, s), rows
    ), neighbours


def query_neighbours(
    query: Query, catalog: Catalog, rows: np.ndarray, cosines: np.ndarray, s: RankSettings
) -> list[int]:
    """The first `expand_neighbours` candidates that are neither the query nor a duplicate."""
    neighbours: list[int] = []
    if not s.expand_neighbours:
        return neighbours
    own = own_rows(query, catalog)
    for row, cosine in zip(rows.tolist(), cosines.tolist(), strict=True):
        if row in own or duplicates_query(row, float(cosine), query, catalog, s):
            continue
        neighbours.append(row)
        if len(neighbours) == s.expand_neighbours:
            break
    return neighbours
