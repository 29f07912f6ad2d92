"""The built store on disk: SQLite metadata and vectors per generation, atomic publish.

Layout of a store directory (see embeddings/README.md):

    CURRENT              name of the published generation, e.g. "gen-000007"
    gen-000007/          one immutable generation
        meta.sqlite      info, articles, aliases, vectors (the embedding cache), related lists
    .lock                held by the one process allowed to write the store
    .tmp-*               a generation being written (removed by the next writer if left behind)

A generation is written completely in a temporary directory, flushed to disk, renamed into
place, and only then named in CURRENT (itself replaced atomically). A process killed at any
moment therefore leaves CURRENT naming a complete generation. Readers open generations
read-only and never see a partial one. The last `keep` generations (RECS_KEEP_GENERATIONS,
default KEEP) stay on disk: a reader that has just read CURRENT can still open the
generation it names, and `recs rollback` can make an earlier one current again (it
publishes a copy of it as the next generation, so history only grows).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from recs.articles import Article, fields_text, json_column, same_urls
from recs.errors import StoreIncompatible, StoreLocked, StoreNotFound, StoreWriteError
from recs.rank import Basis, Catalog, RankSettings

FORMAT_VERSION = 1
KEEP = 5
MIN_KEEP = 2  # the current generation and one to roll back to
CURRENT = "CURRENT"
LOCK = ".lock"
TMP_PREFIX = ".tmp-"
GEN_PREFIX = "gen-"
DB = "meta.sqlite"

SCHEMA = """
CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE articles (
    row INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    line INTEGER,
    text_hash TEXT NOT NULL,
    fields TEXT NOT NULL,
    original_url TEXT,
    published_ts REAL,
    pinned TEXT NOT NULL,
    excluded TEXT NOT NULL
);
CREATE TABLE aliases (alias TEXT PRIMARY KEY, url TEXT NOT NULL);
CREATE TABLE vectors (
    model_id TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model_id, text_hash)
);
CREATE TABLE related (row INTEGER PRIMARY KEY, items TEXT NOT NULL, floor REAL, basis TEXT);
"""
# `related.basis` (JSON [bar, [neighbour rows]] or NULL) came later within format 1: a store
# without the column reads as "no basis known", and older recs ignore the column.


@dataclass
class Snapshot:
    """One generation of the store, in memory. Row i of every array is articles[i]."""

    model_id: str
    dim: int
    settings: RankSettings
    articles: list[Article]
    vectors: np.ndarray
    related: list[list[tuple[int, float]]]
    floors: np.ndarray
    aliases: dict[str, str]
    bases: list[Basis | None] = field(default_factory=list)  # may be shorter: None
    generation: str = ""
    created: str = ""
    digest: str = ""
    revision: int = 0  # last journal entry folded in, in memory (0: none)
    journal_seq: int = 0  # last journal entry whose effect the generation's file holds
    made: str = ""  # how the generation was made: "build", "rollback to gen-000003", ...
    _catalog: Catalog | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.row_of = {a.url: i for i, a in enumerate(self.articles)}

    def __len__(self) -> int:
        return len(self.articles)

    @property
    def version(self) -> str:
        """Generation and journal revision: what a cached answer depends on."""
        return f"{self.generation}.{self.revision}"

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog.from_articles(self.articles, self.vectors)
        return self._catalog

    def resolve(self, url: str) -> int | None:
        """The row of a canonical URL (an article's own or its originalUrl), or None."""
        row = self.row_of.get(url)
        if row is None and url in self.aliases:
            row = self.row_of.get(self.aliases[url])
        return row


def article_record(article: Article) -> dict[str, Any]:
    """An article as JSON-ready data (the journal's form of an upsert)."""
    return {
        "url": article.url,
        "source": article.source,
        "line": article.line,
        "fields": dict(article.fields),
        "original_url": article.original_url,
        "published_ts": article.published_ts,
        "pinned": list(article.pinned),
        "excluded": list(article.excluded),
    }


def article_from_record(record: dict[str, Any]) -> Article:
    """The inverse of article_record."""
    fields_ = record["fields"]
    return Article(
        url=record["url"],
        title=fields_["title"],
        excerpt=fields_["excerpt"],
        fields=fields_,
        source=record["source"],
        line=record.get("line"),
        original_url=record.get("original_url"),
        published_ts=record.get("published_ts"),
        pinned=tuple(record.get("pinned") or ()),
        excluded=tuple(record.get("excluded") or ()),
    )


# Articles already in memory, by URL, each with its fields as `fields_text` gives them.
Known = Mapping[str, tuple[str, Article]]


def _known_article(row: tuple[Any, ...], known: Known) -> Article | None:
    """The known Article this row holds, if every stored value of it is equal."""
    hit = known.get(row[0])
    if hit is None:
        return None
    fields, a = hit
    _, source, line, text_hash, fields_json, original, ts, pinned, excluded = row
    if fields_json != fields or (source, line, text_hash) != (a.source, a.line, a.text_hash):
        return None
    if (original, ts) != (a.original_url, a.published_ts):
        return None
    if pinned != _urls_text(a.pinned) or excluded != _urls_text(a.excluded):
        return None
    return a


def _urls_text(urls: tuple[str, ...]) -> str:
    """Pinned or excluded URLs as the articles table keeps them."""
    return json.dumps(list(urls)) if urls else "[]"


def _stored_article(row: tuple[Any, ...], fields_: Any) -> Article:
    """An article from its row in a generation's `articles` table (fields parsed)."""
    url, source, line, text_hash, _, original, ts, pinned, excluded = row
    record = {
        "url": url,
        "source": source,
        "line": line,
        "fields": fields_,
        "original_url": original,
        "published_ts": ts,
        "pinned": json.loads(pinned) if pinned != "[]" else (),
        "excluded": json.loads(excluded) if excluded != "[]" else (),
    }
    return article_from_record(record).with_text_hash(text_hash)


# --- locking ----------------------------------------------------------------------------


@contextlib.contextmanager
def locked(store_dir: Path, wait: float = 0.0, what: str = "store") -> Iterator[None]:
    """Hold the store's write lock; after `wait` seconds without it, raise StoreLocked."""
    try:
        store_dir.mkdir(parents=True, exist_ok=True)
        handle = open(store_dir / LOCK, "a+")  # noqa: SIM115 - held for the whole block
    except OSError as error:
        raise StoreWriteError(_write_message(store_dir, error)) from None
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise StoreLocked(
                        f"the {what} {store_dir} is locked by {holder}: another recs build, "
                        "regenerate or write is running; wait for it to finish and try again"
                    ) from None
                time.sleep(0.05)
        with contextlib.suppress(OSError):  # who holds it is a courtesy; a full disk says no
            handle.seek(0)
            handle.truncate()
            handle.write(f"recs pid {os.getpid()}")
            handle.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            handle.close()


def _write_message(store_dir: Path, error: OSError | sqlite3.Error) -> str:
    if isinstance(error, sqlite3.Error):  # SQLite does its own I/O and says it its own way
        code = getattr(error, "sqlite_errorcode", None)
        reason = str(error)
        if code == sqlite3.SQLITE_FULL:
            reason = "the disk is full"
        elif code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
            reason = "the location is read-only or not writable"
    elif error.errno == errno.ENOSPC:
        reason = "the disk is full"
    elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        reason = "the location is read-only or not writable"
    else:
        reason = os.strerror(error.errno) if error.errno else str(error)
    return (
        f"cannot write the store {store_dir}: {reason}; the previous store is unchanged. "
        "Free space or choose a writable --store (RECS_STORE)"
    )


# --- reading ----------------------------------------------------------------------------


def current_generation(store_dir: Path) -> str | None:
    """The published generation's name, or None when the store has none."""
    try:
        name = (store_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StoreNotFound(f"cannot read the store {store_dir}: {error.strerror}") from None
    if not name.startswith(GEN_PREFIX) or "/" in name:
        raise StoreIncompatible(
            f"{store_dir / CURRENT} names {name!r}, not a generation; rebuild with `recs build`"
        )
    return name


def exists(store_dir: Path) -> bool:
    return current_generation(store_dir) is not None


def _connect_ro(path: Path) -> sqlite3.Connection:
    # immutable=1: published generations never change; no locks, works on read-only mounts.
    return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)


def load(
    store_dir: Path,
    model_id: str | None = None,
    known: Known | None = None,
    generation: str | None = None,
) -> Snapshot:
    """Load the published generation (or `generation`, one still kept). With model_id,
    refuse a store of another model.

    `known`: articles already in memory, by URL, each with its fields as `fields_text`
    gives them. A stored article whose row holds those same values is that Article
    (its fields are not parsed again); any other is read from its row.
    """
    for _attempt in range(5):
        name = generation or current_generation(store_dir)
        if name is None:
            raise StoreNotFound(
                f"no store at {store_dir}: run `recs build CONTENT_DIR --store {store_dir}` first"
            )
        path = store_dir / name / DB
        if path.is_file():
            break
        if generation is not None:
            raise StoreNotFound(
                f"the store {store_dir} has no generation {generation}; "
                "`recs generations` lists those kept"
            )
        time.sleep(0.05)  # CURRENT moved on and this generation was collected: read it again
    else:
        raise StoreNotFound(f"the store {store_dir} names {name} but it is missing; rebuild")
    try:
        snapshot = _read(path, name, known or {})
    except (sqlite3.DatabaseError, ValueError, KeyError, TypeError) as error:
        # SQLite's own damage, or a value that is not what recs writes (JSON, a list, a key).
        raise StoreIncompatible(
            f"the store {store_dir} ({name}) cannot be read ({error}); rebuild it with `recs build`"
        ) from None
    if model_id is not None:
        check_model(store_dir, snapshot.model_id, model_id)
    return snapshot


def check_model(store_dir: Path, built_with: str, model_id: str) -> None:
    """Refuse a store built with another model, saying how to rebuild."""
    if built_with != model_id:
        raise StoreIncompatible(
            f"the store {store_dir} was built with model {built_with}, not {model_id}: "
            f"rebuild it with `recs build CONTENT_DIR --store {store_dir} --rebuild`, or use the "
            "model it was built with (--model / RECS_MODEL)"
        )


def _read(path: Path, generation: str, known: Known) -> Snapshot:
    connection = _connect_ro(path)
    try:
        info = dict(connection.execute("SELECT key, value FROM info"))
        version = int(info.get("format_version", "0"))
        if version != FORMAT_VERSION:
            raise StoreIncompatible(
                f"the store at {path.parent.parent} has format {version}; this recs reads format "
                f"{FORMAT_VERSION}: rebuild it with `recs build CONTENT_DIR --rebuild`"
            )
        model_id, dim = info["model_id"], int(info["dim"])
        rows = connection.execute(
            "SELECT url, source, line, text_hash, fields, original_url, published_ts, "
            "pinned, excluded FROM articles ORDER BY row"
        ).fetchall()
        found = [_known_article(row, known) for row in rows]
        unknown = [i for i, article in enumerate(found) if article is None]
        fields_ = json_column([rows[i][4] for i in unknown])
        parsed = {
            i: _stored_article(rows[i], fields) for i, fields in zip(unknown, fields_, strict=True)
        }
        articles = [parsed[i] if a is None else a for i, a in enumerate(found)]
        hashes = [row[3] for row in rows]
        blobs = dict(
            connection.execute(
                "SELECT text_hash, vector FROM vectors WHERE model_id = ?", (model_id,)
            )
        )
        vectors = np.frombuffer(b"".join(blobs[h] for h in hashes), dtype=np.float32)
        vectors = vectors.reshape(len(articles), dim).copy()
        related: list[list[tuple[int, float]]] = [[] for _ in articles]
        floors = np.full(len(articles), -np.inf)
        bases: list[Basis | None] = [None] * len(articles)
        columns = {name for _, name, *_ in connection.execute("PRAGMA table_info(related)")}
        basis_column = "basis" if "basis" in columns else "NULL"
        lists = connection.execute(f"SELECT row, items, floor, {basis_column} FROM related")
        rows = lists.fetchall()
        items_ = json_column([row[1] for row in rows])
        with_basis = [row for row in rows if row[3] is not None]
        bases_ = json_column([row[3] for row in with_basis])
        for (row, _, floor, _), items in zip(rows, items_, strict=True):
            related[row] = [(int(r), float(s)) for r, s in items]
            floors[row] = -np.inf if floor is None else floor
        for (row, *_), (bar, neighbours) in zip(with_basis, bases_, strict=True):
            bases[row] = Basis(tuple(neighbours), float(bar))
        aliases = dict(connection.execute("SELECT alias, url FROM aliases"))
    finally:
        connection.close()
    return Snapshot(
        model_id=model_id,
        dim=dim,
        settings=RankSettings(**json.loads(info["settings"])),
        articles=articles,
        vectors=vectors,
        related=related,
        floors=floors,
        aliases=aliases,
        bases=bases,
        generation=generation,
        created=info.get("created", ""),
        digest=info.get("digest", ""),
        made=info.get("made", ""),
        journal_seq=int(info.get("journal_seq", "0")),
    )


# --- writing ----------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _info(snapshot: Snapshot) -> dict[str, str]:
    settings = {k: v for k, v in json.loads(snapshot.settings.fingerprint()).items()}
    return {
        "format_version": str(FORMAT_VERSION),
        "model_id": snapshot.model_id,
        "dim": str(snapshot.dim),
        "settings": json.dumps(settings, sort_keys=True),
        "created": snapshot.created,
        "generation": snapshot.generation,
        "digest": snapshot.digest,
        "article_count": str(len(snapshot)),
        "made": snapshot.made,
        "journal_seq": str(snapshot.journal_seq),
    }


def _article_row(row: int, a: Article) -> tuple[Any, ...]:
    return (
        row,
        a.url,
        a.source,
        a.line,
        a.text_hash,
        fields_text(a.fields),
        a.original_url,
        a.published_ts,
        _urls_text(a.pinned),
        _urls_text(a.excluded),
    )


def _stored(a: Article) -> tuple[Any, ...]:
    """What the articles table keeps of an article, unserialised (for comparing)."""
    fields = (a.source, a.line, a.text_hash, a.fields, a.original_url, a.published_ts)
    return (a.url, *fields, tuple(a.pinned), tuple(a.excluded))


def _related_row(
    row: int, items: list[tuple[int, float]], floor: float, basis: Basis | None
) -> tuple[Any, ...]:
    return (
        row,
        json.dumps([[r, s] for r, s in items]),
        _stored_floor(floor),
        None if basis is None else json.dumps([basis.bar, list(basis.neighbours)]),
    )


def _bases(snapshot: Snapshot) -> list[Basis | None]:
    return snapshot.bases + [None] * (len(snapshot.related) - len(snapshot.bases))


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _vector_row(snapshot: Snapshot, row: int) -> tuple[str, str, bytes]:
    vector = snapshot.vectors[row].astype(np.float32).tobytes()
    return (snapshot.model_id, snapshot.articles[row].text_hash, vector)


def _write_db(path: Path, snapshot: Snapshot) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        connection.executescript(SCHEMA)
        connection.executemany("INSERT INTO info VALUES (?, ?)", sorted(_info(snapshot).items()))
        connection.executemany(
            "INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_article_row(row, a) for row, a in enumerate(snapshot.articles)),
        )
        connection.executemany(
            "INSERT OR IGNORE INTO vectors VALUES (?, ?, ?)",
            (_vector_row(snapshot, row) for row in range(len(snapshot.articles))),
        )
        connection.executemany(
            "INSERT INTO related VALUES (?, ?, ?, ?)",
            (
                _related_row(row, items, floor, basis)
                for row, (items, floor, basis) in enumerate(
                    zip(snapshot.related, snapshot.floors, _bases(snapshot), strict=True)
                )
            ),
        )
        _insert_aliases(connection, snapshot)
        connection.commit()
    finally:
        connection.close()
    _fsync_file(path)


def _insert_aliases(connection: sqlite3.Connection, snapshot: Snapshot) -> None:
    connection.executemany("INSERT INTO aliases VALUES (?, ?)", sorted(snapshot.aliases.items()))


def _updatable(base: Snapshot, snapshot: Snapshot) -> bool:
    """Whether `snapshot` can be written as `base`'s file plus the rows that differ."""
    return (
        base.model_id == snapshot.model_id
        and base.dim == snapshot.dim
        and base.revision == 0  # the file holds exactly `base`: no journal entries folded in
        and base.settings == snapshot.settings  # other settings: every list differs anyway
        and same_urls(base.articles, snapshot.articles)
    )


def _update_db(source: Path, path: Path, base: Snapshot, snapshot: Snapshot) -> bool:
    """Write `snapshot` as a copy of `base`'s file with the rows that differ replaced.

    The same rows as `_write_db` (tests/test_store.py compares every table); a rebuild
    that changed 1% of the articles rewrites a few hundred rows instead of serialising all.
    False when `source` predates a column this version writes: write it whole instead.
    """
    shutil.copyfile(source, path)
    connection = sqlite3.connect(path)
    try:
        columns = {name for _, name, *_ in connection.execute("PRAGMA table_info(related)")}
        if "basis" not in columns:
            return False
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        connection.executemany(
            "INSERT OR REPLACE INTO info VALUES (?, ?)", sorted(_info(snapshot).items())
        )
        pairs = list(enumerate(zip(base.articles, snapshot.articles, strict=True)))
        connection.executemany(
            "INSERT OR REPLACE INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _article_row(row, new)
                for row, (old, new) in pairs
                if old is not new and _stored(old) != _stored(new)
            ),
        )
        # The vectors table holds the current articles' texts, as a full write leaves it.
        current = {a.text_hash for a in snapshot.articles}
        before = {a.text_hash for a in base.articles}
        connection.executemany(
            "DELETE FROM vectors WHERE model_id = ? AND text_hash = ?",
            ((snapshot.model_id, h) for h in sorted(before - current)),
        )
        connection.executemany(
            "INSERT OR IGNORE INTO vectors VALUES (?, ?, ?)",
            (
                _vector_row(snapshot, row)
                for row, a in enumerate(snapshot.articles)
                if a.text_hash not in before
            ),
        )
        old_bases, new_bases = _bases(base), _bases(snapshot)
        connection.executemany(
            "INSERT OR REPLACE INTO related VALUES (?, ?, ?, ?)",
            (
                _related_row(row, snapshot.related[row], snapshot.floors[row], new_bases[row])
                for row in range(len(snapshot.related))
                if snapshot.related[row] != base.related[row]
                or _stored_floor(snapshot.floors[row]) != _stored_floor(base.floors[row])
                or new_bases[row] != old_bases[row]
            ),
        )
        if snapshot.aliases != base.aliases:
            connection.execute("DELETE FROM aliases")
            _insert_aliases(connection, snapshot)
        connection.commit()
    finally:
        connection.close()
    _fsync_file(path)
    return True


