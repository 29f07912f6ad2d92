"""Articles: find and parse article files (read only).

An article file is YAML front matter between two `---` lines, then an optional body
(kept, never embedded). A `.jsonl` file holds one article object per line with the same
field names. `title` and `excerpt` are required, every other field is optional; a file
that cannot be used becomes a `Problem` (path, line, reason) and the rest still loads.
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import json
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from recs.errors import InvalidInput
from recs.frontmatter import (
    ArticleError,
    FrontMatter,
    check_shape,
    find_front_matter,
    load_yaml,
)
from recs.urls import canonical_url

ARTICLE_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".html", ".htm", ".yaml", ".yml"})
JSONL_SUFFIX = ".jsonl"
MAX_FILE_BYTES = 1_000_000
MAX_PROBLEMS_PER_FILE = 100  # of one .jsonl file; the rest are counted
TEMP_PREFIX = ".recs-tmp-"
# A file's (size, mtime, ctime, inode) in nanoseconds: any write moves its ctime.
FileStat = tuple[int, int, int, int]
# How old a file's timestamps must be, when it is read, for its stat to vouch for its bytes
# later: more than the coarsest file timestamp (2 s on FAT) and the kernel's clock tick.
SETTLED_NS = 3_000_000_000


@dataclass(frozen=True)
class ReadOptions:
    """How article files are read: everything parsing depends on besides a file's bytes
    (the parse cache is keyed by it, `recs.filecache.signature`)."""

    pinned_key: str = "relatedPinned"  # RECS_PINNED_KEY
    excluded_key: str = "relatedExclude"  # RECS_EXCLUDED_KEY
    max_file_bytes: int = MAX_FILE_BYTES  # RECS_MAX_FILE_BYTES


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


def fields_text(fields: Mapping[str, Any]) -> str:
    """An article's fields as the store and the parse cache keep them (JSON, key order as
    written): equal texts are equal fields."""
    return json.dumps(fields, ensure_ascii=False)


def input_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """An article's fields less its own related list, which cannot change any list."""
    return {k: v for k, v in fields.items() if k not in OUTPUT_KEYS}


# Characters a line of output must not carry as they are: C0 and C1 controls (a newline
# would start a forged line, ESC a terminal sequence), DEL, and bidi controls, which
# reorder what a terminal shows.
_UNPRINTABLE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)


def one_line(text: str) -> str:
    """`text` safe to print as part of one line: each control, bidi control or undecodable
    byte (a surrogate escape from a file name) as a backslash escape."""
    if text.isprintable():
        return text
    escaped = _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode(), text)
    return escaped.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True)
class Problem:
    """Why one file (or one line of a .jsonl file) was not used."""

    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        """One line, whatever the file's name or the reason holds."""
        where = f"{self.path}:{self.line}" if self.line else self.path
        return one_line(f"{where}: {self.reason}")


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
        """This article, with the text hash stored beside it (not computed again)."""
        self.__dict__["text_hash"] = value
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


def _line_of(key: str, text: str | None, first_line: int) -> int | None:
    if text is None:
        return None
    match = re.search(rf"^{re.escape(key)}\s*:", text, re.MULTILINE)
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
        where = line if line is not None else _line_of(line_key or key, yaml_text, first_line)
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
        raise ArticleError("no 'webUrl' or 'originalUrl' to identify the article", line)

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


