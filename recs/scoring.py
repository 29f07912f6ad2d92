"""What a candidate is worth and what it is: the primitives ranking and its proof share.

`order_values` is THE ordering value of candidates (cosine or expanded score, plus the
taxonomy boost, times the freshness decay): `recs.rank` orders by it and `recs.unchanged`
proves lists unchanged with it, so a term added here is in both at once. The rest: which
rows are the query itself or blocked, duplicates, the hard filters, the moved query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from recs.catalog import DAY, Catalog, Query
from recs.index import exact_scores
from recs.rank_settings import RankSettings


def by_score(catalog: Catalog, rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Positions of `rows` by descending score, equal scores in URL order (a stable order)."""
    return np.lexsort((catalog.url_order[rows], -scores))


def own_rows(query: Query, catalog: Catalog) -> set[int]:
    """Rows that are the query itself under one of its URLs (webUrl or originalUrl)."""
    return catalog.rows_of({u for u in (query.url, query.original_url) if u is not None})


def blocked_rows(query: Query, catalog: Catalog, s: RankSettings) -> set[int]:
    """Rows the query excludes, or the settings do."""
    return {catalog.row_of[u] for u in query.excluded + s.exclude_urls if u in catalog.row_of}


def is_duplicate(a: int, b: int, cosine: float, catalog: Catalog, s: RankSettings) -> bool:
    if s.dedup_titles and catalog.title_keys[a] == catalog.title_keys[b]:
        return True
    return s.dedup_threshold is not None and cosine >= s.dedup_threshold


def duplicates_any(row: int, others: Sequence[int], catalog: Catalog, s: RankSettings) -> bool:
    """Whether `row` is a near-duplicate of any of `others` (rows)."""
    if not others:
        return False
    sims = exact_scores(catalog.vectors, catalog.vectors[row], others)
    return any(
        is_duplicate(row, o, float(c), catalog, s) for o, c in zip(others, sims, strict=True)
    )


def duplicates_query(
    row: int, cosine: float, query: Query, catalog: Catalog, s: RankSettings
) -> bool:
    if s.dedup_titles and query.title_key and catalog.title_keys[row] == query.title_key:
        return True
    return s.dedup_threshold is not None and cosine >= s.dedup_threshold


def moved_query(
    vector: np.ndarray, catalog: Catalog, neighbours: Sequence[int], s: RankSettings
) -> np.ndarray:
    """A query `vector` moved towards the mean of its `neighbours` (rows), by
    `expand_weight`, float64 and unit length: what `expand_neighbours` scores against."""
    picked = np.asarray(catalog.vectors[list(neighbours)], dtype=np.float64)
    centre = np.mean(picked, axis=0)
    moved = np.asarray(vector, dtype=np.float64) + s.expand_weight * centre
    norm = float(np.linalg.norm(moved))
    return np.asarray(vector, dtype=np.float64) if norm == 0.0 else moved / norm


def hard_filter(s: RankSettings) -> Callable[[int, Catalog], bool] | None:
    """The hard filters of `s` as one predicate over rows (never relaxed); None: no filter."""
    if not s.has_request_filters:
        return None
    excluded = {p.lower() for p in s.exclude_providers}
    required = {p.lower() for p in s.require_providers}
    types = set(s.types)

    def passes(row: int, catalog: Catalog) -> bool:
        if types and catalog.types[row] not in types:
            return False
        if s.min_quality is not None and not catalog.quality[row] >= s.min_quality:
            return False
        if s.published_only and not catalog.published[row]:
            return False
        provider = catalog.providers[row]
        if (excluded and provider in excluded) or (required and provider not in required):
            return False
        ts = catalog.published_ts[row]
        if s.since is not None and not ts >= s.since:
            return False
        return not (s.until is not None and not ts <= s.until)

    return passes


def order_values(
    catalog: Catalog,
    rows: np.ndarray,
    base: np.ndarray,
    s: RankSettings,
    query_ts: float | np.ndarray | None,
    query_tags: frozenset[str] | Sequence[frozenset[str]],
) -> np.ndarray:
    """The value candidates are ordered by: `base` (the cosine, or the score against the
    moved query) plus the taxonomy boost, times the freshness decay (float64).

    Candidate i is row `rows[i]` of a query published at `query_ts` (None or NaN:
    unknown) with tags `query_tags`; for many queries at once both are given per
    candidate (an array, a sequence of sets). Ranking orders by this and the proof of a
    list unchanged (recs.unchanged) checks with it: a new ordering term goes here, once.
    """
    values = np.array(base, dtype=np.float64)
    if s.taxonomy_boost:
        for i, row in enumerate(rows.tolist()):
            mine = query_tags if isinstance(query_tags, frozenset) else query_tags[i]
            tags = catalog.tags[row]
            if mine and tags:
                values[i] += s.taxonomy_boost * len(mine & tags) / len(mine | tags)
    if s.half_life_days and query_ts is not None:
        values = _decayed(values, catalog.published_ts[rows], query_ts, s)
    return values


def _decayed(scores: np.ndarray, ts: np.ndarray, query_ts: Any, s: RankSettings) -> np.ndarray:
    """`scores` times the freshness decay of the gap between `ts` and `query_ts` (either
    may be an array; an unknown date, NaN, does not decay)."""
    assert s.half_life_days
    gaps = np.abs(ts - query_ts) / DAY
    decay = np.where(np.isnan(gaps), 1.0, 0.5 ** (gaps / s.half_life_days))  # NaN: no decay
    # Only positive scores shrink: a negative one times a decay would move up.
    return np.where(scores > 0, scores * decay, scores)
