"""Choosing a list's items from its ordered candidates: greedy or MMR, duplicates skipped,
soft constraints on a fallback ladder, and the preferred member of each duplicate group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recs.catalog import DAY, Catalog, Query
from recs.rank_settings import RankSettings
from recs.scoring import by_score, duplicates_any, hard_filter, order_values, own_rows


def _prefer(new: int, old: int, catalog: Catalog, keep: str) -> bool:
    """Whether duplicate `new` should be shown instead of `old`."""
    if keep == "quality":
        new_q, old_q = catalog.quality[new], catalog.quality[old]
        return bool(not math.isnan(new_q) and (math.isnan(old_q) or new_q > old_q))
    new_ts, old_ts = catalog.published_ts[new], catalog.published_ts[old]
    return bool(not math.isnan(new_ts) and (math.isnan(old_ts) or new_ts < old_ts))


# The fallback ladder: (provider cap applies, date constraints apply), strictest first.
LADDER = ((True, True), (False, True), (False, False))

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
        """[p, j]: whether candidate j duplicates candidate items[p]."""
        found = np.zeros((len(items), len(self.rows)), dtype=bool)
        if s.dedup_titles:
            found |= self.titles[None, :] == self.titles[items][:, None]
        if s.dedup_threshold is not None:
            # A BLAS product first: when nothing comes near the threshold (most lists), the
            # exact float64 sums are not needed.
            rough = self.vectors[items] @ self.vectors.T
            rough[np.arange(len(items)), items] = -1.0
            if rough.max() >= s.dedup_threshold - ROUGH_MARGIN:
                products = self.vectors[None, :, :] * self.vectors[items][:, None, :]
                found |= np.add.reduce(products, axis=2) >= s.dedup_threshold
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
) -> tuple[list[tuple[int, float]], float | None]:
    """The chosen (row, cosine) pairs and, for a plainly filled list, its `Basis.bar`."""
    if want <= 0:
        return [], None
    # Never the article itself (any of its URLs), a blocked row or a near-duplicate of it.
    dropped = blocked | own_rows(query, catalog)
    if len(dropped) > 8:
        keep = ~np.isin(rows, list(dropped))
    else:  # usually the article's own row: a few comparisons beat isin
        keep = np.ones(len(rows), dtype=bool)
        for row in dropped:
            keep &= rows != row
    if s.dedup_threshold is not None:
        keep &= ~(cosines >= s.dedup_threshold)
    if s.dedup_titles and query.title_key:
        title = catalog.title_id_of.get(query.title_key)
        if title is not None:
            keep &= catalog.title_ids[rows] != title
    picked = np.flatnonzero(keep)
    passes = hard_filter(s)
    if passes is not None:
        picked = np.array([i for i in picked.tolist() if passes(int(rows[i]), catalog)], dtype=int)
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
    if s.dedup_threshold is not None or s.dedup_titles:
        _show_preferred(query, catalog, c, pinned, s, chosen, levels)
    plain = len(chosen) == want and s.mmr_lambda >= 1.0 and not any(levels) and chosen == greedy
    bar = float(c.adjusted[greedy[-1]]) if plain else None
    return [(int(c.rows[i]), round(float(c.cosines[i]), 6)) for i in chosen], bar


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
    use_cap, use_dates = LADDER[level]
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
) -> None:
    """Show, for each chosen item, the member of its duplicate group `dedup_keep` prefers.

    The group of a chosen item is the candidates that duplicate it and nothing else in the
    list. A member replaces the item in place only if it meets the ladder step the item was
    chosen at (dates, provider cap), so a replacement never breaks a constraint.
    """
    if not chosen:
        return
    duplicate = c.duplicate_matrix(chosen, s)
    duplicate[:, chosen] = False
    # Most lists have no such member: only candidates duplicating exactly one item matter.
    for i in np.flatnonzero(duplicate.sum(axis=0) == 1).tolist():
        p = int(np.argmax(duplicate[:, i]))
        row = int(c.rows[i])
        if not _prefer(row, int(c.rows[chosen[p]]), catalog, s.dedup_keep):
            continue
        use_cap, use_dates = LADDER[levels[p]]
        if use_dates and not _date_ok(query, catalog.published_ts[row], s):
            continue
        others = [j for q, j in enumerate(chosen) if q != p]
        provider = catalog.providers[row]
        if use_cap and provider != catalog.providers[int(c.rows[chosen[p]])]:
            # Items chosen after the cap was dropped do not count against it.
            capped = [j for q, j in enumerate(chosen) if q != p and LADDER[levels[q]][0]]
            if _capped(provider, [catalog.providers[int(c.rows[j])] for j in capped], s):
                continue
        if c.duplicates_any(i, others, s) or duplicates_any(row, pinned, catalog, s):
            continue
        chosen[p] = i
