"""From nearest neighbours to a related list: filters, de-duplication, diversity, fallback.

Pure functions over a `Catalog` (what ranking knows of every stored article) and a
`Query` (the article asking). The cosine of two articles is their `score`; ranking may
order by an adjusted value (taxonomy boost, freshness), but the score it reports is always
the cosine. Every option is a field of `RankSettings`; docs/ranking.md describes them.

The steps, for one article:
1. Candidates: the `pool` nearest stored articles (more are fetched when too few survive).
2. Never the article itself, nor anything with its URL, nor an excluded URL.
3. Hard filters: type, minimum quality, published only, providers, since/until. These are
   what the caller asked for and are never relaxed.
4. Near-duplicates of the article itself (cosine >= `dedup_threshold`, or the same
   normalised title) are dropped: the same story is not "related", it is the story.
5. Greedy selection by adjusted score (MMR when `mmr_lambda` < 1), skipping a candidate
   that duplicates one already chosen. Within a duplicate group the one kept is given by
   `dedup_keep`: "earliest" published (the original report), or best "quality".
6. Soft constraints (date window, no newer articles, per-provider cap) apply first; when
   they leave fewer than `limit` items, the fallback ladder drops the provider cap, then the
   date constraints, so an article with enough eligible candidates always gets `limit` items.
7. Pinned URLs come first, in their order, and count towards `limit`.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

import numpy as np

from recs.articles import Article
from recs.errors import InvalidInput
from recs.index import exact_scores

DAY = 86_400.0
DEDUP_KEEP = ("earliest", "quality")
# Filters a request may set; build-time settings are the rest.
REQUEST_FILTERS = (
    "exclude_urls",
    "exclude_providers",
    "require_providers",
    "since",
    "until",
    "min_quality",
    "types",
    "published_only",
)


@dataclass(frozen=True)
class RankSettings:
    """Every ranking option. Defaults are the measured defaults of docs/quality.md."""

    limit: int = 5
    pool: int = 50
    dedup_threshold: float | None = 0.95
    dedup_titles: bool = True
    dedup_keep: Literal["earliest", "quality"] = "earliest"
    mmr_lambda: float = 1.0
    provider_cap: int | None = None
    half_life_days: float | None = None
    taxonomy_boost: float = 0.0
    window_days: float | None = None
    allow_newer: bool = True
    min_quality: float | None = None
    types: tuple[str, ...] = ()
    published_only: bool = False
    exclude_providers: tuple[str, ...] = ()
    require_providers: tuple[str, ...] = ()
    exclude_urls: tuple[str, ...] = ()
    since: float | None = None
    until: float | None = None

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.limit <= 1000:
            problems.append(f"limit must be between 1 and 1000, not {self.limit}")
        if not 1 <= self.pool <= 100_000:
            problems.append(f"pool must be between 1 and 100000, not {self.pool}")
        if self.dedup_threshold is not None and not 0.0 < self.dedup_threshold <= 1.0:
            problems.append(f"dedup_threshold must be in (0, 1], not {self.dedup_threshold}")
        if self.dedup_keep not in DEDUP_KEEP:
            problems.append(f"dedup_keep must be one of {', '.join(DEDUP_KEEP)}")
        if not 0.0 <= self.mmr_lambda <= 1.0:
            problems.append(f"mmr_lambda must be in [0, 1], not {self.mmr_lambda}")
        if self.provider_cap is not None and self.provider_cap < 1:
            problems.append(f"provider_cap must be at least 1, not {self.provider_cap}")
        for name in ("half_life_days", "window_days"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                problems.append(f"{name} must be a positive number of days, not {value}")
        if not (0.0 <= self.taxonomy_boost <= 1.0):
            problems.append(f"taxonomy_boost must be in [0, 1], not {self.taxonomy_boost}")
        if problems:
            raise InvalidInput("invalid ranking settings: " + "; ".join(problems))

    def fingerprint(self) -> str:
        """A stable text of the settings that shape stored lists (request filters excluded)."""
        data = {k: v for k, v in asdict(self).items() if k not in REQUEST_FILTERS}
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def with_options(self, **options: Any) -> RankSettings:
        """A copy with some options changed (unknown names are an error)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidInput(f"unknown ranking option(s): {', '.join(unknown)}")
        return replace(self, **options)

    @property
    def has_request_filters(self) -> bool:
        return any(getattr(self, name) != _NO_FILTERS[name] for name in REQUEST_FILTERS)


_NO_FILTERS = {name: getattr(RankSettings(), name) for name in REQUEST_FILTERS}
_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


