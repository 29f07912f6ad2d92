"""What a candidate is worth and what it is: the primitives ranking and its proof share.

`order_values` is THE ordering value of candidates (cosine or expanded score, plus the
taxonomy boost, times the freshness decay): `recs.rank` orders by it and `recs.unchanged`
proves lists unchanged with it, so a term added here is in both at once. The rest: which
rows are the query itself or blocked, duplicates, the hard filters, the moved query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    return {catalog.row_of[u] for u in query.excluded + s.exclude_url if u in catalog.row_of}


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


# The settings an article's eligibility depends on (besides the query): see `eligible`.
ELIGIBILITY = (
    "include_drafts",
    "provider",
    "exclude_provider",
    "type",
    "exclude_type",
    "topic",
    "exclude_topic",
    "min_quality",
    "since",
    "until",
    "max_age_days",
)


def eligible(catalog: Catalog, s: RankSettings) -> np.ndarray:
    """Which rows may be recommended under the hard filters of `s` that do not depend on
    the query, and the rule for drafts: an article marked as a draft, or dated after
    `catalog.now`, is not recommended (unless `include_drafts`). Worked out once per
    catalog and settings: ranking ANDs it into every list's candidates."""
    key = tuple(getattr(s, name) for name in ELIGIBILITY)
    found = catalog.masks.get(key)
    if found is not None:
        return found
    ts = catalog.published_ts
    ok = ~date_waits(ts, catalog.now, s)
    if not s.include_drafts:
        ok &= ~np.array(catalog.drafts, dtype=bool)
    if s.since is not None:
        ok &= ts >= s.since
    if s.until is not None:
        ok &= ts <= s.until
    if s.min_quality is not None:
        ok &= catalog.quality >= s.min_quality
    ok &= _among(catalog.providers, s.provider, s.exclude_provider)
    ok &= _among(catalog.types, s.type, s.exclude_type, lower=False)
    if s.topic or s.exclude_topic:
        wanted, unwanted = _lower(s.topic), _lower(s.exclude_topic)
        ok &= np.array(
            [(not wanted or bool(t & wanted)) and not (t & unwanted) for t in catalog.topics],
            dtype=bool,
        )
    catalog.masks[key] = ok
    return ok


def date_waits(ts: np.ndarray, now: float | None, s: RankSettings) -> np.ndarray:
    """Which publication times keep an article out of lists at `now`: dated after it
    (unless `include_drafts`), or more than `max_age_days` before it. An unknown date (NaN)
    never waits; with `now` None no date does. The one rule of time: ranking applies it,
    and a build compares it at two moments to find the articles that became due."""
    ts = np.asarray(ts, dtype=np.float64)
    waits = np.zeros(ts.shape, dtype=bool)
    if now is None:
        return waits
    if not s.include_drafts:
        waits |= ts > now
    if s.max_age_days is not None:
        waits |= ts < now - s.max_age_days * DAY
    return waits


def _lower(values: Sequence[str]) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in values)


def _among(
    column: Sequence[str | None], only: Sequence[str], never: Sequence[str], lower: bool = True
) -> np.ndarray | bool:
    """Rows whose value is one of `only` (when given) and none of `never`."""
    if not only and not never:
        return True
    wanted = _lower(only) if lower else frozenset(only)
    unwanted = _lower(never) if lower else frozenset(never)
    return np.array([(not wanted or v in wanted) and v not in unwanted for v in column], dtype=bool)


@dataclass(frozen=True)
class OrderParts:
    """The parts of candidates' ordering values (arrays, one entry per candidate)."""

    base: np.ndarray  # the cosine, or the score against the moved query
    boost: np.ndarray  # what the taxonomy boost added
    decay: np.ndarray  # the freshness factor (1: none)
    value: np.ndarray  # (base + boost) times decay, where positive: what ranking orders by


def order_parts(
    catalog: Catalog,
    rows: np.ndarray,
    base: np.ndarray,
    s: RankSettings,
    query_ts: float | np.ndarray | None,
    query_tags: frozenset[str] | Sequence[frozenset[str]],
) -> OrderParts:
    """The value candidates are ordered by, and its parts: `base` (the cosine, or the
    score against the moved query) plus the taxonomy boost, times the freshness decay.

    Candidate i is row `rows[i]` of a query published at `query_ts` (None or NaN:
    unknown) with tags `query_tags`; for many queries at once both are given per
    candidate (an array, a sequence of sets). Ranking orders by `value`, the proof of a
    list unchanged (recs.unchanged) checks with it, and `recs related --explain` shows the
    parts: a new ordering term goes here, once.
    """
    base = np.array(base, dtype=np.float64)
    boost = np.zeros(len(base), dtype=np.float64)
    if s.taxonomy_boost:
        for i, row in enumerate(rows.tolist()):
            mine = query_tags if isinstance(query_tags, frozenset) else query_tags[i]
            tags = catalog.tags[row]
            if mine and tags:
                boost[i] = s.taxonomy_boost * len(mine & tags) / len(mine | tags)
    values = base + boost
    decay = np.ones(len(base), dtype=np.float64)
    if s.half_life_days and query_ts is not None:
        gaps = np.abs(catalog.published_ts[rows] - query_ts) / DAY
        decay = np.where(np.isnan(gaps), 1.0, 0.5 ** (gaps / s.half_life_days))  # NaN: none
        # Only positive values shrink: a negative one times a decay would move up.
        values = np.where(values > 0, values * decay, values)
    return OrderParts(base, boost, decay, values)


def order_values(
    catalog: Catalog,
    rows: np.ndarray,
    base: np.ndarray,
    s: RankSettings,
    query_ts: float | np.ndarray | None,
    query_tags: frozenset[str] | Sequence[frozenset[str]],
) -> np.ndarray:
    """The values candidates are ordered by (`order_parts(...).value`)."""
    return order_parts(catalog, rows, base, s, query_ts, query_tags).value
