"""What ranking knows of every stored article (`Catalog`) and of the article asking (`Query`).

Built once per set of articles: each article's canonical URL, vector, normalised title
(for duplicate detection), provider, date, quality, type, published flag, language and
tags, by row, plus the lookups ranking uses (URL order for ties, title numbers, rows by
originalUrl).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from recs.articles import Article

DAY = 86_400.0

_NOT_WORD = re.compile(r"[\W_]+")


def title_key(title: str) -> str:
    """A title for duplicate detection: case, accents, punctuation and spacing ignored.

    Its NFKD form's ASCII letters and digits, lower case, with each run of anything else
    (non-word characters and underscores) one space, stripped; or the title lower-cased
    when nothing is left.
    """
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    return _NOT_WORD.sub(" ", ascii_text.lower()).strip() or title.strip().lower()


def topics_of(fields_: Any) -> frozenset[str]:
    """An article's topics, lower case (the `topics` field)."""
    topics = fields_.get("topics") or []
    return frozenset(str(t).strip().lower() for t in topics if str(t).strip())


def category_of(fields_: Any) -> str | None:
    """An article's category, lower case, or None."""
    category = fields_.get("category")
    return category.strip().lower() if isinstance(category, str) and category.strip() else None


def language_of(fields_: Any) -> str | None:
    """An article's language code as the field mapping derived it (recs.fieldmap), or None."""
    language = fields_.get("language")
    return language if isinstance(language, str) and language else None


def _tags(topics: frozenset[str], category: str | None) -> frozenset[str]:
    """Topics and category (as `category:NAME`): what the taxonomy boost compares."""
    return topics | {f"category:{category}"} if category else topics


def is_draft(fields_: Any) -> bool:
    """Whether an article is marked as not for readers yet (`published: false`, `draft: true`)."""
    return fields_.get("published") is False or fields_.get("draft") is True


def _provider(fields_: Any) -> str | None:
    provider = fields_.get("provider")
    if isinstance(provider, dict):
        name = provider.get("name") or provider.get("domain")
        if isinstance(name, str) and name.strip():
            return name.strip().lower()
    if isinstance(provider, str) and provider.strip():
        return provider.strip().lower()
    return None


def _number(value: Any) -> float:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if is_number else math.nan


class Facts(NamedTuple):
    """What ranking knows of one article.

    A named tuple, not a frozen dataclass: a build works out the facts of every article
    (10,000 in a 1% rebuild) and builds the catalog's columns as their transpose: 78 ms
    instead of 98 as a frozen dataclass (with `recs.ranked.Item`: docs/performance.md).
    """

    url: str
    title_key: str
    provider: str | None
    published_ts: float  # NaN when unknown
    quality: float  # NaN when unknown
    type: str | None
    draft: bool
    category: str | None
    language: str | None
    topics: frozenset[str]
    tags: frozenset[str]
    original: str | None  # originalUrl, when another
    references: tuple[str, ...]  # the URLs the article pins or excludes

    @classmethod
    def of(cls, article: Article) -> Facts:
        fields_ = article.fields
        kind = fields_.get("type")
        topics, category = topics_of(fields_), category_of(fields_)
        return cls(
            url=article.url,
            title_key=title_key(article.title),
            provider=_provider(fields_),
            published_ts=math.nan if article.published_ts is None else article.published_ts,
            quality=_number(fields_.get("quality")),
            type=kind if isinstance(kind, str) else None,
            draft=is_draft(fields_),
            category=category,
            language=language_of(fields_),
            topics=topics,
            tags=_tags(topics, category),
            original=article.original_url,
            references=article.pinned + article.excluded,
        )


# Each fact of an article and the Catalog column that holds it for every row.
COLUMNS = {
    "url": "urls",
    "title_key": "title_keys",
    "provider": "providers",
    "published_ts": "published_ts",
    "quality": "quality",
    "type": "types",
    "draft": "drafts",
    "category": "categories",
    "language": "languages",
    "topics": "topics",
    "tags": "tags",
    "original": "originals",
    "references": "references",
}
ARRAYS = frozenset({"published_ts", "quality"})  # float64 numpy columns (NaN: unknown)
LISTS = {fact: column for fact, column in COLUMNS.items() if fact not in ARRAYS}


