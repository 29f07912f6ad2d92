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

import numpy as np

from recs.catalog import Catalog, Query
from recs.index import exact_scores
from recs.rank_settings import RankSettings
from recs.ranked import PINNED, Basis, Item, Ranked, Search
from recs.scoring import (
    blocked_rows,
    by_score,
    duplicates_query,
    moved_query,
    order_parts,
    own_rows,
)
from recs.select import select_items

SEARCH_MARGIN = 8
POOL_GROWTH = 4  # a list not filled from its pool looks again at this many times as many


def rank(query: Query, catalog: Catalog, search: Search, settings: RankSettings) -> Ranked:
    """The related list of `query`: at most `settings.limit` items, pins first."""
    n = len(catalog)
    limit = settings.limit
    pinned_rows = _pinned_rows(query, catalog, limit)
    pinned: list[Item] = []
    if pinned_rows:
        similarity = exact_scores(catalog.vectors, query.vector, pinned_rows)
        pinned = [
            Item(r, float(c), round(float(c), 6), PINNED)
            for r, c in zip(pinned_rows, similarity, strict=True)
        ]
    if len(pinned) >= limit:
        # Pins fill the list: similarity cannot change it.
        return Ranked(scored(pinned), math.inf)
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
        if len(chosen) >= want or everything or _below_floor(cosines, settings):
            break
        k = min(n, k * POOL_GROWTH)
    floor = -math.inf if everything or not len(cosines) else float(cosines[-1])
    basis = None
    if bar is not None and searches == 1 and not everything and not pinned_rows:
        basis = Basis(tuple(neighbours), bar)
    return Ranked(scored(pinned + chosen), floor, basis)


def _below_floor(cosines: np.ndarray, s: RankSettings) -> bool:
    """Whether the pool reaches below the relevance floor: a larger one (in cosine order)
    would add only candidates that can never be listed, so searching further is waste."""
    floor = s.min_similarity
    return floor is not None and len(cosines) > 0 and float(cosines[-1]) < floor


def scored(items: list[Item]) -> list[Item]:
    """Items with the scores a reader sees: never going up down the list.

    Each item keeps its ordering value unless one before it shows less (an item the
    fallback ladder, diversity or a duplicate-group swap put after a higher-valued one
    shows the value of the one before it); a pin shows at least the score of the item
    after it, since pins come first. Rounded to 6 decimals, as stored.
    """
    shown: list[float] = []
    for item in items:
        if item.step != PINNED and shown:
            shown.append(min(item.score, shown[-1]))
        else:
            shown.append(item.score)
    for place in range(len(items) - 2, -1, -1):
        if items[place].step == PINNED:
            shown[place] = max(shown[place], shown[place + 1])
    return [item._replace(score=round(score, 6)) for item, score in zip(items, shown, strict=True)]


def candidate_pool(
    query: Query, catalog: Catalog, search: Search, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows by exact cosine (equal cosines in URL order), and their cosines."""
    rows = search(min(len(catalog), k + SEARCH_MARGIN))
    rows = rows[rows >= 0]  # distinct rows (Search); by_score's order does not depend on theirs
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


def explain(
    query: Query, catalog: Catalog, search: Search, settings: RankSettings, items: list[Item]
) -> list[dict[str, float]]:
    """The parts of each item's ordering value, worked out as `rank` works them out: the
    cosine, what moving the query towards its neighbours added, the taxonomy boost, the
    decay factor, and the value (`score` then keeps the list's order: `scored`)."""
    if not items:
        return []
    blocked = blocked_rows(query, catalog, settings)
    k = min(len(catalog), settings.pool + len(blocked) + 1)
    pool_rows, pool_cosines = candidate_pool(query, catalog, search, k)
    rows = np.array([item.row for item in items], dtype=np.int64)
    cosines = exact_scores(catalog.vectors, query.vector, rows)
    neighbours = query_neighbours(query, catalog, pool_rows, pool_cosines, settings)
    base = cosines
    if neighbours:
        moved = moved_query(query.vector, catalog, neighbours, settings)
        base = exact_scores(catalog.vectors, moved, rows)
    parts = order_parts(catalog, rows, base, settings, query.published_ts, query.tags)
    return [
        {
            "cosine": float(cosines[i]),
            "expansion": float(parts.base[i] - cosines[i]),
            "boost": float(parts.boost[i]),
            "decay": float(parts.decay[i]),
            "value": float(parts.value[i]),
        }
        for i in range(len(items))
    ]
