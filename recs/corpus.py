"""Reading a content folder: find the article files and parse each by its kind.

An article file is front matter (YAML between two `---` lines, TOML between two `+++`
lines, or a JSON object), then an optional body (kept, never embedded). A `.jsonl` file
holds one article object per line. Fields are read through the mapping of
`ReadOptions.fields` and the site's URL rules (recs.fieldmap). Every file that cannot
be used becomes a `Problem` (path, line, reason) and the rest still loads; nothing here
ever writes.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from recs.articles import Article, article_from_data, key_line
from recs.errors import InvalidInput, Problem
from recs.fieldmap import Pick, derive
from recs.frontmatter import ArticleError, FrontMatter, check_shape, find_front_matter
from recs.frontmatter_loaders import load_front_matter
from recs.options import ReadOptions

ARTICLE_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".html", ".htm", ".yaml", ".yml"})
JSONL_SUFFIX = ".jsonl"
MAX_PROBLEMS_PER_FILE = 100  # of one .jsonl file; the rest are counted
# A file's (size, mtime, ctime, inode) in nanoseconds: any write moves its ctime.
FileStat = tuple[int, int, int, int]
# How old a file's timestamps must be, when it is read, for its stat to vouch for its bytes
# later: more than the coarsest file timestamp (2 s on FAT) and the kernel's clock tick.
SETTLED_NS = 3_000_000_000


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
    """(parsed front matter, its text, where it is, the decoded file) of a file's bytes."""
    if not raw.strip():
        raise ArticleError("empty file")
    text = _decode(raw)
    fm = find_front_matter(text)
    return load_front_matter(text, fm), text[fm.start : fm.end], fm, text


def read_front_matter(raw: bytes) -> Any:
    """The front matter of an article file's bytes, as written: its `related:` block too,
    which the Article parsed from the same bytes leaves out."""
    return _front_matter(raw)[0]


def front_matter_kind(raw: bytes) -> str:
    """yaml, toml or json: the kind of an article file's front matter."""
    return find_front_matter(_decode(raw)).kind


def parse_article_text(raw: bytes, source: str, read: ReadOptions = ReadOptions()) -> Article:
    """Parse the bytes of one front-matter article file."""
    return explain_article_text(raw, source, read)[0]


def explain_article_text(
    raw: bytes, source: str, read: ReadOptions = ReadOptions()
) -> tuple[Article, list[Pick], str]:
    """The article of one file's bytes, how each derived field was picked, and the kind
    of its front matter (`recs build --explain-fields`)."""
    written, fm_text, fm, text = _front_matter(raw)
    body = text[fm.body :]
    try:
        data, picks = derive(written, body, source, read)
    except ArticleError as error:
        raise ArticleError(
            error.reason, error.line or _key_line(error.reason, fm_text, fm)
        ) from None
    article = article_from_data(
        data,
        source,
        yaml_text=fm_text,
        first_line=fm.first_line,
        body=body,
        pinned_key=read.pinned_key,
        excluded_key=read.excluded_key,
        fallback_url=None,
    )
    return article, picks, fm.kind


def _key_line(reason: str, fm_text: str, fm: FrontMatter) -> int | None:
    """The file line of the key an error names ("date: ..."), when it is a top-level key."""
    return key_line(reason.split(":", 1)[0], fm_text, fm.first_line)


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
    lines_read = replace(read, urls=None)  # a line has no path of its own to make a URL from
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
            data, _ = derive(data, "", source, lines_read)
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


def _walk(
    root: Path, problems: list[Problem], skip: tuple[str, ...] = ()
) -> Iterator[tuple[str, str]]:
    """Every candidate file under root as (path, path relative to root with "/"), sorted,
    following symlinks but never looping, not entering the folders `skip` names (paths
    relative to root). Plain strings: 10,000 files' worth of Path objects cost about
    0.3 s per build."""
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
            if is_dir and source in skip:
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
    reused: set[str] = field(default_factory=set)  # sources whose Article `known` gave


def read_corpus(
    root: Path,
    read: ReadOptions = ReadOptions(),
    known: Mapping[str, tuple[str, Article, FileStat | None]] | None = None,
) -> Corpus:
    """Read every article under root. Never raises for a bad file: it becomes a Problem.

    Two articles with the same canonical URL: the one whose source sorts first wins and the
    other is reported. (An `originalUrl` that is another article's URL finds that article:
    `articles.ignored_originals` says so, and a build prints it as a warning.)
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
    reused: set[str] = set()
    settled_before = time.time_ns() - SETTLED_NS
    for path, source in _walk(root, problems, read.skip):
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
                reused.add(source)
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
            reused.add(source)
            continue
        try:
            found.append(parse_article_text(raw, source, read))
        except ArticleError as error:
            problems.append(Problem(source, error.line, error.reason))
    articles, duplicate_problems = dedupe(found)
    problems.extend(duplicate_problems)
    return Corpus(root, articles, problems, raw_hashes, stats, reused)


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
