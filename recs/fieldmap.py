"""What each field an article needs is read from: the mapping from a site's own front matter.

`derive` applies a `FieldMap` (and the site's `UrlRules`) to one file's front matter and
body. Each field is the first of its keys the file holds (docs/sites.md):

- title: `title`;
- excerpt: `excerpt`, `description`, `summary`, `subtitle`; else the body's first
  paragraph of prose (Markdown, HTML and Hugo/Liquid/Nunjucks tags stripped; text before
  a `<!--more-->` divider when there is one), cut to EXCERPT_CHARS at a word;
- date: `publishedDateTime`, `date`, `publishDate`, `pubDate` (ISO 8601, or Jekyll's
  `2024-01-05 10:00:00 +0100`); else a Jekyll or Eleventy file name's `YYYY-MM-DD-`;
- topics: every value of `topics`, `tags`, `categories` and `keywords`, in that order,
  each once;
- draft: `draft` (true or false);
- language: `language`, `lang`, `locale`, `inLanguage` (a BCP 47 tag, kept as its primary
  subtag: `de` for `de-CH`; a value that is no tag is left out); else, for a multilingual
  model, detected from the title and excerpt (recs.languages);
- URL: `webUrl`, else `originalUrl` (as always), else the site's permalink rules
  (recs.permalinks).

The article keeps its front matter as written, and the well-known keys the rest of recs
reads (`title`, `excerpt`, `publishedDateTime`, `webUrl`, `topics`, `draft`,
`language`, `images`)
hold the values derived: for a file in the seed's own format every one of them is already
what it writes, so nothing changes. A site's `images` written as paths or URLs (Hugo's
`images = ["cover.jpg"]`) become `[{url: ABSOLUTE}]` on the site's base URL (in a
site with URL rules; elsewhere `images` must be the seed's list of mappings).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from recs.articles import is_web_url, parse_datetime
from recs.frontmatter import ArticleError
from recs.languages import detect, language_code
from recs.options import ReadOptions
from recs.permalinks import POST_NAME, page_url

EXCERPT_CHARS = 400
MORE = re.compile(r"<!--\s*more\s*-->", re.IGNORECASE)
_JEKYLL_DATE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[ T](\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(Z|[-+]\d{2}:?\d{2})?$"
)
_PARAGRAPHS = re.compile(r"\n[ \t]*\n")
_FENCED = re.compile(r"^(```|~~~)[\s\S]*?^\1[^\n]*$", re.MULTILINE)
_TAGS = re.compile(r"\{\{[<%][\s\S]*?[>%]\}\}|\{%[\s\S]*?%\}|\{\{[\s\S]*?\}\}|\{#[\s\S]*?#\}")
_COMMENT = re.compile(r"<!--[\s\S]*?-->")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)|!\[[^\]]*\]\[[^\]]*\]")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)|\[([^\]]+)\]\[[^\]]*\]")
_FOOTNOTE = re.compile(r"\[\^[^\]]+\]")
_AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_EMPHASIS = re.compile(r"(\*{1,3}|_{1,3}|~~)(?=\S)([\s\S]*?\S)\1")
_CODE = re.compile(r"`+([^`]*)`+")
_NOT_PROSE = re.compile(r"^\s*(#|\||-{3,}\s*$|\*{3,}\s*$|_{3,}\s*$|[-*+]\s|\d+[.)]\s|<|\[\^)")
_LETTERS = re.compile(r"[^\W\d_]{2}")


@dataclass(frozen=True)
class Pick:
    """One derived field: its value and the rule that picked it (`--explain-fields`)."""

    field: str
    value: Any
    rule: str


def _strip_inline(text: str) -> str:
    text = _IMAGE.sub("", text)
    text = _LINK.sub(lambda m: m.group(1) or m.group(2), text)
    text = _FOOTNOTE.sub("", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _HTML_TAG.sub("", text)
    text = _CODE.sub(r"\1", text)
    for _ in range(3):  # nested emphasis: ***a*** and **_a_**
        text = _EMPHASIS.sub(r"\2", text)
    text = re.sub(r"^\s*>\s?", "", text, flags=re.MULTILINE)  # a quotation's marks
    text = re.sub(r"\\([\\`*_{}\[\]()#+\-.!])", r"\1", text)  # Markdown escapes
    return " ".join(html.unescape(text).split())


def first_paragraph(body: str) -> str:
    """The body's first paragraph of prose, as plain text, cut to EXCERPT_CHARS at a word
    (with "…"); "" when the body has none."""
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    more = MORE.search(text)
    if more:
        text = text[: more.start()]
    text = _FENCED.sub("\n", text)
    text = _COMMENT.sub("", _TAGS.sub("", text))
    for block in _PARAGRAPHS.split(text):
        if not block.strip() or _NOT_PROSE.match(block):
            continue
        if re.match(r"^(    |\t)", block):  # indented code
            continue
        plain = _strip_inline(block)
        if not _LETTERS.search(plain):
            continue
        if len(plain) <= EXCERPT_CHARS:
            return plain
        cut = plain[:EXCERPT_CHARS].rsplit(" ", 1)[0].rstrip(",;:.-–— ")
        return cut + "…"
    return ""


def iso_date(value: str) -> str | None:
    """A date as sites write it, in strict ISO 8601 (`2024-01-05 10:00:00 +0100`, Jekyll's
    form, becomes `2024-01-05T10:00:00+01:00`); other ISO texts stay as written."""
    text = value.strip()
    match = _JEKYLL_DATE.match(text)
    if match:
        day, clock, zone = match.groups()
        hour, rest = clock.split(":", 1)
        clock = f"{int(hour):02d}:{rest}" + ("" if rest.count(":") else ":00")
        if zone and zone != "Z" and ":" not in zone:
            zone = zone[:3] + ":" + zone[3:]
        text = f"{day}T{clock}{zone or ''}"
    try:
        parse_datetime(text)
    except ValueError:
        return None
    return text


def _first(data: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str, Any] | None:
    for key in keys:
        value = data.get(key)
        if value is not None and value != "":
            return key, value
    return None


def _topics(data: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(every taxonomy value, each once, in key order; the keys that gave some)."""
    values: list[str] = []
    used: list[str] = []
    for key in keys:
        raw = data.get(key)
        items = [raw] if isinstance(raw, str | int | float) and not isinstance(raw, bool) else raw
        if not isinstance(items, list):
            continue
        found = [str(i) for i in items if isinstance(i, str | int | float) and str(i).strip()]
        if found:
            used.append(key)
        values.extend(v for v in found if v not in values)
    return values, used


