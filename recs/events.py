"""Reader events: impressions and clicks of related lists, kept to measure the lists.

An event says that a related list showed an item (`impression`) or that a reader followed
it (`click`): the article whose list it was, the item, its position (1 = first) and the
server's time in whole seconds. Nothing about the reader is kept: no address, cookie,
user agent or request id.

Events live in `events.sqlite` in the store directory, beside the generations and never
in one: no build, rollback or clean-up removes them. Every server process appends to it
(WAL; SQLite serialises the writers, each waiting up to BUSY_SECONDS for the others'
short transactions). URLs are kept once each in `urls`, and events refer to them by id:
measured on 200,000 events over 5,000 URLs of 90 characters, 41 bytes an event on disk
(the time index included) instead of 231 with both URLs written out.
Events older than the retention (RECS_EVENTS_DAYS) are pruned by the servers as they
write, and by `recs report --prune`.

`read_report` counts what a window of events says: click-through rate by position, the
lists shown most, and the items shown most often without a click.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recs.errors import ConfigError, InvalidInput, StoreIncompatible, StoreWriteError
from recs.fsio import sqlite_reader, sqlite_writer
from recs.urls import canonical_url

EVENTS = "events.sqlite"
TYPES = ("impression", "click")  # stored as their index: 0, 1
IMPRESSION, CLICK = range(2)
DAY = 86_400
BUSY_SECONDS = 5.0  # how long a writer waits for another process's transaction
PRUNE_CHUNK = 10_000  # events deleted per transaction, so no writer waits long for a prune
SCHEMA = """
CREATE TABLE IF NOT EXISTS urls (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS events (
    time INTEGER NOT NULL,
    type INTEGER NOT NULL CHECK (type IN (0, 1)),
    article INTEGER NOT NULL REFERENCES urls (id),
    item INTEGER NOT NULL REFERENCES urls (id),
    position INTEGER NOT NULL CHECK (position >= 1)
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (time);
"""


@dataclass(frozen=True, slots=True)
class Event:
    """One impression or click of an item in an article's related list."""

    type: str  # "impression" or "click"
    article: str  # canonical URL of the article whose list it was
    item: str  # canonical URL of the item shown or followed
    position: int  # 1 for the first item of the list


def make_event(type: str, article: str, item: str, position: int, max_position: int) -> Event:
    """An Event with canonical URLs, or InvalidInput naming the field that is wrong."""
    if type not in TYPES:
        raise InvalidInput(f"type: {type[:40]!r} is not one of {', '.join(TYPES)}")
    if not 1 <= position <= max_position:
        raise InvalidInput(
            f"position: must be between 1 and {max_position} (RECS_MAX_LIMIT), not {position}"
        )
    urls = []
    for name, url in (("article", article), ("item", item)):
        try:
            urls.append(canonical_url(url))
        except InvalidInput as error:
            raise InvalidInput(f"{name}: {error}") from None
    return Event(type, urls[0], urls[1], position)


def stored_only(
    events: Iterable[Event], resolve: Callable[[str], str | None]
) -> tuple[list[Event], int]:
    """The events whose article and item are stored, with the stored articles' URLs
    (`resolve` maps an originalUrl to its article's URL; None for an unknown one), and
    how many were left out. Only stored URLs are kept: the table cannot be filled with
    made-up ones."""
    kept = []
    left_out = 0
    for event in events:
        article, item = resolve(event.article), resolve(event.item)
        if article is None or item is None:
            left_out += 1
        elif (article, item) == (event.article, event.item):
            kept.append(event)
        else:
            kept.append(Event(event.type, article, item, event.position))
    return kept, left_out


# --- writing ----------------------------------------------------------------------------


def connect(store_dir: Path) -> sqlite3.Connection:
    """A writing connection to the store's event file (created if need be).

    Transactions are explicit (`BEGIN IMMEDIATE`): a writer takes the write lock up
    front, waiting up to BUSY_SECONDS, instead of failing half-way through.
    """
    try:
        connection = sqlite_writer(store_dir / EVENTS, timeout=BUSY_SECONDS)
        connection.isolation_level = None
        # NORMAL: a commit survives the process; an OS crash may lose the last second of
        # events, which is not worth an fsync per batch.
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.executescript(SCHEMA)
    except sqlite3.Error as error:
        raise StoreWriteError(
            f"cannot write reader events to {store_dir / EVENTS} ({error}): the store "
            "must be writable by the server while RECS_EVENTS is on"
        ) from None
    return connection


def check_writable(store_dir: Path) -> None:
    """Create the event file if need be; ConfigError naming RECS_EVENTS when the store
    cannot hold it (a read-only mount): `recs serve` checks before it starts."""
    try:
        connect(store_dir).close()
    except StoreWriteError as error:
        raise ConfigError(f"RECS_EVENTS is on, but {error}; or leave RECS_EVENTS off") from None


def write_events(connection: sqlite3.Connection, batch: Sequence[tuple[int, Event]]) -> None:
    """Append (time, event) pairs in one transaction."""
    if not batch:
        return
    urls = sorted({e.article for _, e in batch} | {e.item for _, e in batch})
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.executemany(
            "INSERT INTO urls (url) VALUES (?) ON CONFLICT (url) DO NOTHING",
            [(url,) for url in urls],
        )
        ids: dict[str, int] = {}
        for start in range(0, len(urls), 500):  # under SQLite's limit on parameters
            chunk = urls[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            ids.update(
                connection.execute(f"SELECT url, id FROM urls WHERE url IN ({marks})", chunk)
            )
        connection.executemany(
            "INSERT INTO events (time, type, article, item, position) VALUES (?, ?, ?, ?, ?)",
            [
                (when, TYPES.index(e.type), ids[e.article], ids[e.item], e.position)
                for when, e in batch
            ],
        )
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def prune(connection: sqlite3.Connection, before: int) -> int:
    """Delete events older than `before` (seconds since the epoch); returns how many.

    URLs stay in `urls`: they are stored articles' URLs, a bounded set, and a running
    server may be about to refer to them again.
    """
    removed = 0
    while True:
        connection.execute("BEGIN IMMEDIATE")
        try:
            cursor = connection.execute(
                "DELETE FROM events WHERE rowid IN "
                "(SELECT rowid FROM events WHERE time < ? LIMIT ?)",
                (before, PRUNE_CHUNK),
            )
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        removed += cursor.rowcount
        if cursor.rowcount < PRUNE_CHUNK:
            return removed


def prune_store(store_dir: Path, days: int, now: float | None = None) -> int:
    """Delete the store's events older than `days` days; returns how many."""
    if not (store_dir / EVENTS).is_file():
        return 0
    connection = connect(store_dir)
    try:
        return prune(connection, cutoff(days, now))
    except sqlite3.Error as error:
        raise StoreWriteError(f"cannot prune {store_dir / EVENTS} ({error})") from None
    finally:
        connection.close()


def cutoff(days: int, now: float | None = None) -> int:
    """The first second of a window of `days` days ending now."""
    return int(time.time() if now is None else now) - days * DAY


# --- the report -------------------------------------------------------------------------


def ctr(clicks: int, impressions: int) -> float | None:
    """Click-through rate: clicks per impression; None when nothing was shown."""
    return clicks / impressions if impressions else None


@dataclass(frozen=True)
class Counts:
    """Impressions and clicks of one position, one list, one item or everything."""

    impressions: int = 0
    clicks: int = 0

    @property
    def ctr(self) -> float | None:
        return ctr(self.clicks, self.impressions)

    def as_json(self) -> dict[str, Any]:
        return {"impressions": self.impressions, "clicks": self.clicks, "ctr": self.ctr}


@dataclass(frozen=True)
class Report:
    """What the events of a window say about the lists."""

    since: int  # the window: seconds since the epoch, from `since` on
    until: int
    first: int | None = None  # the first and last event in the window
    last: int | None = None
    total: Counts = field(default_factory=Counts)
    list_count: int = 0  # lists (articles) with at least one event
    positions: list[tuple[int, Counts]] = field(default_factory=list)  # 1..the last shown
    lists: list[tuple[str, Counts]] = field(default_factory=list)  # most shown first
    unclicked: list[tuple[str, int]] = field(default_factory=list)  # item, impressions

    @property
    def empty(self) -> bool:
        return self.first is None

    def as_json(self) -> dict[str, Any]:
        """The report as JSON values (dates as ISO 8601 UTC)."""
        return {
            "window": {"since": iso(self.since), "until": iso(self.until)},
            "first": None if self.first is None else iso(self.first),
            "last": None if self.last is None else iso(self.last),
            "total": {**self.total.as_json(), "lists": self.list_count},
            "positions": [{"position": p, **c.as_json()} for p, c in self.positions],
            "lists": [{"article": url, **c.as_json()} for url, c in self.lists],
            "unclicked": [{"item": url, "impressions": n} for url, n in self.unclicked],
        }


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def has_events(store_dir: Path) -> bool:
    """Whether the store has an event file (recording was on at some point)."""
    return (store_dir / EVENTS).is_file()


def read_report(store_dir: Path, since: int, until: int | None = None, top: int = 10) -> Report:
    """Count the store's events from `since` to `until` (seconds; inclusive; None: now).

    `top` bounds the lists and the unclicked items shown. Reads on a read-only mount too.
    """
    until = int(time.time()) if until is None else until
    path = store_dir / EVENTS
    if not path.is_file():
        return Report(since, until)
    window = "time >= ? AND time <= ?"
    shown = f"SUM(type = {IMPRESSION})"
    clicked = f"SUM(type = {CLICK})"
    try:
        connection = sqlite_reader(path)
        try:
            connection.execute("BEGIN")  # one snapshot for every count below
            first, last, impressions, clicks, list_count = connection.execute(
                f"SELECT MIN(time), MAX(time), {shown}, {clicked}, COUNT(DISTINCT article) "
                f"FROM events WHERE {window}",
                (since, until),
            ).fetchone()
            by_position = {
                position: Counts(a, b)
                for position, a, b in connection.execute(
                    f"SELECT position, {shown}, {clicked} FROM events WHERE {window} "
                    "GROUP BY position",
                    (since, until),
                )
            }
            lists = [
                (url, Counts(a, b))
                for url, a, b in connection.execute(
                    f"SELECT urls.url, {shown} AS shown, {clicked} FROM events "
                    f"JOIN urls ON urls.id = events.article WHERE {window} "
                    "GROUP BY events.article ORDER BY shown DESC, urls.url LIMIT ?",
                    (since, until, top),
                )
            ]
            unclicked = connection.execute(
                f"SELECT urls.url, {shown} AS shown FROM events "
                f"JOIN urls ON urls.id = events.item WHERE {window} "
                f"GROUP BY events.item HAVING {clicked} = 0 AND shown > 0 "
                "ORDER BY shown DESC, urls.url LIMIT ?",
                (since, until, top),
            ).fetchall()
        finally:
            connection.close()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return Report(since, until)
        raise StoreIncompatible(f"cannot read the reader events {path} ({error})") from None
    if first is None:
        return Report(since, until)
    last_position = max(by_position)
    return Report(
        since=since,
        until=until,
        first=first,
        last=last,
        total=Counts(impressions, clicks),
        list_count=list_count,
        positions=[(p, by_position.get(p, Counts())) for p in range(1, last_position + 1)],
        lists=lists,
        unclicked=[(url, int(n)) for url, n in unclicked],
    )
