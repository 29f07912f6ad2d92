"""JSON outputs for site builds: one file for every list, one small file per article, or a
site generator's data file (`site_data`: keyed by each page's URL as its templates know it).

`export_json` writes one object, URL -> related list (entries with `score`, in rank
order), keys sorted, so a site build can load it as a data file. The keys are the
canonical URLs and, where an article's file writes its `webUrl` or `originalUrl` in
another form, that text too (`written_urls`): a page finds its list by either.

`export_per_article` writes one file per article, for client-side widgets and static
hosting, at a path computed from the article's canonical URL by `article_path`. Sites and
widgets compute the same path, so here is the rule in full:

1. Split the URL into host, port, path and the rest (RFC 3986; for a canonical URL,
   `https://[USER@]HOST[:PORT]/PATH[?QUERY]`). A URL without a host has no file.
2. `name(text)`: every character other than ASCII letters, digits, `-`, `_` and `.`
   becomes `_`; the result is cut to 100 characters; one that starts with `.` gets a
   leading `_` and is cut to 100 again (so no `.`, `..` or hidden names).
3. `folder(text)`: `name(text)`, `_` when that is empty, and a `_` appended when it ends
   in `.json` in any letter case. Every file name ends in `.json`, so a file and a folder
   never want the same name, and no folder is `_manifest.json`.
4. The host folder is `folder(host + "_" + port)` with a port, else `folder(host)`; the
   host in lower case, without the brackets of an IPv6 address.
5. The path (up to any `?` or `#`) without its leading `/` is split at every `/`: each
   segment but the last is a folder, `folder(segment)`; the last is `name(segment)`, or
   `index` when that is empty (the site root, a trailing slash). Call the joined result
   `HOST/F1/.../NAME`.
6. Readable: when the URL is exactly `https://HOST/F1/.../NAME` and that text has no upper
   case letter, the file is `HOST/F1/.../NAME.json`. (That excludes http, ports, users,
   queries, fragments, percent-escapes and any character rule 2 replaces, empty segments,
   the root, hidden names, folders ending in `.json`, names over 100 characters.)
   Otherwise it is `HOST/F1/.../NAME~HASH.json`, HASH being the first 16 hex digits
   (lower case) of the SHA-256 of the URL's UTF-8 bytes.
7. Cap: when there are more than 16 folders below the host folder, or the path of rule 6
   is longer than 512 characters, the file is `HOST/NAME~HASH.json` instead.

    https://example.com/news/a-story              ->  example.com/news/a-story.json
    https://example.com:8080/news/a-story?id=7    ->  example.com_8080/news/a-story~<hash>.json
    https://example.com/                          ->  example.com/index~<hash>.json
    https://example.com/feed.json/item            ->  example.com/feed.json_/item~<hash>.json

Why two URLs never share a path, nor a path and a folder: a readable path is the URL's
own text (less `https://`, plus `.json`), in lower case, and has no `~`; a hashed name
holds the hash of its whole URL; folder names never end in `.json`, file names always do.
That holds on a file system that ignores letter case too. Only two URLs whose 64-bit
hashes collide could meet: the later one (in URL order) is reported, never written over
the other.

Nothing of the URL reaches the file system except through this mapping, and every path is
checked to stay inside the output folder (a symbolic link inside it could lead out).
`_manifest.json` in the output folder maps every exported URL to its relative path (a
widget that cannot compute the path reads it), and, like the JSON export's keys, every
`webUrl` and `originalUrl` text an article's file writes in another form to the path of
its article: a page looks itself up by the URL it knows, as written. A URL that cannot be
exported is reported and the others are written. Files a previous export listed there and
this one does not are removed (with the folders that leaves empty), other files never.

`export_widget` writes recs' browser widget (recs/static/widget.js) into a folder, so a
static site can host it beside its per-article export.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from recs.errors import InvalidInput, StoreWriteError, one_line
from recs.fsio import write_atomic

if TYPE_CHECKING:
    from recs.articles import Article
    from recs.options import UrlRules

MANIFEST = "_manifest.json"
MAX_NAME = 100
MAX_FOLDERS = 16
# Well inside the 4,096 bytes of a Linux path, leaving room for the output folder, and half
# of the 1,024-byte key of an S3-style object store.
MAX_PATH = 512
# 64 bits: a folder may hold millions of hashed names (a site addressing articles by
# query), and 48 bits would give a million of them a 1-in-600 chance of a clash.
HASH_DIGITS = 16
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# Errors no other file can escape: stop at once instead of reporting every URL.
_DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})

RelatedMap = Mapping[str, list[dict[str, Any]]]

# A site may inline an export in a <script> element, where `</script>` or `<!--` in a title
# would end or change the element: `<`, `>` and `&` are written as \u escapes (as Go's
# encoding/json does), and so are U+2028 and U+2029, line breaks to JavaScript before ES2019.
# In JSON text these characters occur only inside strings, so every value stays the same.
_SCRIPT_SAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def dumps(value: Any) -> bytes:
    """Deterministic JSON: sorted keys, UTF-8, two-space indent, final newline, and no raw
    `<`, `>`, `&`, U+2028 or U+2029 (\\u escapes: safe to inline in a <script> element)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, indent=2)
    return (text.translate(_SCRIPT_SAFE) + "\n").encode()


