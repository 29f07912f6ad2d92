"""One generation of a store: the `Snapshot` in memory and its SQLite file on disk.

A generation's `meta.sqlite` holds the info table (format, model, ranking settings, how
and when it was made), the articles (one row each: their record and fields, see
recs.records), the vectors (the embedding cache, by model and text hash), every related
list with its floor and basis (recs.rank.Ranked), and the originalUrl aliases. A file is
written once, whole or as a copy of the previous generation's with the rows that differ,
and never changed after: readers open it immutable. recs.store decides where it goes.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recs.articles import Article, same_urls
from recs.catalog import Catalog
from recs.collector import collector_paused
from recs.errors import StoreIncompatible
from recs.fsio import fsync_file
from recs.rank_settings import RankSettings
from recs.ranked import Basis, Item
from recs.records import Known, article_from_record, fields_text, known_article, urls_text

# 2: items with score, similarity, step and same story; new filter names.
# 3: items as packed binary records (ITEM), their same-story rows apart (JSON, or NULL).
FORMAT_VERSION = 3
READABLE = (1, 2, FORMAT_VERSION)  # older formats are read (settings translated), never written
# Format 1's names of ranking options, and what its lists were ranked without.
_FORMAT_1_NAMES = {
    "types": "type",
    "exclude_providers": "exclude_provider",
    "require_providers": "provider",
    "exclude_urls": "exclude_url",
}
_FORMAT_1_RANKING = {"min_similarity": None, "include_drafts": True}
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
CREATE TABLE related (
    row INTEGER PRIMARY KEY,
    items BLOB NOT NULL,
    stories TEXT,
    floor REAL,
    basis TEXT
);
"""
# `related.items`: one ITEM record per item; `stories`: NULL when no item collapsed
# duplicates, else a JSON list of each item's same-story rows; `basis`: JSON [bar,
# [neighbour rows]] or NULL. Formats 1 and 2 kept items as JSON ([row, cosine] in format 1;
# [row, score, similarity, step, [same story rows]] in 2) and no `stories`; `basis` came
# later within format 1, and a store without it reads as "no basis known".
# Binary items because decoding the JSON of a 10,000-article store's 50,000 items was most
# of loading it: in a 1% rebuild the load took 159 ms of CPU with them, 123 with one array
# over every list's records (2.5% of the rebuild).
ITEM = np.dtype([("row", "<i4"), ("score", "<f8"), ("similarity", "<f8"), ("step", "<i2")])


@dataclass
class Snapshot:
    """One generation of the store, in memory. Row i of every array is articles[i]."""

    model_id: str
    dim: int
    settings: RankSettings
    articles: list[Article]
    vectors: np.ndarray
    related: list[list[Item]]
    floors: np.ndarray
    aliases: dict[str, str]
    bases: list[Basis | None] = field(default_factory=list)  # may be shorter: None
    generation: str = ""
    created: str = ""
    digest: str = ""
    revision: int = 0  # last journal entry folded in, in memory (0: none)
    journal_seq: int = 0  # last journal entry whose effect the generation's file holds
    made: str = ""  # how the generation was made: "build", "rollback to gen-000003", ...
    ranked_at: float | None = None  # the moment its lists judged dates by (recs.catalog)
    _catalog: Catalog | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self._catalog is not None:  # the same map, made already
            self.row_of = self._catalog.row_of
        else:
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
            self._catalog = Catalog.from_articles(self.articles, self.vectors, self.ranked_at)
        return self._catalog

    def resolve(self, url: str) -> int | None:
        """The row of a canonical URL (an article's own or its originalUrl), or None."""
        row = self.row_of.get(url)
        if row is None and url in self.aliases:
            row = self.row_of.get(self.aliases[url])
        return row


# --- reading ----------------------------------------------------------------------------


def connect_ro(path: Path) -> sqlite3.Connection:
    """A generation's file, read-only (no locks: it never changes; works on read-only mounts)."""
    return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)


def read_info(path: Path) -> dict[str, str]:
    """The info table of the generation file at `path`, without reading anything else."""
    connection = connect_ro(path)
    try:
        return dict(connection.execute("SELECT key, value FROM info"))
    finally:
        connection.close()


