"""Articles: the `Article` model, the rules its fields must follow, and its embedded text.

An article has a canonical URL (its identity), a title and an excerpt (required; their
"title. excerpt" is what is embedded), and every other front-matter field as written
(kept, never invented). `article_from_data` validates fields from any source (a file, a
`.jsonl` line, an API body, a draft) with one set of rules; recs.corpus reads files.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from recs.errors import InvalidInput
from recs.frontmatter import ArticleError, check_shape
from recs.options import ReadOptions
from recs.urls import canonical_url

# Field order of a related entry, as in the seed article.
ENTRY_FIELDS = (
    "title",
    "excerpt",
    "publishedDateTime",
    "webUrl",
    "type",
    "provider",
    "quality",
    "images",
)


# Front-matter keys that hold recs' own output (an article's related list): never an input,
# and not kept in an Article's fields (on a regenerated site they are most of the bytes).
OUTPUT_KEYS = frozenset({"related"})


def input_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """An article's fields less its own related list, which cannot change any list."""
    return {k: v for k, v in fields.items() if k not in OUTPUT_KEYS}


def embed_text(title: str, excerpt: str) -> str:
    """The text that is embedded: "<title>. <excerpt>", or the title alone.

    Runs of whitespace in each part collapse to one space and both parts are stripped,
    so re-wrapping a line in a file does not change the vector.
    """
    title = " ".join(title.split())
    excerpt = " ".join(excerpt.split())
    return f"{title}. {excerpt}" if excerpt else title


def text_hash(text: str) -> str:
    """The embedding cache key of a text (with the model id)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def parse_datetime(value: str) -> float:
    """Seconds since the epoch of an ISO 8601 date or date-time; naive values are UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date or date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(frozen=True)
class Article:
    """One article, as read from a file. `url` is its canonical identity."""

    url: str
    title: str
    excerpt: str
    fields: Mapping[str, Any]
    source: str
    line: int | None = None
    original_url: str | None = None
    published_ts: float | None = None
    pinned: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    body: str = field(default="", repr=False)

    @functools.cached_property
    def text(self) -> str:
        return embed_text(self.title, self.excerpt)

    @functools.cached_property
    def text_hash(self) -> str:
        return text_hash(self.text)

    def with_text_hash(self, value: str) -> Article:
        """This article, with `value` as its text hash unless it has one already: for a
        reader that stored the hash of the same text (a generation's row). `text_hash` is
        a cached_property, which keeps its value in the instance's __dict__; the article
        itself is not changed."""
        self.__dict__.setdefault("text_hash", value)
        return self

    @property
    def location(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source

    def entry(self) -> dict[str, Any]:
        """The article's short copy for other articles' related lists (seed key order).

        Fields the article lacks are left out, never invented.
        """
        return {key: self.fields[key] for key in ENTRY_FIELDS if key in self.fields}


# --- validation -------------------------------------------------------------------------

# Characters no article text needs and that change what a reader sees: C0 and C1 control
# characters (a terminal obeys ESC, a page may drop NUL) and the bidirectional embeddings,
# overrides and isolates U+202A-U+202E and U+2066-U+2069, which reorder the text around
# them. An excerpt may hold tabs and line breaks; the other fields are single lines.
_BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"
_UNSAFE_IN_EXCERPT = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI_CONTROLS}]")
_UNSAFE_IN_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI_CONTROLS}]")
# The fields recs reads or copies into related lists; other fields are stored, never served.
LINE_FIELDS = ("title", "type", "category", "publishedDateTime", "webUrl", "originalUrl")
NESTED_TEXT_FIELDS = ("provider", "images", "topics")


def unsafe_text(text: str, multiline: bool = False) -> str | None:
    """Why `text` cannot be article text (a control or bidirectional formatting
    character), or None when it can."""
    match = (_UNSAFE_IN_EXCERPT if multiline else _UNSAFE_IN_LINE).search(text)
    if match is None:
        return None
    char = match.group()
    kind = "control character" if ord(char) <= 0x9F else "bidirectional control"
    return (
        f"holds the {kind} U+{ord(char):04X} at character {match.start() + 1}; "
        "remove it (control characters and bidirectional overrides are not allowed)"
    )