# --- one file per article ---------------------------------------------------------------


class _Unexportable(ValueError):
    """A URL that has no per-article path; the message says why."""


def _name(text: str) -> str:
    name = _UNSAFE.sub("_", text)[:MAX_NAME]
    return "_" + name[: MAX_NAME - 1] if name.startswith(".") else name


def _folder(text: str) -> str:
    name = _name(text) or "_"
    return name + "_" if name.lower().endswith(".json") else name


def url_hash(url: str) -> str:
    """The first 16 hex digits of the SHA-256 of the URL's UTF-8 bytes (rule 6)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:HASH_DIGITS]


def _article_path(url: str) -> PurePosixPath:
    try:
        digest = url_hash(url)
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:  # text that is not Unicode, a bad port or IPv6 literal
        raise _Unexportable(f"not a usable URL ({one_line(str(error))})") from None
    if not parts.hostname:
        raise _Unexportable("it has no host")
    host = _folder(parts.hostname + ("" if port is None else f"_{port}"))
    segments = parts.path.split("/")[1:] if parts.path.startswith("/") else [parts.path]
    folders = [_folder(segment) for segment in segments[:-1]]
    name = _name(segments[-1]) or "index"
    readable = "/".join([host, *folders, name])
    exact = url == "https://" + readable and readable == readable.lower()
    path = f"{readable}.json" if exact else f"{readable}~{digest}.json"
    if len(folders) > MAX_FOLDERS or len(path) > MAX_PATH:
        path = f"{host}/{name}~{digest}.json"
    return PurePosixPath(path)


def article_path(url: str) -> PurePosixPath:
    """The relative path of an article's file in a per-article export (see module doc)."""
    try:
        return _article_path(url)
    except _Unexportable as error:
        raise InvalidInput(f"cannot export {one_line(url)}: {error}") from None


@dataclass
class PerArticleReport:
    """What `export_per_article` did. `skipped`: (URL, reason) pairs, in URL order."""

    written: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


