"""Proving a stored list unchanged after some articles were edited, without ranking it.

A list that recorded a `Basis` (recs.rank) is kept when the basis shows the edit cannot
change it: `settled` decides the common case for many lists at once, `still` decides one
list against its new candidate pool inside a ranking job. Both use the ordering value of
recs.scoring, and both refuse to vouch for a list under any ranking setting this module
does not know (`PROOF_COVERS`): a new option is safe (its lists are ranked again) until
someone has shown how the proof accounts for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import fields

import numpy as np

from recs.catalog import Catalog, Query
from recs.index import exact_scores
from recs.rank import candidate_pool, query_neighbours
from recs.rank_settings import RankSettings
from recs.ranked import Ranked, Search
from recs.scoring import blocked_rows, moved_query, order_values

# Room for rounding in `still`: a suspect must clear every bound by this much (float64
# values computed another way), or by the larger margin where float32 products are used.
STILL_MARGIN = 1e-6

DUPLICATE_MARGIN = 1e-4

# The ranking settings this proof accounts for, and how (see `settled` and `still`):
# - limit, pool, expand_neighbours, expand_weight: the basis (items, neighbours, floor);
# - dedup_threshold, dedup_titles, dedup_keep: a suspect duplicates no item, and no item's
#   group (`Item.same_story`) holds a changed article, so no skip, swap or group changes;
# - half_life_days, taxonomy_boost: inside `order_values`, which both sides call;
# - provider_cap, window_days, allow_newer, relevant_similarity: a basis is kept only for
#   a list filled at the first ladder step, where greedy stops at the bar, before any
#   suspect; min_similarity only leaves candidates out (a suspect is checked anyway);
# - mmr_lambda: below 1 nothing is proved;
# - the hard filters and the draft rule (include_drafts, provider, exclude_provider, type,
#   exclude_type, topic, exclude_topic, same_category, same_language, min_quality, since, until,
#   max_age_days): a suspect is checked against the bar whether it passes them or not,
#   and an article whose date starts or stops keeping it out is a changed article
#   (recs.related); exclude_url coming or going makes recs.related rank every list.
# A setting not named here (a new option) turns the proof off: its lists are ranked
# again, always right, until this list and the proof say how it is accounted for.
PROOF_COVERS = frozenset(
    {
        "limit",
        "pool",
        "expand_neighbours",
        "expand_weight",
        "dedup_threshold",
        "dedup_titles",
        "dedup_keep",
        "mmr_lambda",
        "provider_cap",
        "half_life_days",
        "taxonomy_boost",
        "window_days",
        "allow_newer",
        "min_similarity",
        "relevant_similarity",
        "include_drafts",
        "exclude_url",
        "provider",
        "exclude_provider",
        "type",
        "exclude_type",
        "topic",
        "exclude_topic",
        "same_category",
        "same_language",
        "min_quality",
        "since",
        "until",
        "max_age_days",
    }
)


def vouches_for(s: RankSettings) -> bool:
    """Whether the proof knows every ranking setting of `s` (its class's fields)."""
    return {f.name for f in fields(s)} <= PROOF_COVERS and s.mmr_lambda >= 1.0


def settled(
    catalog: Catalog,
    queries: Sequence[int],
    lists: Sequence[Ranked],
    edited: Sequence[int],
    old_vectors: np.ndarray,
    s: RankSettings,
) -> np.ndarray:
    """Which lists certainly stay as they are after some articles were edited, all at once.

    `lists[i]` is the list of row `queries[i]` from before, in the rows of `catalog` (which
    holds every article as it is now); `edited` are the rows of articles whose vector or
    fields changed (none added or removed), `old_vectors` their vectors before. False means
    "not proved here": `still` or `rank` decides. This is `still` for the common case, with
    no search: every edited article is either out of the pool before and after (both cosines
    below the floor) or in it before and after, and then it is not an item or a neighbour,
    stays behind the last neighbour, orders below the last item (`Basis.bar`) and
    duplicates no item. The pool, the floor and the moved query are then the same, and
    greedy selection stops before reaching the article. Products are float32, so every
    bound is cleared by DUPLICATE_MARGIN.
    """
    proved = np.zeros(len(lists), dtype=bool)
    if not lists or not len(edited) or not vouches_for(s):
        return proved
    bases = [r.basis for r in lists]
    if any(b is None for b in bases) or any(len(r.items) != s.limit for r in lists):
        raise ValueError("settled() needs full lists with a basis")
    m, margin = s.expand_neighbours, DUPLICATE_MARGIN
    vectors, rows, changed = catalog.vectors, np.asarray(queries), np.asarray(edited)
    q = np.asarray(vectors[rows], dtype=np.float32)
    new = np.asarray(vectors[changed], dtype=np.float32)
    floors = np.array([r.floor for r in lists])
    after, before = q @ new.T, q @ np.asarray(old_vectors, dtype=np.float32).T
    # Pairs (list, edited article) with the article in reach of the list before or after.
    li, ei = np.nonzero((after >= floors[:, None] - margin) | (before >= floors[:, None] - margin))
    a, floor = after[li, ei], floors[li]
    ok = (a > floor + margin) & (before[li, ei] > floor + margin)
    items = np.array([[item.row for item in r.items] for r in lists], dtype=np.int64)
    named = items
    score = a
    if m:
        full = [i for i, b in enumerate(bases) if b is not None and len(b.neighbours) == m]
        if len(full) < len(lists):
            # A list with fewer neighbours than asked (a small pool) is left to `still`.
            if full:
                subset = ([queries[i] for i in full], [lists[i] for i in full])
                proved[full] = settled(catalog, *subset, edited, old_vectors, s)
            return proved
        neighbours = np.array([b.neighbours for b in bases if b is not None], dtype=np.int64)
        named = np.hstack([items, neighbours])
        last = np.einsum("ij,ij->i", q, vectors[neighbours[:, -1]])
        ok &= a < last[li] - margin
        # Moved queries only for the lists a pair still leaves open (one `moved_query` per
        # list: for all 10,000 lists of a 1% rebuild that took 60 ms); a pair already
        # decided scores 0, and its verdict stays.
        open_lists, of_pair = np.unique(li[ok], return_inverse=True)
        score = np.zeros(len(li))
        if len(open_lists):
            moved = np.array(
                [moved_query(vectors[rows[i]], catalog, neighbours[i], s) for i in open_lists]
            )
            score[ok] = (moved @ new.T.astype(np.float64))[of_pair, ei[ok]]
    ok &= ~(named[li] == changed[ei][:, None]).any(axis=1)
    # An edited article collapsed into an item: that item's group may change.
    stories = {
        i: {row for item in list_.items for row in item.same_story}
        for i, list_ in enumerate(lists)
        if any(item.same_story for item in list_.items)
    }
    for p in np.flatnonzero(ok).tolist() if stories else ():
        if int(changed[ei[p]]) in stories.get(int(li[p]), ()):
            ok[p] = False
    query_tags = [catalog.tags[row] for row in rows[li].tolist()]
    score = order_values(catalog, changed[ei], score, s, catalog.published_ts[rows[li]], query_tags)
    bars = np.array([b.bar for b in bases if b is not None])
    ok &= score < bars[li] - margin
    if s.dedup_titles:
        titles = catalog.title_ids
        ok &= ~(titles[items[li]] == titles[changed[ei]][:, None]).any(axis=1)
    if s.dedup_threshold is not None:
        # Each listed row against each edited article once, then looked up per pair.
        listed, where = np.unique(items, return_inverse=True)
        similar = vectors[listed] @ new.T
        near = similar[where.reshape(items.shape)[li], ei[:, None]].max(axis=1, initial=-1.0)
        ok &= np.less(near, s.dedup_threshold - margin)
    proved[:] = True
    proved[li[~ok]] = False
    return proved


def still(
    query: Query,
    catalog: Catalog,
    search: Search,
    before: Ranked,
    changed: set[int],
    settings: RankSettings,
) -> Ranked | None:
    """`before` with its new floor, if ranking `query` again would give the same list.

    `before` is the query's list from before some articles changed, in the rows of
    `catalog` (which holds them as they are now); `changed` are the rows of the articles
    that are new or changed since. None means "rank it again", not "it changed".

    The proof needs the list's `Basis` and the current candidate pool (one search, as
    `rank` does it). The items and the neighbours the query moves towards are unchanged
    and still where they were, so the moved query and the ordering value of the last item
    chosen (`bar`) are too. Every other candidate that was in the pool before is unchanged
    and was decided the same way (greedy skips depend only on the items chosen). What may
    be new in the pool, a changed article or one at or below the old floor, must order
    below `bar` (greedy stops before it) and duplicate no item (no duplicate-group swap can
    bring it in). Candidates that left the pool were neither items nor neighbours.
    """
    basis, s = before.basis, settings
    if basis is None or not vouches_for(s) or not math.isfinite(before.floor):
        return None
    items = [item.row for item in before.items]
    if changed.intersection(before.named()):
        return None
    n = len(catalog)
    k = min(n, s.pool + len(blocked_rows(query, catalog, s)) + 1)
    if k >= n:
        return None
    rows, cosines = candidate_pool(query, catalog, search, k)
    place = {row: i for i, row in enumerate(rows.tolist())}
    stories = [row for item in before.items for row in item.same_story]
    if any(row not in place for row in items + stories):
        return None  # an item, or a duplicate collapsed into one, left the pool
    neighbours = query_neighbours(query, catalog, rows, cosines, s)
    if tuple(neighbours) != basis.neighbours:
        return None
    # What may be new in the pool: changed articles, and anything at or below the old floor.
    suspects = {place[row] for row in changed.intersection(place)}
    suspects.update(np.flatnonzero(cosines <= before.floor + STILL_MARGIN).tolist())
    suspects.difference_update(place[row] for row in items)
    if suspects:
        picked = rows[sorted(suspects)]
        moved = moved_query(query.vector, catalog, neighbours, s) if neighbours else query.vector
        base = exact_scores(catalog.vectors, moved, picked)
        adjusted = order_values(catalog, picked, base, s, query.published_ts, query.tags)
        if not bool((adjusted < basis.bar - STILL_MARGIN).all()):
            return None
        titles = catalog.title_ids
        if s.dedup_titles and set(titles[picked].tolist()).intersection(titles[items].tolist()):
            return None
        if s.dedup_threshold is not None:
            near = catalog.vectors[picked] @ catalog.vectors[items].T  # float32: margin below
            if float(near.max()) >= s.dedup_threshold - DUPLICATE_MARGIN:
                return None
    return Ranked(before.items, float(cosines[-1]), basis, kept=True)