def _nested_text(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, text) of every text value and mapping key inside `value`."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield f"{path} (a key)", key
            yield from _nested_text(item, f"{path}.{key}")
    elif isinstance(value, list):
        for number, item in enumerate(value):
            yield from _nested_text(item, f"{path}[{number}]")


def is_web_url(url: str) -> bool:
    """Whether `url` is an absolute http:// or https:// URL with a host."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def key_line(key: str, text: str | None, first_line: int) -> int | None:
    if text is None:
        return None
    # `key:` (YAML), `key =` (TOML) at the start of a line, or `"key":` (JSON) indented
    name = re.escape(key)
    pattern = rf"^(?:{name}|[\"']{name}[\"']|[ \t]+\"{name}\")[ \t]*[:=]"
    match = re.search(pattern, text, re.MULTILINE)
    return first_line + text.count("\n", 0, match.start()) if match else None


def _url_list(data: Mapping[str, Any], key: str, fail: Any) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        fail(key, "must be a list of URLs")
    urls: list[str] = []
    for item in value:
        try:
            urls.append(canonical_url(item))
        except InvalidInput as error:
            fail(key, str(error))
    return tuple(urls)


def article_from_data(
    data: Any,
    source: str,
    line: int | None = None,
    yaml_text: str | None = None,
    first_line: int = 1,
    body: str = "",
    pinned_key: str = "relatedPinned",
    excluded_key: str = "relatedExclude",
    fallback_url: str | None = None,
) -> Article:
    """Validate one article's fields and build the Article, or raise ArticleError."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise ArticleError(f"front matter must be a mapping of fields, not {kind}", line)

    def fail(key: str, reason: str, line_key: str | None = None) -> None:
        where = line if line is not None else key_line(line_key or key, yaml_text, first_line)
        raise ArticleError(f"{key}: {reason}", where)

    for key in ("title", "excerpt"):
        if key not in data or data[key] is None:
            raise ArticleError(f"missing required field {key!r}", line)
        if not isinstance(data[key], str):
            fail(key, f"must be text, not {type(data[key]).__name__}")
    title, excerpt = data["title"], data["excerpt"]
    if not title.strip():
        fail("title", "is empty")

    for key in ("webUrl", "originalUrl", "type", "category"):
        if key in data and data[key] is not None and not isinstance(data[key], str):
            fail(key, f"must be text, not {type(data[key]).__name__}")
    quality = data.get("quality")
    if quality is not None and (isinstance(quality, bool) or not isinstance(quality, int | float)):
        fail("quality", f"must be a number, not {type(quality).__name__}")
    published = data.get("published")
    if published is not None and not isinstance(published, bool):
        fail("published", f"must be true or false, not {published!r}")

    # One rule for every way in: article files, .jsonl lines, PUT /articles, POST /related;
    # before any other check of a value's text, so that check never echoes such a character.
    reason = unsafe_text(excerpt, multiline=True)
    if reason:
        fail("excerpt", reason)
    for key in LINE_FIELDS:
        if isinstance(data.get(key), str) and (reason := unsafe_text(data[key])):
            fail(key, reason)
    for key in NESTED_TEXT_FIELDS:
        for path, text in _nested_text(data.get(key), key):
            if reason := unsafe_text(text):
                fail(path, reason, line_key=key)

    published_ts = None
    raw_date = data.get("publishedDateTime")
    if raw_date is not None:
        if not isinstance(raw_date, str):
            fail("publishedDateTime", f"must be an ISO 8601 date-time, not {raw_date!r}")
        try:
            published_ts = parse_datetime(raw_date)
        except ValueError as error:
            fail("publishedDateTime", str(error))

    provider = data.get("provider")
    if provider is not None and (
        not isinstance(provider, dict)
        or not all(isinstance(provider.get(k, ""), str) for k in ("name", "domain"))
    ):
        fail("provider", "must be a mapping with text fields 'name' and 'domain'")
    images = data.get("images")
    if images is not None and (
        not isinstance(images, list)
        or not all(isinstance(i, dict) and isinstance(i.get("url"), str) for i in images)
    ):
        fail("images", "must be a list of mappings, each with a text 'url'")
    for key in ("topics",):
        value = data.get(key)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            fail(key, "must be a list of text values")

    for number, image in enumerate(images or ()):
        if not is_web_url(image["url"]):
            fail(
                f"images[{number}].url",
                f"{image['url'][:200]!r} is not an absolute http:// or https:// URL",
                line_key="images",
            )

    url = original = None
    if data.get("webUrl"):
        try:
            url = canonical_url(data["webUrl"])
        except InvalidInput as error:
            fail("webUrl", str(error))
    if data.get("originalUrl"):
        try:
            original = canonical_url(data["originalUrl"])
        except InvalidInput as error:
            fail("originalUrl", str(error))
    if url is None:
        url = original or fallback_url
    if url is None:
        raise ArticleError(
            "no 'webUrl' or 'originalUrl' to identify the article, and no site rules to "
            "make one: give the site's base URL (`recs init SITE_DIR`, recs.toml or "
            "RECS_BASE_URL)",
            line,
        )

    return Article(
        url=url,
        title=title,
        excerpt=excerpt,
        fields=input_fields(data),
        source=source,
        line=line,
        original_url=original if original != url else None,
        published_ts=published_ts,
        pinned=_url_list(data, pinned_key, fail),
        excluded=_url_list(data, excluded_key, fail),
        body=body,
    )