def export_per_article(
    related: RelatedMap, out_dir: Path, written: Mapping[str, str] | None = None
) -> PerArticleReport:
    """One JSON file per article under out_dir, and the manifest.

    A URL that cannot have a file (no host), or whose file cannot be written, is reported
    in `skipped` and left out of the manifest; the others are written. `written` (see
    `written_urls`) adds a manifest key for each URL text, naming its canonical URL's
    file; a canonical URL's own key is never replaced. Raises StoreWriteError only for
    what no file can escape (an unwritable output folder, a full or read-only disk, a
    manifest that cannot be written).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInput(f"--out {out_dir} is a file; per-article export needs a folder")
    report = PerArticleReport()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _write_error(out_dir, error) from None
    root = out_dir.resolve()
    if not os.access(root, os.W_OK | os.X_OK):  # one line, not one per URL
        raise _write_error(root, PermissionError(errno.EACCES, os.strerror(errno.EACCES)))
    planned = _plan(related, root, report.skipped)
    previous = set(_previous_manifest(root / MANIFEST).values())
    # Stale files go first: a folder an older export (or rule) made may stand where a
    # file is now wanted.
    report.removed += _remove(root, previous - set(planned.values()))
    manifest: dict[str, str] = {}
    failed: set[str] = set()
    for url, relative in planned.items():
        try:
            changed = _write_if_changed(
                root / relative, dumps({"url": url, "related": related[url]})
            )
        except OSError as error:
            if error.errno in _DISK_ERRORS:
                raise _write_error(root / relative, error) from None
            report.skipped.append((url, f"cannot write {relative}: {error.strerror or error}"))
            failed.add(relative)
            continue
        manifest[url] = relative
        report.written += changed
        report.unchanged += not changed
    # A file an earlier export wrote for a URL that failed now would be listed nowhere.
    report.removed += _remove(root, previous & failed)
    for text, url in sorted((written or {}).items()):
        if url in manifest:
            manifest.setdefault(text, manifest[url])
    try:
        _write_if_changed(root / MANIFEST, dumps(manifest))
    except OSError as error:
        raise _write_error(root / MANIFEST, error) from None
    report.skipped.sort()
    return report


def _plan(related: RelatedMap, root: Path, skipped: list[tuple[str, str]]) -> dict[str, str]:
    """URL -> relative path of every URL that can have a file; the others in `skipped`."""
    planned: dict[str, str] = {}
    owner: dict[str, str] = {}  # lower-cased path -> URL: letter case must not tell apart
    for url in sorted(related):
        try:
            relative = _article_path(url).as_posix()
        except _Unexportable as error:
            skipped.append((url, str(error)))
            continue
        if relative.lower() in owner:  # two 64-bit hashes met: never overwrite
            other = one_line(owner[relative.lower()])
            skipped.append((url, f"its file {relative} is already that of {other}"))
            continue
        try:
            inside = (root / relative).resolve().is_relative_to(root)
        except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop
            skipped.append((url, f"cannot resolve {relative}: {one_line(str(error))}"))
            continue
        if not inside:
            skipped.append((url, f"{relative} leads outside the output folder (a symlink)"))
            continue
        owner[relative.lower()] = url
        planned[url] = relative
    return planned


def _remove(root: Path, relatives: Iterable[str]) -> int:
    """Delete these files (when inside root) and the folders that leaves empty."""
    removed = 0
    for relative in sorted(relatives):
        try:
            target = (root / relative).resolve()
            if not (target.is_relative_to(root) and target.is_file()):
                continue
            target.unlink()
        except (OSError, RuntimeError):
            continue
        removed += 1
        for folder in target.parents:
            if folder == root or not folder.is_relative_to(root):
                break
            try:
                folder.rmdir()  # only ever an empty folder
            except OSError:
                break
    return removed


def _previous_manifest(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


# --- one file for the whole site ---------------------------------------------------------


def written_urls(articles: Iterable[Article]) -> dict[str, str]:
    """URL text as articles' files write it -> canonical URL: each article's `webUrl` and
    `originalUrl` where the text differs from its canonical URL (first article wins)."""
    forms: dict[str, str] = {}
    for article in articles:
        for key in ("webUrl", "originalUrl"):
            text = article.fields.get(key)
            if isinstance(text, str) and text != article.url:
                forms.setdefault(text, article.url)
    return forms


def export_json(related: RelatedMap, out: Path, written: Mapping[str, str] | None = None) -> bool:
    """Write the whole map to `out` atomically. Returns whether the file changed.

    `written` (see `written_urls`) adds a key for each URL text, holding the list of its
    canonical URL; a canonical URL's own key is never replaced. A template can then look a
    page up by the URL its front matter holds, whatever its form: re-implementing the
    canonical form (recs.urls: scheme, case, ports, tracking parameters, query order,
    escapes, dot segments, trailing slashes) in each site generator's template language
    would be a second copy of that rule, bound to drift from it.
    """
    data = dict(related)
    for text, url in sorted((written or {}).items()):
        if url in related:
            data.setdefault(text, related[url])
    try:
        return _write_if_changed(out, dumps(data))
    except OSError as error:
        raise _write_error(out, error) from None


# --- the browser widget -----------------------------------------------------------------


def export_widget(out_dir: Path) -> Path:
    """Write widget.js (the `<recs-related>` element) into out_dir; returns its path.

    Written only when its bytes change. Next to a per-article export it is never removed
    by one: that export removes only the files its manifest listed.
    """
    from recs.assets import WIDGET, asset

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInput(f"--out {out_dir} is a file; the widget export needs a folder")
    target = out_dir / WIDGET
    try:
        _write_if_changed(target, asset(WIDGET))
    except OSError as error:
        raise _write_error(target, error) from None
    return target


def _write_if_changed(path: Path, data: bytes) -> bool:
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    return True


def _write_error(path: Path, error: OSError) -> StoreWriteError:
    return StoreWriteError(
        f"cannot write {path}: {error.strerror or error}; choose a writable --out"
    )


# --- a site generator's data file ---------------------------------------------------------


def site_data(related: RelatedMap, articles: Iterable[Article], rules: UrlRules) -> dict[str, Any]:
    """The lists keyed as a generator's templates look a page up, each entry with `path`
    (the related page's URL as those templates know it; recs.permalinks.site_path).

    Hugo: by `.RelPermalink`; Jekyll and Eleventy: by `page.url`; Astro: by the content
    entry's `collection/id` (the source path without its extension), each list under
    `related` in an object, as Astro's `file()` loader takes it.
    """
    from recs.permalinks import site_path, slugify

    def path_of(entry: Mapping[str, Any]) -> str | None:
        web = entry.get("webUrl")
        return site_path(rules, web) if isinstance(web, str) else None

    data: dict[str, Any] = {}
    for article in articles:
        if article.url not in related:
            continue
        entries = [
            {**entry, "path": path} if (path := path_of(entry)) else dict(entry)
            for entry in related[article.url]
        ]
        if rules.generator == "astro":
            stem = article.source.rsplit(".", 1)[0]
            key = "/".join(slugify(part) for part in stem.split("/"))
            data[key.removesuffix("/index")] = {"related": entries}
        else:
            data[path_of(article.fields) or article.url] = entries
    return data


def export_site(
    related: RelatedMap, articles: Iterable[Article], rules: UrlRules, out: Path
) -> bool:
    """Write `site_data` to `out` atomically. Returns whether the file changed."""
    try:
        return _write_if_changed(out, dumps(site_data(related, articles, rules)))
    except OSError as error:
        raise _write_error(out, error) from None