@collector_paused
def read(path: Path, generation: str, known: Known) -> Snapshot:
    """The generation file at `path` (named `generation`). `known`: articles in memory
    that a stored row may be (recs.records.known_article). A file recs did not write that
    way raises sqlite3.DatabaseError, ValueError, KeyError or TypeError."""
    connection = connect_ro(path)
    try:
        info = dict(connection.execute("SELECT key, value FROM info"))
        version = int(info.get("format_version", "0"))
        if version not in READABLE:
            raise StoreIncompatible(
                f"the store at {path.parent.parent} has format {version}; this recs reads format "
                f"{FORMAT_VERSION}: rebuild it with `recs build CONTENT_DIR --rebuild`"
            )
        model_id, dim = info["model_id"], int(info["dim"])
        rows = connection.execute(
            "SELECT url, source, line, original_url, published_ts, pinned, excluded, fields, "
            "text_hash FROM articles ORDER BY row"
        ).fetchall()
        articles = []
        for *values, fields, hashed in rows:
            article = known_article(values, fields, known)
            if article is None:
                values[5], values[6] = json.loads(values[5]), json.loads(values[6])
                article = article_from_record(values, json.loads(fields))
            # The row's text hash is its article's (same fields, same text): computing it
            # again for 10,000 articles took 40 ms of CPU, 2.7% of a 1% rebuild.
            articles.append(article.with_text_hash(hashed))
        blobs = dict(
            connection.execute(
                "SELECT text_hash, vector FROM vectors WHERE model_id = ?", (model_id,)
            )
        )
        vectors = np.frombuffer(b"".join(blobs[row[-1]] for row in rows), dtype=np.float32)
        vectors = vectors.reshape(len(articles), dim).copy()
        related, floors, bases = _read_lists(connection, version, len(articles))
        aliases = dict(connection.execute("SELECT alias, url FROM aliases"))
    finally:
        connection.close()
    return Snapshot(
        model_id=model_id,
        dim=dim,
        settings=_settings(json.loads(info["settings"]), version),
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
        ranked_at=float(info["ranked_at"]) if info.get("ranked_at") else None,
    )


def _read_lists(
    connection: sqlite3.Connection, version: int, n: int
) -> tuple[list[list[Item]], np.ndarray, list[Basis | None]]:
    """The related table: each row's list, floor and basis."""
    related: list[list[Item]] = [[] for _ in range(n)]
    floors = np.full(n, -np.inf)
    bases: list[Basis | None] = [None] * n
    if version >= 3:
        lists = connection.execute("SELECT row, items, stories, floor, basis FROM related")
        rows = lists.fetchall()
        for (row, _, _, _, _), items in zip(rows, _decoded_items(rows), strict=True):
            related[row] = items
    else:
        columns = {name for _, name, *_ in connection.execute("PRAGMA table_info(related)")}
        basis_column = "basis" if "basis" in columns else "NULL"
        lists = connection.execute(f"SELECT row, items, NULL, floor, {basis_column} FROM related")
        rows = lists.fetchall()
        for row, items, *_ in rows:
            related[row] = [_json_item(values) for values in json.loads(items)]
    for row, _, _, floor, basis in rows:
        floors[row] = -np.inf if floor is None else floor
        if basis is not None:
            bar, neighbours = json.loads(basis)
            bases[row] = Basis(tuple(neighbours), float(bar))
    return related, floors, bases


