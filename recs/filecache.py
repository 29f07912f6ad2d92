"""Parsed article files, cached beside the store, so unchanged files are not parsed again.

Reading a 10,000-file corpus is mostly YAML parsing (each file's related block included).
`recs regenerate` and `recs build` keep, in `<store>/files-cache.sqlite`, every article
file's SHA-256 and the Article parsed from it; the next run parses only files whose bytes
differ. Files regenerate rewrites are recorded with their new bytes, so its own writes cost
nothing next time; a build records an unknown block key, so regenerate checks those once.

With an entry goes the file's size, mtime, ctime and inode if they were a few seconds old
when it was read; a file whose four are still the same is not read again (the rule of
git's index: every write moves a file's ctime, which no program can set back, and a file
written within a clock tick of being read is not trusted this way). A rewritten file is
read once more on the next run, then trusted.

It is a cache: a missing, unreadable or outdated file (other recs version, other
front-matter keys, field mapping, URL rules or size limit) is ignored and written anew.
It never affects results, only how long reading takes.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from recs import __version__
from recs.articles import Article
from recs.corpus import FileStat
from recs.options import ReadOptions
from recs.records import article_from_record, fields_text, record_text

FILE = "files-cache.sqlite"
FORMAT = 8  # 8: records as recs.records writes them


class Cached(NamedTuple):
    """One file as a regeneration left it."""

    sha: str  # SHA-256 of its bytes
    article: Article  # parsed from those bytes
    block: str  # key of the related entries its block holds ("" when unknown)
    stat: FileStat | None = None  # the file's when it was read, if old enough to trust
    record: str = ""  # the article's `records.record_text`, when loaded from the cache
    fields: str = ""  # its `records.fields_text`, when loaded from the cache


def for_reading(entries: Entries) -> dict[str, tuple[str, Article, FileStat | None]]:
    """Entries in the form `read_corpus(known=...)` takes."""
    return {source: (entry.sha, entry.article, entry.stat) for source, entry in entries.items()}


Entries = Mapping[str, Cached]  # by source


def signature(read: ReadOptions) -> str:
    """What parsing depends on besides the bytes; a cache of another signature is ignored."""
    return json.dumps([FORMAT, __version__, dataclasses.asdict(read)])


def _key(entry: Cached) -> tuple[str, str, FileStat | None]:
    """What makes an entry's row differ (its Article follows from its sha)."""
    return entry.sha, entry.block, entry.stat


def _stat_columns(entry: Cached) -> FileStat | tuple[None, None, None, None]:
    return (None, None, None, None) if entry.stat is None else entry.stat


def load(store_dir: Path, sig: str) -> dict[str, Cached]:
    """The cached entries, or {} when there is no usable cache."""
    path = Path(store_dir) / FILE
    if not path.is_file():
        return {}
    try:
        connection = sqlite3.connect(path)
        try:
            row = connection.execute("SELECT value FROM info WHERE key = 'signature'").fetchone()
            if row is None or row[0] != sig:
                return {}
            query = (
                "SELECT source, sha, record, fields, block, size, mtime, ctime, inode FROM files"
            )
            rows = connection.execute(query).fetchall()
            return {
                source: Cached(
                    sha,
                    article_from_record(json.loads(record), json.loads(fields)),
                    block,
                    None if stat[0] is None else tuple(stat),
                    record,
                    fields,
                )
                for source, sha, record, fields, block, *stat in rows
            }
        finally:
            connection.close()
    except (sqlite3.Error, ValueError, KeyError, TypeError):
        return {}  # unreadable or from another version: parse everything once


def save(store_dir: Path, sig: str, previous: Entries, entries: Entries) -> None:
    """Record `entries`, writing only what differs from `previous` (what `load` gave)."""
    path = Path(store_dir) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if not _save(path, sig, previous, entries):
        path.unlink(missing_ok=True)  # unreadable: start a new one
        _save(path, sig, {}, entries)


def _save(path: Path, sig: str, previous: Entries, entries: Entries) -> bool:
    try:
        connection = sqlite3.connect(path)
    except sqlite3.Error:
        return False
    try:
        with connection:
            connection.execute("CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT)")
            stored = connection.execute("SELECT value FROM info WHERE key = 'signature'").fetchone()
            if stored is None or stored[0] != sig:  # another format, keys or limits: start anew
                connection.execute("DROP TABLE IF EXISTS files")
                previous = {}
            connection.execute(
                "CREATE TABLE IF NOT EXISTS files "
                "(source TEXT PRIMARY KEY, sha TEXT NOT NULL, record TEXT NOT NULL, "
                "fields TEXT NOT NULL, block TEXT, "
                "size INTEGER, mtime INTEGER, ctime INTEGER, inode INTEGER)"
            )
            connection.execute("INSERT OR REPLACE INTO info VALUES ('signature', ?)", (sig,))
            gone = [(source,) for source in previous if source not in entries]
            connection.executemany("DELETE FROM files WHERE source = ?", gone)
            connection.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        source,
                        entry.sha,
                        record_text(entry.article),
                        fields_text(entry.article.fields),
                        entry.block,
                        *_stat_columns(entry),
                    )
                    for source, entry in entries.items()
                    if source not in previous or _key(previous[source]) != _key(entry)
                ),
            )
    except sqlite3.Error:
        return False
    finally:
        connection.close()
    return True
