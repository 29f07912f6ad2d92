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
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from recs.articles import Article
from recs.encoder import Progress
from recs.index import exact_scores
from recs.rank_settings import DEDUP_KEEP, REQUEST_FILTERS, RankSettings

__all__ = [
    "DEDUP_KEEP",
    "LADDER",
    "REQUEST_FILTERS",
    "SEARCH_MARGIN",
    "Basis",
    "Catalog",
    "Query",
    "RankSettings",
    "Ranked",
    "Search",
    "rank",
    "settled",
    "still",
    "title_key",
]

DAY = 86_400.0
# Each byte but ASCII letters and digits becomes a space: in ASCII text, what the pattern
# [\W_]+ matches. Bytes methods do in C what a regular expression did at 3 us a title.
_SPACES = bytes(c if c < 128 and chr(c).isalnum() else 32 for c in range(256))


def title_key(title: str) -> str:
    """A title for duplicate detection: case, accents, punctuation and spacing ignored.

    Its NFKD form's ASCII letters and digits, lower case, in runs joined by one space
    (what replacing each run of non-word characters and underscores by a space, then
    stripping, leaves), or the title lower-cased when nothing is left.
    """
    if title.isascii():  # ASCII is its own NFKD form
        text = title.encode("ascii")
    else:
        text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore")
    return b" ".join(text.lower().translate(_SPACES).split()).decode("ascii") or (
        title.strip().lower()
    )


def _tags(fields_: Any) -> frozenset[str]:
    tags = [str(t).strip().lower() for t in fields_.get("topics") or [] if str(t).strip()]
    category = fields_.get("category")
    if isinstance(category, str) and category.strip():
        tags.append("category:" + category.strip().lower())
    return frozenset(tags)


def _provider(fields_: Any) -> str | None:
    provider = fields_.get("provider")
    if isinstance(provider, dict):
        name = provider.get("name") or provider.get("domain")
        if isinstance(name, str) and name.strip():
            return name.strip().lower()
    if isinstance(provider, str) and provider.strip():
        return provider.strip().lower()
    return None


@dataclass
class Catalog:
    """What ranking knows about every stored article, by row."""

    urls: list[str]
    vectors: np.ndarray
    title_keys: list[str]
    providers: list[str | None]
    published_ts: np.ndarray  # NaN when unknown
    quality: np.ndarray  # NaN when unknown
    types: list[str | None]
    published: list[bool]
    tags: list[frozenset[str]]
    row_of: dict[str, int] = field(default_factory=dict)
    originals: list[str | None] = field(default_factory=list)  # originalUrl, when another

    @classmethod
    def from_articles(cls, articles: Sequence[Article], vectors: np.ndarray) -> Catalog:
        def number(value: Any) -> float:
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            return float(value) if is_number else math.nan

        catalog = cls(
            urls=[a.url for a in articles],
            vectors=vectors,
            title_keys=[title_key(a.title) for a in articles],
            providers=[_provider(a.fields) for a in articles],
            published_ts=np.array(
                [math.nan if a.published_ts is None else a.published_ts for a in articles],
                dtype=np.float64,
            ),
            quality=np.array([number(a.fields.get("quality")) for a in articles], dtype=np.float64),
            types=[
                a.fields.get("type") if isinstance(a.fields.get("type"), str) else None
                for a in articles
            ],
            published=[a.fields.get("published") is not False for a in articles],
            tags=[_tags(a.fields) for a in articles],
            row_of={a.url: row for row, a in enumerate(articles)},
            originals=[a.original_url for a in articles],
        )
        return catalog.prepare()

    def __len__(self) -> int:
        return len(self.urls)

    @cached_property
    def url_order(self) -> np.ndarray:
        """Each row's place in URL order: equal scores are ordered by URL."""
        order = np.empty(len(self.urls), dtype=np.int64)
        order[sorted(range(len(self.urls)), key=self.urls.__getitem__)] = np.arange(len(self.urls))
        return order

    @cached_property
    def title_id_of(self) -> dict[str, int]:
        """A number for each distinct normalised title."""
        ids: dict[str, int] = {}
        for key in self.title_keys:
            ids.setdefault(key, len(ids))
        return ids

    @cached_property
    def title_ids(self) -> np.ndarray:
        """Each row's title number: rows with equal numbers have the same title key."""
        return np.array([self.title_id_of[key] for key in self.title_keys], dtype=np.int64)

    @cached_property
    def rows_by_original(self) -> dict[str, list[int]]:
        """Rows by their originalUrl, for the rows that have one."""
        rows: dict[str, list[int]] = {}
        for row, original in enumerate(self.originals):
            if original is not None:
                rows.setdefault(original, []).append(row)
        return rows

    def prepare(self) -> Catalog:
        """Compute the lookups ranking uses now (before forking workers that share them)."""
        _ = (self.url_order, self.title_ids, self.rows_by_original)
        return self

    def rows_of(self, urls: set[str]) -> set[int]:
        """Rows that are one of `urls`, by webUrl or originalUrl."""
        rows = {self.row_of[u] for u in urls if u in self.row_of}
        if self.originals:
            for url in urls:
                rows.update(self.rows_by_original.get(url, ()))
        return rows


