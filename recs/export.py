"""JSON outputs for site builds: one file for every list, or one small file per article.

`export_json` writes one object, canonical URL -> related list (entries with `score`, in
rank order), keys sorted, so a site build can load it as a data file.

`export_per_article` writes one file per article, for client-side widgets and static
hosting, at a path computed from the article's canonical URL by `article_path`:

    https://example.com:8080/news/a-story?id=7  ->  example.com_8080/news/a-story~<hash>.json
    https://example.com/news/a-story              ->  example.com/news/a-story.json
    https://example.com/                          ->  example.com/index~<hash>.json

- the host (lower case, as in the canonical URL) is the first folder; a port is added as
  `_PORT` (and makes the name hashed, see below);
- each path segment becomes a folder, the last one the file name plus `.json`;
  an empty path (or a trailing empty segment) is `index`;
- characters other than ASCII letters, digits, `-`, `_` and `.` become `_`, a segment that
  starts with `.` gets a leading `_` (so no `.`, `..` or hidden names), and long segments are
  cut to 100 characters;
- whenever that changed anything, or the URL has a query or a port, `~` and the first 12
  hex digits of the URL's SHA-256 are appended to the file name, so distinct URLs never
  share a file.

Nothing of the URL reaches the file system except through this mapping, and every path is
checked to stay inside the output folder. `_manifest.json` in the output folder maps every
canonical URL to its relative path (a widget that cannot compute the path reads it); files
a previous export listed there and this one does not are removed, other files never.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from recs.errors import InvalidInput, StoreWriteError
from recs.rewrite import write_atomic

MANIFEST = "_manifest.json"
MAX_SEGMENT = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

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


def _segment(text: str) -> str:
    safe = _UNSAFE.sub("_", text)[:MAX_SEGMENT]
    if safe.startswith("."):
        safe = "_" + safe[: MAX_SEGMENT - 1]
    return safe


def article_path(url: str) -> PurePosixPath:
    """The relative path of an article's file in a per-article export (see module doc)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidInput(f"cannot export {url!r}: it has no host")
    folder = _segment(host + (f"_{parts.port}" if parts.port else ""))
    segments = parts.path.split("/")[1:] if parts.path.startswith("/") else [parts.path]
    names = [_segment(s) if s else "_" for s in segments]
    exact = not parts.query and all(n == s for n, s in zip(names, segments, strict=True))
    if not segments or segments[-1] == "":  # the site root, or a trailing slash
        names = [*names[:-1], "index"]
        exact = False
    exact = exact and folder == host and not parts.port
    if not exact:
        names[-1] += "~" + hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
    return PurePosixPath(folder, *names[:-1], names[-1] + ".json")


def export_json(related: RelatedMap, out: Path) -> bool:
    """Write the whole map to `out` atomically. Returns whether the file changed."""
    data = dumps(dict(related))
    return _write_if_changed(out, data)


def _write_if_changed(path: Path, data: bytes) -> bool:
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    except OSError as error:
        raise StoreWriteError(f"cannot read {path}: {error.strerror}") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
    except OSError as error:
        raise StoreWriteError(
            f"cannot write {path}: {error.strerror or error}; choose a writable --out"
        ) from None
    return True


def export_per_article(related: RelatedMap, out_dir: Path) -> tuple[int, int, int]:
    """One JSON file per article under out_dir. Returns (written, unchanged, removed)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInput(f"--out {out_dir} is a file; per-article export needs a folder")
    root = out_dir.resolve()
    paths: dict[str, str] = {}
    owner: dict[PurePosixPath, str] = {}
    for url in sorted(related):
        relative = article_path(url)
        path_text = relative.as_posix()
        if relative in owner:  # cannot happen with the hash suffix; never overwrite silently
            raise InvalidInput(f"{url} and {owner[relative]} map to the same file {relative}")
        owner[relative] = url
        target = (root / relative).resolve()
        if not target.is_relative_to(root):
            raise InvalidInput(f"{url} maps outside the output folder; not exported")
        paths[url] = path_text

    previous = _previous_manifest(root / MANIFEST)
    written = unchanged = removed = 0
    for url, path_text in paths.items():
        if _write_if_changed(root / path_text, dumps({"url": url, "related": related[url]})):
            written += 1
        else:
            unchanged += 1
    current = set(paths.values())
    for stale in sorted(set(previous.values()) - current):
        target = (root / stale).resolve()
        if target.is_relative_to(root) and target.is_file():
            with contextlib.suppress(OSError):
                target.unlink()
                removed += 1
    _write_if_changed(root / MANIFEST, dumps(paths))
    return written, unchanged, removed


def _previous_manifest(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}