def _images(value: Any, base: str) -> list[dict[str, str]] | None:
    """A site's own image list (paths or URLs) as the seed's shape, or None when the value
    is already that shape (or nothing recs knows)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        return None
    absolute = [urljoin(base, i) for i in items]
    return [{"url": url} for url in absolute if is_web_url(url)]


def derive(data: Any, body: str, source: str, read: ReadOptions) -> tuple[Any, list[Pick]]:
    """The front matter with the well-known keys holding what the mapping derives, and
    how each was picked. Anything but a mapping is given back as is (the article's own
    validation says what is wrong); ArticleError for a date or URL that cannot be made."""
    if not isinstance(data, dict):
        return data, []
    fields = read.fields
    out = dict(data)
    picks: list[Pick] = []

    title_pick = _first(data, fields.title)
    if title_pick is not None:
        out["title"] = title_pick[1]
        picks.append(Pick("title", title_pick[1], f"key `{title_pick[0]}`"))
    title: str = out["title"] if isinstance(out.get("title"), str) else ""

    excerpt_pick = _first(data, fields.excerpt)
    if excerpt_pick is not None:
        out["excerpt"] = excerpt_pick[1]
        picks.append(Pick("excerpt", excerpt_pick[1], f"key `{excerpt_pick[0]}`"))
    elif fields.excerpt_from_body and (paragraph := first_paragraph(body)):
        out["excerpt"] = paragraph
        picks.append(Pick("excerpt", paragraph, "the body's first paragraph"))
    elif "excerpt" not in data:
        keys = ", ".join(fields.excerpt)
        tail = " or a first paragraph in the body" if fields.excerpt_from_body else ""
        raise ArticleError(f"missing required field 'excerpt' (one of {keys}{tail})")

    date: str | None = None
    date_pick = _first(data, fields.date)
    if date_pick is not None:
        key, value = date_pick
        date = iso_date(value) if isinstance(value, str) else None
        if date is None and key != "publishedDateTime":
            raise ArticleError(f"{key}: {value!r} is not an ISO 8601 date or date-time")
        if date is not None:
            out["publishedDateTime"] = date
            picks.append(Pick("date", date, f"key `{key}`"))
    elif read.urls is not None and read.urls.generator in ("jekyll", "eleventy"):
        named = POST_NAME.match(source.rsplit("/", 1)[-1])
        if named:
            year, month, day = (int(part) for part in named.groups()[:3])
            date = f"{year:04d}-{month:02d}-{day:02d}"
            out["publishedDateTime"] = date
            picks.append(Pick("date", date, "the file name's date"))

    topics, used = _topics(data, fields.topics)
    if topics:
        out["topics"] = topics
        picks.append(Pick("topics", topics, "keys " + ", ".join(f"`{k}`" for k in used)))

    draft_pick = _first(data, fields.draft)
    if draft_pick is not None:
        key, value = draft_pick
        draft = value is True or (isinstance(value, str) and value.strip().lower() == "true")
        out["draft"] = draft
        picks.append(Pick("draft", draft, f"key `{key}`"))

    language_pick = _first(data, fields.language)
    declared = language_code(language_pick[1]) if language_pick is not None else None
    if language_pick is not None and declared is not None:
        out["language"] = declared
        picks.append(Pick("language", declared, f"key `{language_pick[0]}`"))
    elif language_pick is not None:  # a name such as "German" says nothing to a filter
        out.pop("language", None)
        picks.append(Pick("language", None, f"key `{language_pick[0]}` is not a language tag"))
    if declared is None and read.detect_language:
        excerpt = out["excerpt"] if isinstance(out.get("excerpt"), str) else ""
        detected = detect(f"{title}. {excerpt}")
        if detected is not None:
            out["language"] = detected
            picks.append(Pick("language", detected, "detected from the title and excerpt"))

    if read.urls is not None:  # a site's own images; the seed's shape is checked as written
        images = _images(data.get("images"), read.urls.base_url)
        if images is not None:
            out["images"] = images

    url_pick = _first(data, fields.url)
    if url_pick is not None:
        out["webUrl"] = url_pick[1]
        picks.append(Pick("url", url_pick[1], f"key `{url_pick[0]}`"))
    elif data.get("originalUrl"):
        picks.append(Pick("url", data["originalUrl"], "key `originalUrl`"))
    elif read.urls is not None and read.urls.generator != "none":
        url, rule = page_url(read.urls, source, data, date, title)
        out["webUrl"] = url
        picks.append(Pick("url", url, rule))
    return out, picks
