"""Choosing a list's items from its ordered candidates: greedy or MMR, duplicates skipped,
soft constraints on a fallback ladder, and the preferred member of each duplicate group.

Candidates are the pool less the article itself, blocked rows, its own near-duplicates,
articles the hard filters or the draft rule leave out, and anything whose cosine is below
the relevance floor (`min_similarity`): a list may be shorter than `limit` rather than
hold an unrelated item.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recs.catalog import DAY, Catalog, Query
from recs.rank_settings import RankSettings
from recs.ranked import Item
from recs.scoring import by_score, duplicates_any, eligible, order_values, own_rows


def _prefer(new: int, old: int, catalog: Catalog, keep: str) -> bool:
    """Whether duplicate `new` should be shown instead of `old`."""
    if keep == "quality":
        new_q, old_q = catalog.quality[new], catalog.quality[old]
        return bool(not math.isnan(new_q) and (math.isnan(old_q) or new_q > old_q))
    new_ts, old_ts = catalog.published_ts[new], catalog.published_ts[old]
    return bool(not math.isnan(new_ts) and (math.isnan(old_ts) or new_ts < old_ts))


@dataclass(frozen=True)
class Step:
    """One step of the fallback ladder: which soft constraints hold, and which candidates."""

    name: str
    cap: bool  # the provider cap applies
    dates: bool  # the date window and "no newer articles" apply
    relevant: bool  # only candidates related by meaning alone (`relevant_similarity`)
    own_topics: bool = False  # only candidates sharing the article's topics (`shares_topic`)


# Strictest first; each step keeps what the steps before it chose and fills up the rest.
# First, the articles related by meaning, under every soft constraint; then, as the
# article's own, those sharing one of its topics, less similar ones included (never below
# `min_similarity`); last, related ones the soft constraints held back. (A shared
# category alone is not enough: on news sites it is often a format, "news" or "guide".)
LADDER = (
    Step("similar", cap=True, dates=True, relevant=True),
    Step("same topics", cap=False, dates=False, relevant=False, own_topics=True),
    Step("relaxed", cap=False, dates=False, relevant=True),
)


def shares_topic(query: Query, catalog: Catalog, row: int) -> bool:
    """Whether `row` shares one of the article's topics; for an article without topics,
    its category stands in for them."""
    if query.topics:
        return bool(catalog.topics[row] & query.topics)
    return query.category is not None and catalog.categories[row] == query.category


# How far a BLAS cosine may be from the exact float64 sum, with room to spare.
ROUGH_MARGIN = 1e-6


@dataclass
class _Candidates:
    """The candidates that passed the filters, in order, with what selection needs."""

    rows: np.ndarray
    cosines: np.ndarray
    adjusted: np.ndarray
    vectors: np.ndarray  # float64 rows: cosines between candidates are computed from these
    titles: np.ndarray  # title numbers (Catalog.title_ids): equal means the same title

    def duplicates_any(self, i: int, others: list[int], s: RankSettings) -> bool:
        """Whether candidate i duplicates any of the candidates `others`."""
        if not others:
            return False
        if s.dedup_titles and bool((self.titles[others] == self.titles[i]).any()):
            return True
        if s.dedup_threshold is None:
            return False
        # The same float64 products and sums as index.exact_scores, so the same verdicts.
        sims = np.add.reduce(self.vectors[others] * self.vectors[i], axis=1)
        return bool(sims.max() >= s.dedup_threshold)

    def duplicate_matrix(self, items: list[int], s: RankSettings) -> np.ndarray:
        """[p, j]: whether candidate j duplicates candidate items[p] (j != items[p])."""
        found = np.zeros((len(items), len(self.rows)), dtype=bool)
        if s.dedup_titles:
            found |= self.titles[None, :] == self.titles[items][:, None]
        if s.dedup_threshold is not None:
            # A BLAS product first: when nothing comes near the threshold (most lists), the
            # exact float64 sums are not needed.
            rough = self.vectors[items] @ self.vectors.T
            rough[np.arange(len(items)), items] = -1.0
            # The exact sums only for the pairs near the threshold: every other pair's
            # verdict is already certain.
            near_items, near = np.nonzero(rough >= s.dedup_threshold - ROUGH_MARGIN)
            if len(near):
                products = self.vectors[np.asarray(items)[near_items]] * self.vectors[near]
                found[near_items, near] |= np.add.reduce(products, axis=1) >= s.dedup_threshold
        found[np.arange(len(items)), items] = False  # an item is no duplicate of itself
        return found


def select_items(
    query: Query,
    catalog: Catalog,
    rows: np.ndarray,
    cosines: np.ndarray,
    base: np.ndarray,
    blocked: set[int],
    pinned: list[int],
    s: RankSettings,
    want: int,
) -> tuple[list[Item], float | None]:
    """The chosen items, in order, and, for a plainly filled list, its `Basis.bar`."""
    if want <= 0:
        return [], None
    # Never the article itself (any of its URLs), a blocked row or a near-duplicate of it.
    # A set lookup per candidate: np.isin took 25 µs a list for this (7% of ranking), and
    # one comparison per left-out row would grow with a long exclude_url.
    dropped = blocked | own_rows(query, catalog)
    keep = np.fromiter((row not in dropped for row in rows.tolist()), dtype=bool, count=len(rows))
    if s.dedup_threshold is not None:
        keep &= ~(cosines >= s.dedup_threshold)
    if s.dedup_titles and query.title_key:
        title = catalog.title_id_of.get(query.title_key)
        if title is not None:
            keep &= catalog.title_ids[rows] != title
    if s.min_similarity is not None:
        keep &= cosines >= s.min_similarity
    keep &= eligible(catalog, s)[rows]
    if s.same_category:
        keep &= np.array([catalog.categories[r] == query.category for r in rows.tolist()])
    if s.same_language and query.language is not None:
        # An article of unknown language stays in: nothing says it is in another.
        languages = catalog.languages
        keep &= np.array([languages[r] in (None, query.language) for r in rows.tolist()])
    picked = np.flatnonzero(keep)
    if not len(picked):
        return [], None
    rows, cosines = rows[picked], cosines[picked]
    adjusted = order_values(catalog, rows, base[picked], s, query.published_ts, query.tags)
    order = by_score(catalog, rows, adjusted)  # stable: adjusted score, then URL
    rows = rows[order]
    c = _Candidates(
        rows=rows,
        cosines=cosines[order],
        adjusted=adjusted[order],
        vectors=np.asarray(catalog.vectors[rows], dtype=np.float64),
        titles=catalog.title_ids[rows],
    )

    # Each step of the ladder keeps what stricter steps chose and fills up the rest.
    chosen: list[int] = []  # indexes into the candidates
    levels: list[int] = []  # the ladder step each was chosen at
    for level in range(len(LADDER)):
        _fill(query, catalog, c, pinned, s, want, level, chosen, levels)
        if len(chosen) >= want:
            break
    greedy = list(chosen)
    groups: list[tuple[int, ...]] = [() for _ in chosen]
    if s.dedup_threshold is not None or s.dedup_titles:
        groups = _show_preferred(query, catalog, c, pinned, s, chosen, levels)
    plain = len(chosen) == want and s.mmr_lambda >= 1.0 and not any(levels) and chosen == greedy
    bar = float(c.adjusted[greedy[-1]]) if plain else None
    items = [
        Item(
            row=int(c.rows[i]),
            score=float(c.adjusted[i]),
            similarity=round(float(c.cosines[i]), 6),
            step=level,
            same_story=group,
        )
        for i, level, group in zip(chosen, levels, groups, strict=True)
    ]
    return items, bar


def _date_ok(query: Query, ts: float, s: RankSettings) -> bool:
    if query.published_ts is None or math.isnan(ts):
        return True
    if not s.allow_newer and ts > query.published_ts:
        return False
    return s.window_days is None or abs(ts - query.published_ts) <= s.window_days * DAY


def _capped(provider: str | None, others: list[str | None], s: RankSettings) -> bool:
    """Whether adding `provider` to items from `others` would exceed the provider cap."""
    return bool(s.provider_cap and provider and others.count(provider) >= s.provider_cap)


def _fill(
    query: Query,
    catalog: Catalog,
    c: _Candidates,
    pinned: list[int],
    s: RankSettings,
    want: int,
    level: int,
    chosen: list[int],
    levels: list[int],
) -> None:
    """Add to `chosen` greedily (MMR when mmr_lambda < 1) under the ladder step `level`.

    A candidate that duplicates a chosen or pinned item is skipped: its group is already
    in the list (which member is shown is settled afterwards by `_show_preferred`).
    """
    step = LADDER[level]
    use_cap, use_dates = step.cap, step.dates
    relevant = s.relevant_similarity
    taken = set(chosen)
    lam = s.mmr_lambda
    # Dates are checked when a candidate comes up: skipping it then picks exactly what
    # leaving it out beforehand would (greedy and MMR alike), for far fewer checks.
    open_ = [i for i in range(len(c.rows)) if i not in taken]
    max_sim = np.full(len(c.rows), -1.0)
    if lam < 1.0:
        for row in pinned:
            max_sim = np.maximum(max_sim, c.vectors @ catalog.vectors[row])
        for i in chosen:
            max_sim = np.maximum(max_sim, c.vectors @ c.vectors[i])
    providers = [catalog.providers[int(c.rows[i])] for i in chosen]
    while open_ and len(chosen) < want:
        pick = 0
        if lam < 1.0 and (chosen or pinned):
            values = lam * c.adjusted[open_] - (1.0 - lam) * max_sim[open_]
            pick = int(np.argmax(values))  # first maximum keeps the stable order on ties
        i = open_.pop(pick)
        row = int(c.rows[i])
        if step.relevant and relevant is not None and c.cosines[i] < relevant:
            continue
        if step.own_topics and not shares_topic(query, catalog, row):
            continue
        if use_dates and not _date_ok(query, float(catalog.published_ts[row]), s):
            continue
        provider = catalog.providers[row]
        if use_cap and _capped(provider, providers, s):
            continue
        if c.duplicates_any(i, chosen, s) or duplicates_any(row, pinned, catalog, s):
            continue
        chosen.append(i)
        levels.append(level)
        providers.append(provider)
        if lam < 1.0:
            max_sim = np.maximum(max_sim, c.vectors @ c.vectors[i])


def _show_preferred(
    query: Query,
    catalog: Catalog,
    c: _Candidates,
    pinned: list[int],
    s: RankSettings,
    chosen: list[int],
    levels: list[int],
) -> list[tuple[int, ...]]:
    """Show, for each chosen item, the member of its duplicate group `dedup_keep` prefers,
    and return each item's group: the rows of the other members, the same story collapsed
    into it (in candidate order).

    The group of a chosen item is the candidates that duplicate it and nothing else in the
    list. A member replaces the item in place only if it meets the ladder step the item was
    chosen at (dates, provider cap), so a replacement never breaks a constraint.
    """
    if not chosen:
        return []
    first = list(chosen)  # the items greedy chose, before any member replaces one
    duplicate = c.duplicate_matrix(chosen, s)
    duplicate[:, chosen] = False
    members = np.flatnonzero(duplicate.sum(axis=0) == 1).tolist()
    # Most lists have no such member: only candidates duplicating exactly one item matter.
    for i in members:
        p = int(np.argmax(duplicate[:, i]))
        row = int(c.rows[i])
        if not _prefer(row, int(c.rows[chosen[p]]), catalog, s.dedup_keep):
            continue
        step = LADDER[levels[p]]
        if step.dates and not _date_ok(query, catalog.published_ts[row], s):
            continue
        others = [j for q, j in enumerate(chosen) if q != p]
        provider = catalog.providers[row]
        if step.cap and provider != catalog.providers[int(c.rows[chosen[p]])]:
            # Items chosen after the cap was dropped do not count against it.
            capped = [j for q, j in enumerate(chosen) if q != p and LADDER[levels[q]].cap]
            if _capped(provider, [catalog.providers[int(c.rows[j])] for j in capped], s):
                continue
        if c.duplicates_any(i, others, s) or duplicates_any(row, pinned, catalog, s):
            continue
        chosen[p] = i
    # Each item's group less the member shown (after a swap, the item greedy chose joins it).
    groups: list[set[int]] = [{i} for i in first]
    for i in members:
        groups[int(np.argmax(duplicate[:, i]))].add(i)
    return [
        tuple(int(c.rows[j]) for j in sorted(group - {shown}))
        for group, shown in zip(groups, chosen, strict=True)
    ]
