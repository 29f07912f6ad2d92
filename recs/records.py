"""The one stored form of an Article, shared by the store, the parse cache and the journal.

An article is kept as its *record* (everything an Article holds but its fields and body,
as JSON-ready values) plus its *fields* as JSON text (`fields_text`, key order as
written). `article_from_record` is the one way back. Equal texts are equal fields, so a
build can tell an article it has in memory from the stored one without parsing either.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from recs.articles import Article

# The record's keys, in the order of a generation's `articles` columns after `url`.
RECORD_KEYS = ("url", "source", "line", "original_url", "published_ts", "pinned", "excluded")


def fields_text(fields: Mapping[str, Any]) -> str:
    """An article's fields as the store and the parse cache keep them (JSON, key order as
    written): equal texts are equal fields."""
    return json.dumps(fields, ensure_ascii=False)


def record(article: Article) -> dict[str, Any]:
    """An article's record: JSON-ready values of everything but its fields and body."""
    return {
        "url": article.url,
        "source": article.source,
        "line": article.line,
        "original_url": article.original_url,
        "published_ts": article.published_ts,
        "pinned": list(article.pinned),
        "excluded": list(article.excluded),
    }


def record_text(article: Article) -> str:
    """An article's record as JSON text (the parse cache's column)."""
    values = record(article)
    return json.dumps([values[key] for key in RECORD_KEYS], ensure_ascii=False)


def article_from_record(values: Mapping[str, Any] | Sequence[Any], fields: Any) -> Article:
    """The Article of a record (a mapping, or its values in RECORD_KEYS order) and its
    parsed fields. A value that is not what recs writes raises KeyError, TypeError or
    ValueError, which readers turn into their own "damaged" error."""
    if not isinstance(values, Mapping):
        values = dict(zip(RECORD_KEYS, values, strict=True))
    if not isinstance(fields, dict):
        raise TypeError("stored fields are not a mapping")
    return Article(
        url=values["url"],
        title=fields["title"],
        excerpt=fields["excerpt"],
        fields=fields,
        source=values["source"],
        line=values.get("line"),
        original_url=values.get("original_url"),
        published_ts=values.get("published_ts"),
        pinned=tuple(values.get("pinned") or ()),
        excluded=tuple(values.get("excluded") or ()),
    )


def urls_text(urls: tuple[str, ...]) -> str:
    """Pinned or excluded URLs as a generation's `articles` table keeps them. Most
    articles have none: "[]" is written without json.dumps, which took 22 ms of the 20,000
    calls that loading a 10,000-article store makes (about 1.5% of a 1% rebuild; with
    `stored_record`'s tuple, 34 ms, 2.3%)."""
    return json.dumps(list(urls)) if urls else "[]"


def stored_record(article: Article) -> tuple[Any, ...]:
    """An article's record as a generation's `articles` table keeps it: `record`'s values
    in RECORD_KEYS order, pinned and excluded as `urls_text`."""
    return (
        article.url,
        article.source,
        article.line,
        article.original_url,
        article.published_ts,
        urls_text(article.pinned),
        urls_text(article.excluded),
    )


# Articles already in memory, by URL, each with its fields as `fields_text` gives them.
Known = Mapping[str, tuple[str, Article]]


def known_article(values: Sequence[Any], fields: str, known: Known) -> Article | None:
    """The Article of `known` whose record is `values` (as `stored_record` gives it) and
    whose fields text is `fields`, or None.

    A build has most of a store's articles in memory already (read through the parse
    cache); taking those instead of parsing each stored row's fields again was measured to
    cut loading a 10,000-article store from 0.25 to 0.16 s (a 2.8 s rebuild after editing
    100 articles: 3%).
    """
    hit = known.get(values[0])
    if hit is None or hit[0] != fields:
        return None
    return hit[1] if tuple(values) == stored_record(hit[1]) else None