def _stored_floor(floor: float) -> float | None:
    """A floor as the related table keeps it: NULL (read back as -inf) unless finite."""
    return None if not np.isfinite(floor) or floor < -1e300 else float(floor)


def _generations(store_dir: Path) -> list[str]:
    return sorted(
        p.name for p in store_dir.iterdir() if p.is_dir() and p.name.startswith(GEN_PREFIX)
    )


def clean_leftovers(store_dir: Path) -> int:
    """Remove temporary directories of writers that died. Call with the lock held."""
    removed = 0
    for path in store_dir.glob(TMP_PREFIX + "*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed


def publish(
    store_dir: Path, snapshot: Snapshot, base: Snapshot | None = None, keep: int = KEEP
) -> str:
    """Write `snapshot` as the next generation and make it current. Call with the lock held.

    `base`, the generation `snapshot` was built from as loaded, lets the write copy its file
    and replace only the rows that differ. Returns the new generation's name. When the disk
    fails (full or read-only: an OSError, or SQLite's own error) the previous generation
    stays current and StoreWriteError says so. Generations but the newest `keep` are removed.
    """
    if keep < MIN_KEEP:
        raise ValueError(f"keep must be at least {MIN_KEEP}, not {keep}")
    try:
        store_dir.mkdir(parents=True, exist_ok=True)
        clean_leftovers(store_dir)
        existing = _generations(store_dir)
        number = int(existing[-1][len(GEN_PREFIX) :]) + 1 if existing else 1
        name = f"{GEN_PREFIX}{number:06d}"
        snapshot.generation = name
        snapshot.created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        temp = store_dir / f"{TMP_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
        temp.mkdir()
        updated = False
        if base is not None and _updatable(base, snapshot):
            source = store_dir / base.generation / DB
            updated = source.is_file() and _update_db(source, temp / DB, base, snapshot)
        if not updated:
            (temp / DB).unlink(missing_ok=True)
            _write_db(temp / DB, snapshot)
        _fsync_dir(temp)
        os.replace(temp, store_dir / name)
        pointer = store_dir / f"{TMP_PREFIX}{CURRENT}-{uuid.uuid4().hex[:8]}"
        with open(pointer, "w", encoding="utf-8") as handle:
            handle.write(name + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(pointer, store_dir / CURRENT)
    except (OSError, sqlite3.Error) as error:
        with contextlib.suppress(OSError):
            clean_leftovers(store_dir)
        raise StoreWriteError(_write_message(store_dir, error)) from None
    try:
        _fsync_dir(store_dir)
    except OSError as error:
        # CURRENT already names the new generation: say so rather than "unchanged".
        raise StoreWriteError(
            f"published {name} in {store_dir}, but flushing the directory failed "
            f"({os.strerror(error.errno) if error.errno else error}); after a power loss the "
            "previous generation may be current again. Check the disk, then build again"
        ) from None
    for old in _generations(store_dir)[:-keep]:
        shutil.rmtree(store_dir / old, ignore_errors=True)
    return name


@dataclass(frozen=True)
class Generation:
    """One kept generation, as `recs generations` lists it."""

    name: str
    created: str
    articles: int
    made: str
    current: bool


def generations(store_dir: Path) -> list[Generation]:
    """The generations kept on disk, oldest first, read from their info tables only."""
    if not store_dir.is_dir():
        raise StoreNotFound(f"no store at {store_dir}: run `recs build CONTENT_DIR` first")
    current = current_generation(store_dir)
    found = []
    for name in _generations(store_dir):
        try:
            connection = _connect_ro(store_dir / name / DB)
            try:
                info = dict(connection.execute("SELECT key, value FROM info"))
            finally:
                connection.close()
        except sqlite3.DatabaseError:
            continue  # removed while listing, or damaged: not a generation to roll back to
        count = int(info.get("article_count", "0") or 0)
        made = info.get("made") or "build"  # generations from before `made` was recorded
        found.append(Generation(name, info.get("created", ""), count, made, name == current))
    return found


# --- the write journal ------------------------------------------------------------------
#
# Writes through the API (upsert, delete) are appended to journal.sqlite in the store
# directory, each tagged with the generation it applies to. Appending is durable (WAL,
# synchronous=FULL) and cheap; every server process polls the journal and applies new
# entries to its loaded generation. The next build (or rollback) folds the entries into the
# generation it publishes, records the last one's number as that generation's
# `journal_seq`, and only then clears the entries up to it; entries for an older generation
# are never applied to a newer one, so a build that dies between publishing and clearing
# loses nothing.

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
    """One journal entry: an upserted article (fields, vector) or a deleted URL."""

    seq: int
    op: str
    url: str
    article: dict[str, Any] | None = None
    vector: np.ndarray | None = None


def _journal(store_dir: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(store_dir / JOURNAL, timeout=10.0)
    connection.execute("PRAGMA journal_mode = WAL")
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
                    article = (
                        None
                        if change.article is None
                        else json.dumps(change.article, ensure_ascii=False)
                    )
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
    # On a read-only mount (replicas sharing a store) SQLite cannot create the WAL index
    # it needs to read; nothing on this host can write the journal there, so read it as
    # an immutable file.
    flags = "mode=ro" if os.access(store_dir, os.W_OK) else "mode=ro&immutable=1"
    try:
        connection = sqlite3.connect(f"file:{path}?{flags}", uri=True, timeout=10.0)
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
            article=None if article is None else json.loads(article),
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


def store_info(store_dir: Path) -> dict[str, Any]:
    """The info table of the published generation, without loading articles or vectors."""
    name = current_generation(store_dir)
    if name is None:
        raise StoreNotFound(f"no store at {store_dir}: run `recs build CONTENT_DIR` first")
    connection = _connect_ro(store_dir / name / DB)
    try:
        info: dict[str, Any] = dict(connection.execute("SELECT key, value FROM info"))
    except sqlite3.DatabaseError as error:
        raise StoreIncompatible(
            f"the store {store_dir} cannot be read ({error}); rebuild it"
        ) from None
    finally:
        connection.close()
    info["generation"] = name
    return info