def _decode(raw: bytes) -> str:
    if b"\x00" in raw[:8192]:
        raise ArticleError("binary file (contains NUL bytes), not an article")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise ArticleError(
            f"not UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start}); "
            "save the file as UTF-8",
            line,
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def _front_matter(raw: bytes) -> tuple[Any, str, FrontMatter, str]:
    """(parsed front matter, its YAML text, where it is, the decoded file) of a file's bytes."""
    if not raw.strip():
        raise ArticleError("empty file")
    text = _decode(raw)
    fm = find_front_matter(text)
    yaml_text = text[fm.start : fm.end]
    return load_yaml(yaml_text, fm.first_line), yaml_text, fm, text


def read_front_matter(raw: bytes) -> Any:
    """The front matter of an article file's bytes, as written: its `related:` block too,
    which the Article parsed from the same bytes leaves out."""
    return _front_matter(raw)[0]


def parse_article_text(raw: bytes, source: str, read: ReadOptions = ReadOptions()) -> Article:
    """Parse the bytes of one front-matter article file."""
    data, yaml_text, fm, text = _front_matter(raw)
    return article_from_data(
        data,
        source,
        yaml_text=yaml_text,
        first_line=fm.first_line,
        body=text[fm.body :],
        pinned_key=read.pinned_key,
        excluded_key=read.excluded_key,
        fallback_url=None,
    )


def _lines(handle: BinaryIO, limit: int, digest: Any) -> Iterator[bytes | int]:
    """The lines of a binary stream (LF, CRLF or CR endings), reading at most about `limit`
    bytes at a time; a line longer than `limit` is given as its length and never held."""
    first = True
    while True:
        chunk = handle.readline(limit + 1)
        if not chunk:
            return
        digest.update(chunk)
        if first and chunk.startswith(b"\xef\xbb\xbf"):
            chunk = chunk[3:]
        first = False
        if len(chunk.rstrip(b"\r\n")) > limit:
            length = len(chunk)
            while not chunk.endswith(b"\n"):
                chunk = handle.readline(limit + 1)
                if not chunk:
                    break
                digest.update(chunk)
                length += len(chunk)
            yield length
            continue
        yield from chunk.splitlines()


def parse_jsonl(
    raw: bytes | BinaryIO,
    source: str,
    read: ReadOptions = ReadOptions(),
    digest: Any = None,
) -> tuple[list[Article], list[Problem]]:
    """Parse a .jsonl file (bytes or a binary stream): one article per line.

    Bad lines become problems (the first MAX_PROBLEMS_PER_FILE, then one line counting the
    rest). Read as a stream, memory holds one line of at most `read.max_file_bytes` at a
    time; `digest` (a hashlib object) is fed every byte read.
    """
    max_line_bytes = read.max_file_bytes
    handle = io.BytesIO(raw) if isinstance(raw, bytes) else raw
    articles: list[Article] = []
    problems: list[Problem] = []
    unlisted = 0
    lines = _lines(handle, max_line_bytes, digest or hashlib.sha256())
    for number, line_bytes in enumerate(lines, start=1):
        try:
            if isinstance(line_bytes, int):
                raise ArticleError(
                    f"line is {line_bytes:,} bytes; an article may have at most "
                    f"{max_line_bytes:,} (RECS_MAX_FILE_BYTES)"
                )
            if not line_bytes.strip():
                continue
            try:
                data = json.loads(line_bytes.decode("utf-8"))
            except UnicodeDecodeError:
                raise ArticleError("not UTF-8; save the file as UTF-8") from None
            except (json.JSONDecodeError, RecursionError) as error:
                raise ArticleError(f"invalid JSON: {error}") from None
            check_shape(data)
            articles.append(
                article_from_data(
                    data,
                    source,
                    line=number,
                    pinned_key=read.pinned_key,
                    excluded_key=read.excluded_key,
                )
            )
        except ArticleError as error:
            if len(problems) < MAX_PROBLEMS_PER_FILE:
                problems.append(Problem(source, number, error.reason))
            else:
                unlisted += 1
    if unlisted:
        problems.append(Problem(source, None, f"{unlisted:,} more bad lines (not listed)"))
    return articles, problems


# --- corpus -----------------------------------------------------------------------------


def _walk(root: Path, problems: list[Problem]) -> Iterator[tuple[str, str]]:
    """Every candidate file under root as (path, path relative to root with "/"), sorted,
    following symlinks but never looping. Plain strings: 10,000 files' worth of Path
    objects cost about 0.3 s per build."""
    seen: set[tuple[int, int]] = set()
    suffixes = ARTICLE_SUFFIXES | {JSONL_SUFFIX}

    def visit(directory: str, prefix: str) -> Iterator[tuple[str, str]]:
        shown = prefix.rstrip("/") or "."
        try:
            stat = os.stat(directory)
        except OSError as error:
            problems.append(Problem(shown, None, f"cannot read: {error.strerror}"))
            return
        key = (stat.st_dev, stat.st_ino)
        if key in seen:
            problems.append(Problem(shown, None, "symlink loop: directory already visited"))
            return
        seen.add(key)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as error:
            problems.append(Problem(shown, None, f"cannot list directory: {error.strerror}"))
            return
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            source = prefix + name
            try:
                is_dir = entry.is_dir()
                is_file = entry.is_file()
            except OSError as error:
                problems.append(Problem(source, None, f"cannot read: {error.strerror}"))
                continue
            wanted = is_dir or (
                is_file
                and os.path.splitext(name)[1].lower() in suffixes
                and not name.startswith("_index.")
            )
            if wanted and not _is_utf8(name):
                # Such a name cannot be stored, printed or served; the file is left alone.
                printable = source.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                problems.append(Problem(printable, None, "the name is not valid UTF-8; rename it"))
            elif is_dir:
                yield from visit(entry.path, source + "/")
            elif wanted:
                yield entry.path, source
            elif not is_file and entry.is_symlink():
                problems.append(Problem(source, None, "broken or looping symlink"))

    yield from visit(str(root), "")


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes of the name, kept as surrogates
        return False
    return True


@dataclass
class Corpus:
    """Articles read from a content folder, one per canonical URL, plus what went wrong."""

    root: Path
    articles: list[Article]
    problems: list[Problem]
    raw_hashes: dict[str, str] = field(default_factory=dict)  # source -> sha256 of its bytes
    # source -> FileStat, for files whose stat vouches for those bytes (see filecache)
    stats: dict[str, FileStat] = field(default_factory=dict)


def read_corpus(
    root: Path,
    read: ReadOptions = ReadOptions(),
    known: Mapping[str, tuple[str, Article, FileStat | None]] | None = None,
) -> Corpus:
    """Read every article under root. Never raises for a bad file: it becomes a Problem.

    Two articles with the same canonical URL: the one whose source sorts first wins and the
    other is reported. An `originalUrl` that is another article's URL is ignored (reported).
    `known` (source -> (sha256 of the file's bytes, its Article, its FileStat or None))
    skips parsing files whose bytes are unchanged, and reading files whose stat is
    (recs.filecache); parsing dominates reading a large corpus.
    """
    root = Path(root)
    if not root.is_dir():
        raise InvalidInput(f"content folder {root} does not exist or is not a folder")
    max_file_bytes = read.max_file_bytes
    problems: list[Problem] = []
    found: list[Article] = []
    raw_hashes: dict[str, str] = {}
    stats: dict[str, FileStat] = {}
    settled_before = time.time_ns() - SETTLED_NS
    for path, source in _walk(root, problems):
        if os.path.splitext(path)[1].lower() == JSONL_SUFFIX:
            digest = hashlib.sha256()
            try:
                with open(path, "rb") as handle:
                    articles, bad = parse_jsonl(handle, source, read, digest)
            except OSError as error:
                problems.append(Problem(source, None, f"cannot read: {error.strerror}"))
                continue
            raw_hashes[source] = digest.hexdigest()
            found.extend(articles)
            problems.extend(bad)
            continue
        cached = known.get(source) if known else None
        try:
            info = os.stat(path)
            if info.st_size > max_file_bytes:
                raise ArticleError(
                    f"file is {info.st_size:,} bytes; an article file may have at most "
                    f"{max_file_bytes:,} (RECS_MAX_FILE_BYTES)"
                )
            stat = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
            if cached is not None and cached[2] == stat:
                raw_hashes[source], stats[source] = cached[0], stat
                found.append(cached[1])
                continue
            with open(path, "rb") as handle:
                raw = handle.read()
        except ArticleError as error:
            problems.append(Problem(source, error.line, error.reason))
            continue
        except OSError as error:
            problems.append(Problem(source, None, f"cannot read: {error.strerror}"))
            continue
        raw_hashes[source] = hashlib.sha256(raw).hexdigest()
        if max(info.st_mtime_ns, info.st_ctime_ns) < settled_before:
            stats[source] = stat
        if cached is not None and cached[0] == raw_hashes[source]:
            found.append(cached[1])
            continue
        try:
            found.append(parse_article_text(raw, source, read))
        except ArticleError as error:
            problems.append(Problem(source, error.line, error.reason))
    articles, duplicate_problems = dedupe(found)
    problems.extend(duplicate_problems)
    return Corpus(root, articles, problems, raw_hashes, stats)


def dedupe(found: Sequence[Article]) -> tuple[list[Article], list[Problem]]:
    """One article per URL (the one whose source sorts first), sorted by URL; the rest reported."""
    if all(a.url < b.url for a, b in itertools.pairwise(found)):
        return list(found), []  # already one per URL, in URL order (a corpus read before)
    problems: list[Problem] = []
    by_url: dict[str, Article] = {}
    for article in sorted(found, key=lambda a: (a.source, a.line or 0)):
        kept = by_url.get(article.url)
        if kept is not None:
            problems.append(
                Problem(
                    article.source,
                    article.line,
                    f"same URL {article.url} as {kept.location}, which is used instead",
                )
            )
            continue
        by_url[article.url] = article
    return sorted(by_url.values(), key=lambda a: a.url), problems


def json_column(texts: Sequence[str]) -> list[Any]:
    """Parse a column of JSON texts in one call: for 10,000 short texts one call per text
    costs more than the parsing. A damaged text raises ValueError."""
    values = json.loads("[" + ",".join(texts) + "]")
    if not isinstance(values, list) or len(values) != len(texts):
        raise ValueError("a stored JSON value is damaged")
    return values


def same_urls(a: Sequence[Article], b: Sequence[Article]) -> bool:
    """Whether `a` and `b` hold articles of the same URLs in the same order (same rows)."""
    return len(a) == len(b) and all(x.url == y.url for x, y in zip(a, b, strict=True))


def alias_map(articles: list[Article]) -> dict[str, str]:
    """originalUrl -> url for every article whose originalUrl is not another article's URL."""
    urls = {a.url for a in articles}
    aliases: dict[str, str] = {}
    for article in articles:
        original = article.original_url
        if original and original not in urls and original not in aliases:
            aliases[original] = article.url
    return aliases