def title_key(title: str) -> str:
    """A title for duplicate detection: case, accents, punctuation and spacing ignored."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    return _PUNCT.sub(" ", text.lower()).strip() or title.strip().lower()


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

    @classmethod
    def from_articles(cls, articles: Sequence[Article], vectors: np.ndarray) -> Catalog:
        def number(value: Any) -> float:
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            return float(value) if is_number else math.nan

        return cls(
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
        )

    def __len__(self) -> int:
        return len(self.urls)


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

    @classmethod
    def for_article(cls, article: Article, vector: np.ndarray) -> Query:
        return cls(
            vector=vector,
            url=article.url,
            title_key=title_key(article.title),
            published_ts=article.published_ts,
            tags=_tags(article.fields),
            pinned=article.pinned,
            excluded=article.excluded,
        )


@dataclass(frozen=True)
class Ranked:
    """A related list (row, cosine) and the lowest cosine of the candidates it looked at.

    `floor` is what incremental updates need: an article whose cosine with this one is
    below the floor cannot change this list. -inf means every article was looked at.
    """

    items: list[tuple[int, float]]
    floor: float


Search = Callable[[int], np.ndarray]  # k -> up to k candidate rows, best first (may hold -1)

SEARCH_MARGIN = 8


def rank(query: Query, catalog: Catalog, search: Search, settings: RankSettings) -> Ranked:
    """The related list of `query`: at most `settings.limit` (row, cosine) pairs."""
    n = len(catalog)
    limit = settings.limit
    pinned_rows = _pinned_rows(query, catalog, limit)
    pinned_scores = exact_scores(catalog.vectors, query.vector, pinned_rows)
    pinned = [(r, round(float(s), 6)) for r, s in zip(pinned_rows, pinned_scores, strict=True)]
    if len(pinned) >= limit:
        return Ranked(pinned, math.inf)  # pins fill the list: similarity cannot change it
    if n == 0:
        return Ranked([], -math.inf)
    excluded = {
        catalog.row_of[u] for u in query.excluded + settings.exclude_urls if u in catalog.row_of
    }
    excluded.update(pinned_rows)
    k = min(n, settings.pool + len(excluded) + 1)
    while True:
        rows = search(min(n, k + SEARCH_MARGIN))
        rows = np.unique(rows[rows >= 0])
        cosines = exact_scores(catalog.vectors, query.vector, rows)
        order = sorted(range(len(rows)), key=lambda i: (-cosines[i], catalog.urls[rows[i]]))[:k]
        rows, cosines = rows[order], cosines[order]
        everything = k >= n
        chosen = _select(
            query, catalog, rows, cosines, excluded, settings, limit - len(pinned_rows)
        )
        if len(chosen) >= limit - len(pinned_rows) or everything:
            break
        k = min(n, k * 4)
    floor = -math.inf if everything or not len(cosines) else float(cosines[-1])
    return Ranked(pinned + chosen, floor)


def _pinned_rows(query: Query, catalog: Catalog, limit: int) -> list[int]:
    rows: list[int] = []
    for url in query.pinned:
        row = catalog.row_of.get(url)
        if row is not None and url != query.url and row not in rows and url not in query.excluded:
            rows.append(row)
    return rows[:limit]


def _passes_hard(row: int, catalog: Catalog, s: RankSettings) -> bool:
    if s.types and catalog.types[row] not in s.types:
        return False
    if s.min_quality is not None and not catalog.quality[row] >= s.min_quality:
        return False
    if s.published_only and not catalog.published[row]:
        return False
    provider = catalog.providers[row]
    if s.exclude_providers and provider in {p.lower() for p in s.exclude_providers}:
        return False
    if s.require_providers and provider not in {p.lower() for p in s.require_providers}:
        return False
    ts = catalog.published_ts[row]
    if s.since is not None and not ts >= s.since:
        return False
    return not (s.until is not None and not ts <= s.until)


def _adjusted(
    query: Query, catalog: Catalog, rows: np.ndarray, cosines: np.ndarray, s: RankSettings
) -> np.ndarray:
    adjusted = cosines.copy()
    if s.taxonomy_boost and query.tags:
        for i, row in enumerate(rows):
            tags = catalog.tags[row]
            if tags:
                adjusted[i] += s.taxonomy_boost * len(query.tags & tags) / len(query.tags | tags)
    if s.half_life_days and query.published_ts is not None:
        gaps = np.abs(catalog.published_ts[rows] - query.published_ts) / DAY
        decay = np.where(np.isnan(gaps), 1.0, 0.5 ** (np.nan_to_num(gaps) / s.half_life_days))
        adjusted = adjusted * decay
    return adjusted


def _prefer(new: int, old: int, catalog: Catalog, keep: str) -> bool:
    """Whether duplicate `new` should replace the already chosen `old`."""
    if keep == "quality":
        new_q, old_q = catalog.quality[new], catalog.quality[old]
        return bool(not math.isnan(new_q) and (math.isnan(old_q) or new_q > old_q))
    new_ts, old_ts = catalog.published_ts[new], catalog.published_ts[old]
    return bool(not math.isnan(new_ts) and (math.isnan(old_ts) or new_ts < old_ts))


def _select(
    query: Query,
    catalog: Catalog,
    rows: np.ndarray,
    cosines: np.ndarray,
    excluded: set[int],
    s: RankSettings,
    want: int,
) -> list[tuple[int, float]]:
    if want <= 0:
        return []
    threshold = s.dedup_threshold
    keep = []
    for i, row in enumerate(rows):
        row = int(row)
        if row in excluded or catalog.urls[row] == query.url:
            continue
        if not _passes_hard(row, catalog, s):
            continue
        if threshold is not None and cosines[i] >= threshold:
            continue
        if s.dedup_titles and query.title_key and catalog.title_keys[row] == query.title_key:
            continue
        keep.append(i)
    if not keep:
        return []
    rows, cosines = rows[keep], cosines[keep]
    adjusted = _adjusted(query, catalog, rows, cosines, s)
    # Stable order: adjusted score, then URL.
    order = sorted(range(len(rows)), key=lambda i: (-adjusted[i], catalog.urls[rows[i]]))
    rows, cosines, adjusted = rows[order], cosines[order], adjusted[order]

    # The fallback ladder: each step keeps what stricter steps chose and fills up the rest.
    ladder = [(True, True), (False, True), (False, False)]
    chosen: list[int] = []
    for use_cap, use_dates in ladder:
        chosen = _greedy(query, catalog, rows, adjusted, s, want, use_cap, use_dates, chosen)
        if len(chosen) >= want:
            break
    return [(int(rows[i]), round(float(cosines[i]), 6)) for i in chosen]


def _date_ok(query: Query, ts: float, s: RankSettings) -> bool:
    if query.published_ts is None or math.isnan(ts):
        return True
    if not s.allow_newer and ts > query.published_ts:
        return False
    return s.window_days is None or abs(ts - query.published_ts) <= s.window_days * DAY


def _greedy(
    query: Query,
    catalog: Catalog,
    rows: np.ndarray,
    adjusted: np.ndarray,
    s: RankSettings,
    want: int,
    use_cap: bool,
    use_dates: bool,
    already: list[int],
) -> list[int]:
    """Indexes into rows: `already` plus more, chosen greedily with duplicate collapse and MMR."""
    chosen = list(already)
    taken = set(chosen)
    open_ = [
        i
        for i in range(len(rows))
        if i not in taken and (not use_dates or _date_ok(query, catalog.published_ts[rows[i]], s))
    ]
    vectors = catalog.vectors[rows].astype(np.float64)
    max_sim = np.full(len(rows), -1.0)
    per_provider: dict[str, int] = {}
    for i in chosen:
        provider = catalog.providers[int(rows[i])]
        if provider:
            per_provider[provider] = per_provider.get(provider, 0) + 1
        max_sim = np.maximum(max_sim, vectors @ vectors[i])
    lam = s.mmr_lambda
    while open_ and len(chosen) < want:
        if lam >= 1.0 or not chosen:
            pick = 0
        else:
            values = lam * adjusted[open_] - (1.0 - lam) * max_sim[open_]
            pick = int(np.argmax(values))  # first maximum keeps the stable order on ties
        i = open_.pop(pick)
        row = int(rows[i])
        provider = catalog.providers[row]
        if (
            use_cap
            and s.provider_cap
            and provider
            and per_provider.get(provider, 0) >= s.provider_cap
        ):
            continue
        sims = vectors[chosen] @ vectors[i] if chosen else np.zeros(0)
        duplicate_of = _duplicate_of(i, chosen, sims, rows, catalog, s)
        if duplicate_of is not None:
            old = chosen[duplicate_of]
            if _prefer(row, int(rows[old]), catalog, s.dedup_keep) and not any(
                _is_duplicate(i, other, rows, catalog, s) for other in chosen if other != old
            ):
                chosen[duplicate_of] = i
                max_sim = np.maximum(max_sim, vectors @ vectors[i])
            continue
        chosen.append(i)
        if provider:
            per_provider[provider] = per_provider.get(provider, 0) + 1
        if lam < 1.0:
            max_sim = np.maximum(max_sim, vectors @ vectors[i])
    return chosen


def _is_duplicate(i: int, j: int, rows: np.ndarray, catalog: Catalog, s: RankSettings) -> bool:
    a, b = int(rows[i]), int(rows[j])
    if s.dedup_titles and catalog.title_keys[a] == catalog.title_keys[b]:
        return True
    if s.dedup_threshold is None:
        return False
    return float(exact_scores(catalog.vectors, catalog.vectors[a], [b])[0]) >= s.dedup_threshold


def _duplicate_of(
    i: int, chosen: list[int], sims: np.ndarray, rows: np.ndarray, catalog: Catalog, s: RankSettings
) -> int | None:
    row = int(rows[i])
    for position, j in enumerate(chosen):
        if s.dedup_titles and catalog.title_keys[row] == catalog.title_keys[int(rows[j])]:
            return position
        if s.dedup_threshold is not None and sims[position] >= s.dedup_threshold:
            return position
    return None
