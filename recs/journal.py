"""The write journal: articles written and deleted through the API, until a build holds them.

Writes through the API (upsert, delete) are appended to `journal.sqlite` in the store
directory, each tagged with the generation it applies to. Appending is durable (WAL,
synchronous=FULL) and cheap; every server process polls the journal and folds new entries
into its loaded generation (`fold`). The next build (or rollback) folds them into the
generation it publishes, records the last one's number as that generation's
`journal_seq`, and only then clears the entries up to it; entries for an older generation
are never applied to a newer one, so a build that dies between publishing and clearing
loses nothing.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recs.articles import Article, alias_map
from recs.catalog import Catalog
from recs.collector import collector_paused
from recs.errors import StoreIncompatible, StoreWriteError
from recs.fsio import sqlite_reader, sqlite_writer
from recs.generation import Snapshot
from recs.options import IndexSettings
from recs.records import article_from_record, record
from recs.related import Lists, link_changes

API_SOURCE = "api"  # the `source` of an article written through the API (it has no file)
EXACT = IndexSettings(kind="exact")

JOURNAL = "journal.sqlite"
JOURNAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    generation TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
    url TEXT NOT NULL,
    article TEXT,
    vector BLOB
);
"""


@dataclass(frozen=True)
class Change:
    """One journal entry: an upserted article with its vector, or a deleted URL."""

    seq: int
    op: str
    url: str
    article: Article | None = None
    vector: np.ndarray | None = None


def _article_json(article: Article) -> str:
    return json.dumps({**record(article), "fields": dict(article.fields)}, ensure_ascii=False)


def _article_of(text: str) -> Article:
    data = json.loads(text)
    return article_from_record(data, data["fields"])


def _journal(store_dir: Path) -> sqlite3.Connection:
    connection = sqlite_writer(store_dir / JOURNAL, timeout=10.0)
    connection.execute("PRAGMA synchronous = FULL")
    connection.executescript(JOURNAL_SCHEMA)
    return connection


def append_changes(store_dir: Path, generation: str, changes: list[Change]) -> int:
    """Durably append changes for `generation`; returns the last sequence number.

    Call with the store lock held, after checking that `generation` is current.
    """
    try:
        connection = _journal(store_dir)
        try:
            with connection:
                seq = 0
                for change in changes:
                    vector = (
                        None
                        if change.vector is None
                        else change.vector.astype(np.float32).tobytes()
                    )
                    article = None if change.article is None else _article_json(change.article)
                    cursor = connection.execute(
                        "INSERT INTO changes (generation, op, url, article, vector) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (generation, change.op, change.url, article, vector),
                    )
                    seq = int(cursor.lastrowid or 0)
        finally:
            connection.close()
    except sqlite3.OperationalError as error:
        raise StoreWriteError(
            f"cannot record the write in {store_dir / JOURNAL} ({error}); nothing was changed"
        ) from None
    return seq


def read_changes(store_dir: Path, generation: str, after: int = 0) -> list[Change]:
    """Journal entries for `generation` with a sequence number above `after`, in order."""
    path = store_dir / JOURNAL
    if not path.is_file():
        return []
    try:
        connection = sqlite_reader(path)  # on a read-only mount too
        try:
            rows = connection.execute(
                "SELECT seq, op, url, article, vector FROM changes "
                "WHERE generation = ? AND seq > ? ORDER BY seq",
                (generation, after),
            ).fetchall()
        finally:
            connection.close()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return []
        raise StoreIncompatible(f"cannot read the write journal {path} ({error})") from None
    return [
        Change(
            seq=seq,
            op=op,
            url=url,
            article=None if article is None else _article_of(article),
            vector=None if vector is None else np.frombuffer(vector, dtype=np.float32).copy(),
        )
        for seq, op, url, article, vector in rows
    ]


def clear_changes(store_dir: Path, through: int) -> None:
    """Drop journal entries up to sequence number `through`: call it once a published
    generation holds them (its `journal_seq`), never before."""
    if through <= 0 or not (store_dir / JOURNAL).is_file():
        return
    try:
        connection = _journal(store_dir)
        try:
            with connection:
                connection.execute("DELETE FROM changes WHERE seq <= ?", (through,))
        finally:
            connection.close()
    except sqlite3.Error:
        pass  # harmless: entries a generation holds are never applied again; the next clears