@dataclass
class Catalog:
    """What ranking knows about every stored article, by row: each row's `Facts`, held in
    columns (`COLUMNS`), and the stored vectors."""

    vectors: np.ndarray
    urls: list[str]
    title_keys: list[str]
    providers: list[str | None]
    published_ts: np.ndarray
    quality: np.ndarray
    types: list[str | None]
    drafts: list[bool]
    categories: list[str | None]
    languages: list[str | None]
    topics: list[frozenset[str]]
    tags: list[frozenset[str]]
    originals: list[str | None]
    references: list[tuple[str, ...]]
    # The moment ranking judges dates by (a build's start): an article dated after it is
    # not recommended yet, and `max_age_days` counts back from it. None: no such rule.
    now: float | None = None
    row_of: dict[str, int] = field(default_factory=dict, repr=False)  # URL -> row

    def __post_init__(self) -> None:
        if not self.row_of:
            self.row_of = {url: row for row, url in enumerate(self.urls)}
        self.masks: dict[tuple[Any, ...], np.ndarray] = {}  # recs.scoring.eligible

    @classmethod
    def from_facts(
        cls, facts: Sequence[Facts], vectors: np.ndarray, now: float | None = None
    ) -> Catalog:
        columns: dict[str, Any] = {}
        transposed = zip(*facts, strict=True) if facts else ((),) * len(Facts._fields)
        for fact, values in zip(Facts._fields, transposed, strict=True):
            column = COLUMNS[fact]
            columns[column] = np.array(values, dtype=np.float64) if fact in ARRAYS else list(values)
        return cls(vectors=vectors, now=now, **columns).prepare()

    @classmethod
    def from_articles(
        cls, articles: Sequence[Article], vectors: np.ndarray, now: float | None = None
    ) -> Catalog:
        """The catalog of `articles` (row i is articles[i]), judging dates at `now`."""
        return cls.from_facts([Facts.of(a) for a in articles], vectors, now)

    def fact(self, row: int) -> Facts:
        """The facts of one row."""
        values = {fact: getattr(self, column)[row] for fact, column in COLUMNS.items()}
        values["published_ts"], values["quality"] = (
            float(values["published_ts"]),
            float(values["quality"]),
        )
        return Facts(**values)

    def patched(self, vectors: np.ndarray, rows: Mapping[int, Article]) -> Catalog:
        """This catalog with the articles of `rows` at their rows (replacing one, or added
        at the end) and `vectors` (all rows): the columns and the lookups are copied and
        patched, so an API write does not work out every article's facts again (in a
        20,000-article store, doing so took longer than ranking the lists it changed)."""
        columns: dict[str, Any] = {c: list(getattr(self, c)) for c in LISTS.values()}
        appended = sum(row >= len(self.urls) for row in rows)
        for name in ARRAYS:  # numpy columns stay arrays: copied once, with room for new rows
            columns[COLUMNS[name]] = np.concatenate(
                [getattr(self, COLUMNS[name]), np.full(appended, np.nan)]
            )
        title_id_of = dict(self.title_id_of)
        title_ids = np.concatenate([self.title_ids, np.zeros(appended, dtype=np.int64)])
        url_order = self.url_order.copy()
        for row, article in sorted(rows.items()):
            fact = Facts.of(article)
            if row == len(columns["urls"]):  # added at the end
                place = sum(url < fact.url for url in columns["urls"])  # its place by URL
                url_order[url_order >= place] += 1
                url_order = np.append(url_order, place)
                for name, column in LISTS.items():
                    columns[column].append(getattr(fact, name))
            else:  # a replaced article keeps its URL and its place
                for name, column in LISTS.items():
                    columns[column][row] = getattr(fact, name)
            for name in ARRAYS:
                columns[COLUMNS[name]][row] = getattr(fact, name)
            title_ids[row] = title_id_of.setdefault(fact.title_key, len(title_id_of))
        row_of = dict(self.row_of)
        row_of.update((article.url, row) for row, article in rows.items())
        curated = sorted(
            {r for r in self.curated if r not in rows}
            | {r for r in rows if columns["references"][r]}
        )
        by_original: dict[str, list[int]] = {}
        for original, found in self.rows_by_original.items():
            kept = [r for r in found if r not in rows]
            if kept:
                by_original[original] = kept
        for row in sorted(rows):
            original = columns["originals"][row]
            if original is not None:
                by_original.setdefault(original, []).append(row)
        for found in by_original.values():
            found.sort()
        catalog = type(self)(vectors=vectors, now=self.now, row_of=row_of, **columns)
        # Set, the cached properties are not computed again from every row.
        catalog.title_id_of = title_id_of
        catalog.title_ids = title_ids
        catalog.url_order = url_order
        catalog.curated = curated
        catalog.rows_by_original = by_original
        return catalog

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

    @cached_property
    def curated(self) -> list[int]:
        """Rows of the articles that pin or exclude other articles."""
        return [row for row, urls in enumerate(self.references) if urls]

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
    topics: frozenset[str] = frozenset()
    category: str | None = None
    language: str | None = None
    pinned: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    original_url: str | None = None

    @classmethod
    def for_row(cls, catalog: Catalog, row: int, article: Article) -> Query:
        """The query of stored row `row` (`article`), with the facts its catalog holds."""
        return cls(
            vector=catalog.vectors[row],
            url=article.url,
            original_url=article.original_url,
            title_key=catalog.title_keys[row],
            published_ts=article.published_ts,
            tags=catalog.tags[row],
            topics=catalog.topics[row],
            category=catalog.categories[row],
            language=catalog.languages[row],
            pinned=article.pinned,
            excluded=article.excluded,
        )

    @classmethod
    def for_article(cls, article: Article, vector: np.ndarray) -> Query:
        """The query of an article (stored or a draft) and its vector: its facts worked out
        as a catalog works them out, so the two never differ."""
        return cls.for_row(
            Catalog.from_articles([article], np.asarray(vector)[None, :]), 0, article
        )