@dataclass(frozen=True)
class Query:
    """The article a related list is for: a stored row, or a draft that is not stored."""

    vector: np.ndarray
    url: str | None = None
    title_key: str = ""
    published_ts: float | None = None
    tags: frozenset[str] = frozenset()
    pinned: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    original_url: str | None = None

    @classmethod
    def for_article(cls, article: Article, vector: np.ndarray, key: str | None = None) -> Query:
        """The query of a stored article; `key` is its title_key when already known."""
        return cls(
            vector=vector,
            url=article.url,
            original_url=article.original_url,
            title_key=title_key(article.title) if key is None else key,
            published_ts=article.published_ts,
            tags=_tags(article.fields),
            pinned=article.pinned,
            excluded=article.excluded,
        )


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
    blocked = _blocked(query, catalog, settings)
    blocked.update(pinned_rows)
    want = limit - len(pinned_rows)
    k = min(n, settings.pool + len(blocked) + 1)
    searches = 0
    while True:
        rows, cosines = _pool(query, catalog, search, k)
        everything = k >= n
        base, neighbours = _expanded(query, catalog, rows, cosines, settings)
        chosen, bar = _select(
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


def _blocked(query: Query, catalog: Catalog, s: RankSettings) -> set[int]:
    """Rows the query excludes, or the settings do."""
    return {catalog.row_of[u] for u in query.excluded + s.exclude_urls if u in catalog.row_of}


def _pool(query: Query, catalog: Catalog, search: Search, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows by exact cosine (equal cosines in URL order), and their cosines."""
    rows = search(min(len(catalog), k + SEARCH_MARGIN))
    rows = np.unique(rows[rows >= 0])
    cosines = exact_scores(catalog.vectors, query.vector, rows)
    order = _by_score(catalog, rows, cosines)[:k]
    return rows[order], cosines[order]


# Room for rounding in `still`: a suspect must clear every bound by this much (float64
# values computed another way), or by the larger margin where float32 products are used.
STILL_MARGIN = 1e-6
DUPLICATE_MARGIN = 1e-4


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
    if not lists or not len(edited) or s.mmr_lambda < 1.0 or s.taxonomy_boost:
        return proved  # taxonomy boosts are per pair of tag sets: left to `still`
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
    items = np.array([[row for row, _ in r.items] for r in lists], dtype=np.int64)
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
        centre = vectors[neighbours].astype(np.float64).mean(axis=1)
        moved = q.astype(np.float64) + s.expand_weight * centre
        norms = np.linalg.norm(moved, axis=1, keepdims=True)
        moved = np.where(norms > 0, moved / np.where(norms > 0, norms, 1.0), q)
        score = (moved @ new.T.astype(np.float64))[li, ei]
    ok &= ~(named[li] == changed[ei][:, None]).any(axis=1)
    if s.half_life_days:
        ts = catalog.published_ts
        score = _decayed(score, ts[changed[ei]], ts[rows[li]], s)
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
    if basis is None or s.mmr_lambda < 1.0 or not math.isfinite(before.floor):
        return None
    items = [r for r, _ in before.items]
    if changed.intersection(items) or changed.intersection(basis.neighbours):
        return None
    n = len(catalog)
    k = min(n, s.pool + len(_blocked(query, catalog, s)) + 1)
    if k >= n:
        return None
    rows, cosines = _pool(query, catalog, search, k)
    place = {row: i for i, row in enumerate(rows.tolist())}
    if any(row not in place for row in items):
        return None
    neighbours = _neighbours(query, catalog, rows, cosines, s)
    if tuple(neighbours) != basis.neighbours:
        return None
    # What may be new in the pool: changed articles, and anything at or below the old floor.
    suspects = {place[row] for row in changed.intersection(place)}
    suspects.update(np.flatnonzero(cosines <= before.floor + STILL_MARGIN).tolist())
    suspects.difference_update(place[row] for row in items)
    if suspects:
        picked = rows[sorted(suspects)]
        moved = _moved(query, catalog, neighbours, s) if neighbours else query.vector
        adjusted = _adjusted(
            query, catalog, picked, exact_scores(catalog.vectors, moved, picked), s
        )
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


def _by_score(catalog: Catalog, rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Positions of `rows` by descending score, equal scores in URL order (a stable order)."""
    return np.lexsort((catalog.url_order[rows], -scores))


def _pinned_rows(query: Query, catalog: Catalog, limit: int) -> list[int]:
    rows: list[int] = []
    for url in query.pinned:
        row = catalog.row_of.get(url)
        if row is not None and url != query.url and row not in rows and url not in query.excluded:
            rows.append(row)
    return rows[:limit]


def _own_rows(query: Query, catalog: Catalog) -> set[int]:
    """Rows that are the query itself under one of its URLs (webUrl or originalUrl)."""
    return catalog.rows_of({u for u in (query.url, query.original_url) if u is not None})


def _duplicate(a: int, b: int, cosine: float, catalog: Catalog, s: RankSettings) -> bool:
    if s.dedup_titles and catalog.title_keys[a] == catalog.title_keys[b]:
        return True
    return s.dedup_threshold is not None and cosine >= s.dedup_threshold


def _duplicates_any(row: int, others: Sequence[int], catalog: Catalog, s: RankSettings) -> bool:
    """Whether `row` is a near-duplicate of any of `others` (rows)."""
    if not others:
        return False
    sims = exact_scores(catalog.vectors, catalog.vectors[row], others)
    return any(_duplicate(row, o, float(c), catalog, s) for o, c in zip(others, sims, strict=True))


def _duplicates_query(
    row: int, cosine: float, query: Query, catalog: Catalog, s: RankSettings
) -> bool:
    if s.dedup_titles and query.title_key and catalog.title_keys[row] == query.title_key:
        return True
    return s.dedup_threshold is not None and cosine >= s.dedup_threshold


def _moved(query: Query, catalog: Catalog, neighbours: list[int], s: RankSettings) -> np.ndarray:
    """The query vector moved towards the mean of `neighbours` (float64, unit length)."""
    # np.mean's own sum and division, without its per-call overhead (same bits).
    picked = np.asarray(catalog.vectors[neighbours], dtype=np.float64)
    centre = np.add.reduce(picked, axis=0) / len(neighbours)
    moved = np.asarray(query.vector, dtype=np.float64) + s.expand_weight * centre
    norm = float(np.linalg.norm(moved))
    return np.asarray(query.vector, dtype=np.float64) if norm == 0.0 else moved / norm


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
    neighbours = _neighbours(query, catalog, rows, cosines, s)
    if not neighbours:
        return cosines, []
    return exact_scores(catalog.vectors, _moved(query, catalog, neighbours, s), rows), neighbours


def _neighbours(
    query: Query, catalog: Catalog, rows: np.ndarray, cosines: np.ndarray, s: RankSettings
) -> list[int]:
    """The first `expand_neighbours` candidates that are neither the query nor a duplicate."""
    neighbours: list[int] = []
    if not s.expand_neighbours:
        return neighbours
    own = _own_rows(query, catalog)
    for row, cosine in zip(rows.tolist(), cosines.tolist(), strict=True):
        if row in own or _duplicates_query(row, float(cosine), query, catalog, s):
            continue
        neighbours.append(row)
        if len(neighbours) == s.expand_neighbours:
            break
    return neighbours


def _hard_filter(s: RankSettings) -> Callable[[int, Catalog], bool] | None:
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


def _adjusted(
    query: Query, catalog: Catalog, rows: np.ndarray, base: np.ndarray, s: RankSettings
) -> np.ndarray:
    adjusted = base.copy()
    if s.taxonomy_boost and query.tags:
        for i, row in enumerate(rows):
            tags = catalog.tags[row]
            if tags:
                adjusted[i] += s.taxonomy_boost * len(query.tags & tags) / len(query.tags | tags)
    if s.half_life_days and query.published_ts is not None:
        adjusted = _decayed(adjusted, catalog.published_ts[rows], query.published_ts, s)
    return adjusted


def _decayed(scores: np.ndarray, ts: np.ndarray, query_ts: Any, s: RankSettings) -> np.ndarray:
    """`scores` times the freshness decay of the gap between `ts` and `query_ts` (either
    may be an array; an unknown date, NaN, does not decay)."""
    assert s.half_life_days
    gaps = np.abs(ts - query_ts) / DAY
    decay = np.where(np.isnan(gaps), 1.0, 0.5 ** (gaps / s.half_life_days))  # NaN: no decay
    # Only positive scores shrink: a negative one times a decay would move up.
    return np.where(scores > 0, scores * decay, scores)


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


def _select(
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
    dropped = blocked | _own_rows(query, catalog)
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
    passes = _hard_filter(s)
    if passes is not None:
        picked = np.array([i for i in picked.tolist() if passes(int(rows[i]), catalog)], dtype=int)
    if not len(picked):
        return [], None
    rows, cosines = rows[picked], cosines[picked]
    adjusted = _adjusted(query, catalog, rows, base[picked], s)
    order = _by_score(catalog, rows, adjusted)  # stable: adjusted score, then URL
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
        if c.duplicates_any(i, chosen, s) or _duplicates_any(row, pinned, catalog, s):
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
        if c.duplicates_any(i, others, s) or _duplicates_any(row, pinned, catalog, s):
            continue
        chosen[p] = i