class SharedLock:
    """Readers of a server's vectors at once, or one fold overwriting rows of them.

    A fold given `overwrite=lock.exclusive` writes a replaced article's vector into the
    row it had, in the matrix the snapshots of the server share, instead of copying the
    whole matrix (30 MB at 20,000 articles: 7-8 ms a fold in a server, some 60-80 ms;
    bench.writes' PUT median went from 40 to 35-37 ms).
    Every reader of those vectors (a live ranking, a draft) holds `shared()` meanwhile,
    so none reads a row half written. A reader still on the snapshot before the write
    may see the article's new vector: the write is in the journal by then. A writer
    waiting keeps new readers out until it is done, so readers cannot starve it; a
    reader must not take `shared()` again inside `shared()`.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._readers = 0
        self._waiting = 0  # writers waiting
        self._writing = False

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._writing and not self._waiting)
            self._readers += 1
        try:
            yield
        finally:
            with self._changed:
                self._readers -= 1
                self._changed.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._changed:
            self._waiting += 1
            self._changed.wait_for(lambda: not self._readers and not self._writing)
            self._waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._changed:
                self._writing = False
                self._changed.notify_all()


# A lock to hold around some work: `SharedLock.shared` or `.exclusive`, or nullcontext.
Guard = Callable[[], AbstractContextManager[object]]

# Rows left free after a folded snapshot's vectors, for the next writes to append into.
SPARE_ROWS = 1024
# The buffers folded vectors are views of: id -> (the buffer, weakly; the rows its newest
# view holds). Rows after those are free; only a fold of that newest view may fill them.
_BUFFERS: dict[int, tuple[weakref.ref[np.ndarray], int]] = {}
_BUFFERS_LOCK = threading.Lock()


def grown(
    vectors: np.ndarray,
    replaced: Mapping[int, np.ndarray],
    added: Sequence[np.ndarray],
    overwrite: Guard | None = None,
) -> np.ndarray:
    """`vectors` with the rows of `replaced` set and `added` appended. Rows `vectors`
    holds stay as they were (a loaded snapshot may still be answering with them), unless
    `overwrite` is given: then replaced rows are written in place, inside it.

    Appending copied the whole matrix for every write: 3-10 ms for 20,000 articles (30 MB
    of fresh memory), in every server process. So a folded matrix is the head of a buffer
    with SPARE_ROWS free rows after it, and rows added to the newest view of a buffer are
    written into those; a view that is not the newest (its next rows belong to a later
    one), a full buffer, or a replaced row without `overwrite` is copied into a new buffer.
    """
    n, dim = vectors.shape
    new = np.asarray(added, dtype=np.float32).reshape(len(added), dim)
    end = n + len(new)
    base = vectors.base
    with _BUFFERS_LOCK:
        if (overwrite is not None or not replaced) and isinstance(base, np.ndarray):
            ref, held = _BUFFERS.get(id(base), (None, -1))
            if ref is not None and ref() is base and held == n and len(base) >= end:
                base[n:end] = new
                if replaced:
                    assert overwrite is not None
                    with overwrite():
                        for row, vector in replaced.items():
                            base[row] = vector
                _BUFFERS[id(base)] = (ref, end)
                return base[:end]
        buffer = np.empty((end + SPARE_ROWS, dim), dtype=np.float32)
        buffer[:n] = vectors
        for row, vector in replaced.items():
            buffer[row] = vector
        buffer[n:end] = new
        _BUFFERS[id(buffer)] = (weakref.ref(buffer, _forget(id(buffer))), end)
        return buffer[:end]


def _forget(key: int) -> Callable[[weakref.ref[np.ndarray]], None]:
    """The callback that drops a buffer's entry when the buffer is freed (before its id
    can be given to another object)."""

    def forget(_: weakref.ref[np.ndarray]) -> None:
        _BUFFERS.pop(key, None)

    return forget


@collector_paused
def fold(previous: Snapshot, changes: Sequence[Change], overwrite: Guard | None = None) -> Snapshot:
    """Apply journal changes (API writes) to a loaded generation, in memory.

    Only the lists the changes can reach are recomputed; the result holds the lists a
    build of the same articles would give. Work is proportional to what changed, not to
    the store: an article replaced keeps its row, a new one is appended, and the
    catalog's facts of every other article are taken as they are; only a deletion
    renumbers the rows after it. The generation name stays; `revision` becomes the last
    entry's number.

    `overwrite` (a server's `SharedLock.exclusive`): a replaced article's new vector may
    be written into `previous`'s own matrix, inside that lock, instead of into a copy of
    it; the caller then serves the result and holds every reader of `previous`'s vectors
    to the same lock. Without it `previous` stays as it was.
    """
    if not changes:
        return previous
    articles = list(previous.articles)
    row_of = dict(previous.row_of)
    replaced: dict[int, np.ndarray] = {}
    added: list[np.ndarray] = []
    deleted: set[int] = set()
    for change in changes:
        row = row_of.get(change.url)
        if change.op == "delete":
            if row is not None:
                deleted.add(row)
                del row_of[change.url]
            continue
        assert change.article is not None and change.vector is not None
        if change.vector.shape != (previous.dim,):
            raise StoreIncompatible(
                f"journal entry {change.seq} has a vector of shape {change.vector.shape}, "
                f"the store needs ({previous.dim},); rebuild the store"
            )
        if row is None:
            row_of[change.url] = len(articles)
            articles.append(change.article)
            added.append(change.vector)
            continue
        articles[row] = change.article
        deleted.discard(row)
        if row < len(previous.articles):
            replaced[row] = change.vector
        else:
            added[row - len(previous.articles)] = change.vector
    # The old vectors of replaced rows, which `grown` may overwrite: the lists they were
    # in are found with them.
    before = {row: previous.vectors[row].copy() for row in replaced}
    vectors = (
        grown(previous.vectors, replaced, added, overwrite)
        if replaced or added
        else previous.vectors
    )
    if deleted:
        gone = sorted(deleted)
        articles = [a for row, a in enumerate(articles) if row not in deleted]
        vectors = np.delete(vectors, gone, axis=0)
    touched = {change.url for change in changes}
    if deleted:
        catalog = Catalog.from_articles(articles, vectors, previous.ranked_at)
    else:  # every row kept its number: patch the rows written
        written = {row_of[url]: articles[row_of[url]] for url in touched if url in row_of}
        catalog = previous.catalog.patched(vectors, written)
    # The aliases change only with an article that has (or had) an originalUrl.
    was = [previous.articles[previous.row_of[u]] for u in touched if u in previous.row_of]
    originals = any(a.original_url for a in was) or any(
        change.article is not None and change.article.original_url for change in changes
    )
    aliases = alias_map(articles) if originals else previous.aliases
    old = Lists(previous.related, previous.floors, 0, previous.bases)
    lists = link_changes(
        previous.articles,
        previous.vectors,
        old,
        articles,
        vectors,
        previous.settings,
        changed=touched,
        catalog=catalog,
        old_catalog=previous.catalog,
        now=previous.ranked_at,
        old_now=previous.ranked_at,
        overwritten=before,
        # A write searches the pools of a few lists: exactly, whatever the store's size.
        # Past EXACT_MAX rows "auto" would build an inverted file for them on every
        # write: 2.4 s at 60,000 rows, where an exact search of 3-60 queries took 26-54 ms.
        index_settings=EXACT,
    )
    snapshot = Snapshot(
        model_id=previous.model_id,
        dim=previous.dim,
        settings=previous.settings,
        articles=articles,
        vectors=vectors,
        related=lists.related,
        floors=lists.floors,
        bases=lists.bases,
        aliases=aliases,
        generation=previous.generation,
        created=previous.created,
        revision=changes[-1].seq,
        journal_seq=previous.journal_seq,
        made=previous.made,
        ranked_at=previous.ranked_at,
        _catalog=catalog,
    )
    return snapshot