def _decoded_items(rows: list[tuple[Any, ...]]) -> list[list[Item]]:
    """The items of format-3 related rows (row, items, stories, ...), decoded together."""
    sizes = [len(items) // ITEM.itemsize for _, items, *_ in rows]
    stories: list[tuple[int, ...]] = []
    for (row, items, story, *_), size in zip(rows, sizes, strict=True):
        found = [()] * size if story is None else [tuple(s) for s in json.loads(story)]
        if len(items) % ITEM.itemsize or len(found) != size:
            raise ValueError(
                f"related row {row}: {len(items)} bytes of items do not match "
                f"{len(found)} same-story entries"
            )
        stories.extend(found)
    records = np.frombuffer(b"".join(items for _, items, *_ in rows), dtype=ITEM)
    decoded = list(
        map(
            Item,
            records["row"].tolist(),
            records["score"].tolist(),
            records["similarity"].tolist(),
            records["step"].tolist(),
            stories,
        )
    )
    ends = np.cumsum(sizes).tolist()
    return [decoded[end - size : end] for end, size in zip(ends, sizes, strict=True)]


def _settings(stored: dict[str, Any], version: int) -> RankSettings:
    """The ranking settings a generation records; a format-1 generation's with today's
    names, and with what its lists were ranked without (no floor, drafts recommended)."""
    if version == 1:
        stored = {_FORMAT_1_NAMES.get(k, k): v for k, v in stored.items()}
        stored = {**_FORMAT_1_RANKING, **stored}
        stored.pop("published_only", None)
    return RankSettings(**stored)


# --- writing ----------------------------------------------------------------------------


def _info(snapshot: Snapshot) -> dict[str, str]:
    return {
        "format_version": str(FORMAT_VERSION),
        "model_id": snapshot.model_id,
        "dim": str(snapshot.dim),
        "settings": snapshot.settings.fingerprint(),
        "created": snapshot.created,
        "generation": snapshot.generation,
        "digest": snapshot.digest,
        "article_count": str(len(snapshot)),
        "made": snapshot.made,
        "journal_seq": str(snapshot.journal_seq),
        "ranked_at": "" if snapshot.ranked_at is None else repr(snapshot.ranked_at),
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
        urls_text(a.pinned),
        urls_text(a.excluded),
    )


def _stored(a: Article) -> tuple[Any, ...]:
    """What the articles table keeps of an article, unserialised (for comparing)."""
    fields = (a.source, a.line, a.text_hash, a.fields, a.original_url, a.published_ts)
    return (a.url, *fields, tuple(a.pinned), tuple(a.excluded))


def _related_rows(
    rows: list[int],
    lists: list[list[Item]],
    floors: list[float | None],
    bases: list[Basis | None],
) -> list[tuple[Any, ...]]:
    """Related table rows; `floors` as `_stored_floors` gives them. The items of every
    list are packed in one array: per list, numpy's overhead cost more than the packing."""
    records = np.array(
        [(i.row, i.score, i.similarity, i.step) for items in lists for i in items], dtype=ITEM
    )
    data, size = records.tobytes(), ITEM.itemsize
    ends = np.cumsum([len(items) * size for items in lists]).tolist()
    return [
        (
            row,
            data[end - len(items) * size : end],
            json.dumps([list(i.same_story) for i in items])
            if any(i.same_story for i in items)
            else None,
            floor,
            None if basis is None else json.dumps([basis.bar, list(basis.neighbours)]),
        )
        for row, items, end, floor, basis in zip(rows, lists, ends, floors, bases, strict=True)
    ]


def _json_item(values: Any) -> Item:
    """An item as formats 1 and 2 kept it: [row, cosine] in format 1 (the cosine was the
    score), [row, score, similarity, step, [same story rows]] in format 2."""
    if len(values) == 2:
        return Item(int(values[0]), float(values[1]), float(values[1]))
    row, score, similarity, step, story = values
    return Item(int(row), float(score), float(similarity), int(step), tuple(map(int, story)))


def _stored_floors(floors: np.ndarray) -> list[float | None]:
    """Floors as the related table keeps them: NULL (read back as -inf) unless finite."""
    kept = (np.isfinite(floors) & (floors >= -1e300)).tolist()
    return [floor if keep else None for floor, keep in zip(floors.tolist(), kept, strict=True)]


def _bases(snapshot: Snapshot) -> list[Basis | None]:
    return snapshot.bases + [None] * (len(snapshot.related) - len(snapshot.bases))


def _vector_row(snapshot: Snapshot, row: int) -> tuple[str, str, bytes]:
    vector = snapshot.vectors[row].astype(np.float32).tobytes()
    return (snapshot.model_id, snapshot.articles[row].text_hash, vector)


def _insert_aliases(connection: sqlite3.Connection, snapshot: Snapshot) -> None:
    connection.executemany("INSERT INTO aliases VALUES (?, ?)", sorted(snapshot.aliases.items()))


def write(path: Path, snapshot: Snapshot) -> None:
    """Write `snapshot` whole as a new file at `path`, flushed to disk."""
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
        rows = list(range(len(snapshot.related)))
        connection.executemany(
            "INSERT INTO related VALUES (?, ?, ?, ?, ?)",
            _related_rows(
                rows, snapshot.related, _stored_floors(snapshot.floors), _bases(snapshot)
            ),
        )
        _insert_aliases(connection, snapshot)
        connection.commit()
    finally:
        connection.close()
    fsync_file(path)


def updatable(base: Snapshot, snapshot: Snapshot) -> bool:
    """Whether `snapshot` can be written as `base`'s file plus the rows that differ."""
    return (
        base.model_id == snapshot.model_id
        and base.dim == snapshot.dim
        and base.revision == 0  # the file holds exactly `base`: no journal entries folded in
        and base.settings == snapshot.settings  # other settings: every list differs anyway
        and same_urls(base.articles, snapshot.articles)
    )


def update(source: Path, path: Path, base: Snapshot, snapshot: Snapshot) -> bool:
    """Write `snapshot` at `path` as a copy of `base`'s file (`source`) with the rows that
    differ replaced: the same rows as `write` (tests/test_generation.py compares every
    table). A rebuild that changed 1% of 10,000 articles then writes a few hundred rows
    instead of all (it publishes in 0.11-0.2 s: README, "Performance"). False when
    `source` has another format than this version writes: write it whole instead."""
    if read_info(source).get("format_version") != str(FORMAT_VERSION):
        return False
    shutil.copyfile(source, path)
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        connection.executemany(
            "INSERT OR REPLACE INTO info VALUES (?, ?)", sorted(_info(snapshot).items())
        )
        pairs = list(enumerate(zip(base.articles, snapshot.articles, strict=True)))
        connection.executemany(
            "INSERT OR REPLACE INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_article_row(row, new) for row, (old, new) in pairs if _stored(old) != _stored(new)),
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
        old_floors, new_floors = _stored_floors(base.floors), _stored_floors(snapshot.floors)
        rows = [
            row
            for row in range(len(snapshot.related))
            if snapshot.related[row] != base.related[row]
            or new_floors[row] != old_floors[row]
            or new_bases[row] != old_bases[row]
        ]
        connection.executemany(
            "INSERT OR REPLACE INTO related VALUES (?, ?, ?, ?, ?)",
            _related_rows(
                rows,
                [snapshot.related[row] for row in rows],
                [new_floors[row] for row in rows],
                [new_bases[row] for row in rows],
            ),
        )
        if snapshot.aliases != base.aliases:
            connection.execute("DELETE FROM aliases")
            _insert_aliases(connection, snapshot)
        connection.commit()
    finally:
        connection.close()
    fsync_file(path)
    return True