def same_urls(a: Sequence[Article], b: Sequence[Article]) -> bool:
    """Whether `a` and `b` hold articles of the same URLs in the same order (same rows)."""
    return len(a) == len(b) and all(x.url == y.url for x, y in zip(a, b, strict=True))


def alias_map(articles: Sequence[Article]) -> dict[str, str]:
    """originalUrl -> url for every article whose originalUrl is not another article's URL
    (nor the originalUrl of an article before it): see `ignored_originals`."""
    return _aliases(articles)[0]


def ignored_originals(articles: Sequence[Article]) -> list[str]:
    """One notice per originalUrl that cannot find its article, because it is another
    article's own URL or an earlier article's originalUrl too."""
    return _aliases(articles)[1]


def _aliases(articles: Sequence[Article]) -> tuple[dict[str, str], list[str]]:
    owner = {a.url: a for a in articles}
    aliases: dict[str, str] = {}
    ignored: list[str] = []
    for article in articles:
        original = article.original_url
        if not original:
            continue
        if original in owner:
            other = owner[original].location
            ignored.append(
                f"{article.location}: originalUrl {original} is the URL of {other}; "
                "it finds that article, not this one"
            )
        elif original in aliases:
            first = owner[aliases[original]].location
            ignored.append(
                f"{article.location}: originalUrl {original} is also the originalUrl of "
                f"{first}; it finds that article, not this one"
            )
        else:
            aliases[original] = article.url
    return aliases, ignored


def article_from_request(
    fields: Mapping[str, Any],
    source: str,
    read: ReadOptions,
    fallback_url: str | None = None,
) -> Article:
    """An article sent to the service (a write, a draft): the checks of a file's front
    matter (shape, size, text) and the same field rules, or InvalidInput saying why."""
    try:
        check_shape(dict(fields))  # depth, size, text that has no UTF-8 form
        return article_from_data(
            dict(fields),
            source,
            pinned_key=read.pinned_key,
            excluded_key=read.excluded_key,
            fallback_url=fallback_url,
        )
    except ArticleError as error:
        raise InvalidInput(f"invalid article: {error.reason}") from None
