"""Reader events on disk (recs.events): storage, pruning, the report's arithmetic, bounds,
read-only reading."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from recs import events
from recs.config import Settings
from recs.errors import ConfigError, InvalidInput
from recs.events import DAY, Event, make_event
from tests.conftest import read_only_mount

NOW = 1_700_000_000  # 2023-11-14T22:13:20Z
A, B, C, D = (f"https://example.com/{name}" for name in "abcd")


def shown(article: str, items: list[str]) -> list[Event]:
    """The impressions of one list."""
    return [Event("impression", article, item, n) for n, item in enumerate(items, 1)]


def record(store_dir: Path, batch: list[tuple[int, Event]]) -> None:
    connection = events.connect(store_dir)
    try:
        events.write_events(connection, batch)
    finally:
        connection.close()


def test_events_are_off_by_default_and_their_settings_are_bounded():
    settings = Settings()
    assert (settings.events, settings.events_days, settings.events_rate) == (False, 90, 1000)
    read = Settings.from_env({"RECS_EVENTS": "on", "RECS_EVENTS_DAYS": "30"})
    assert (read.events, read.events_days) == (True, 30)
    for name, bad in (("RECS_EVENTS_DAYS", "0"), ("RECS_EVENTS_RATE", "0")):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: bad})


def test_an_event_has_canonical_urls_and_a_bounded_position():
    event = make_event(
        "click", "http://EXAMPLE.com/a/?utm_source=feed#top", "https://example.com/b/", 3, 50
    )
    assert event == Event("click", A, B, 3)
    with pytest.raises(InvalidInput, match="type: 'view' is not one of impression, click"):
        make_event("view", A, B, 1, 50)
    with pytest.raises(InvalidInput, match=r"position: must be between 1 and 5 \(RECS_MAX_LIMIT"):
        make_event("click", A, B, 6, 5)
    with pytest.raises(InvalidInput, match="position"):
        make_event("click", A, B, 0, 5)
    with pytest.raises(InvalidInput, match=r"^item: .*http"):
        make_event("click", A, "ftp://example.com/b", 1, 5)
    with pytest.raises(InvalidInput, match=r"^article: "):
        make_event("click", "/relative", B, 1, 5)


def test_only_events_of_stored_articles_are_kept():
    stored = {A: A, B: B, "https://example.com/old-b": B}  # an originalUrl names B
    kept, left_out = events.stored_only(
        [
            Event("impression", A, "https://example.com/old-b", 1),
            Event("impression", A, "https://example.com/gone", 2),
            Event("click", "https://example.com/unknown", B, 1),
        ],
        stored.get,
    )
    assert kept == [Event("impression", A, B, 1)]
    assert left_out == 2


def test_the_report_counts_known_events(tmp_path):
    """Positions 1-3 and 5 shown (4 never), three lists: every figure worked out by hand."""
    batch = []
    for n in range(10):  # list A shown 10 times: B, C, D at positions 1-3
        batch += [(NOW - 100 + n, e) for e in shown(A, [B, C, D])]
    for n in range(4):  # list B shown 4 times: A at 1, C at 2
        batch += [(NOW - 50 + n, e) for e in shown(B, [A, C])]
    batch.append((NOW - 10, Event("impression", C, A, 5)))  # a list that showed 5 items
    clicks = [Event("click", A, B, 1)] * 3 + [Event("click", A, C, 2), Event("click", B, A, 1)]
    batch += [(NOW - 5, e) for e in clicks]
    record(tmp_path, batch)

    report = events.read_report(tmp_path, since=NOW - DAY, until=NOW)
    assert (report.first, report.last) == (NOW - 100, NOW - 5)
    assert report.total == events.Counts(impressions=30 + 8 + 1, clicks=5)
    assert report.list_count == 3
    assert [(p, c.impressions, c.clicks) for p, c in report.positions] == [
        (1, 14, 4),  # 10 from A, 4 from B; 3 + 1 clicks
        (2, 14, 1),
        (3, 10, 0),
        (4, 0, 0),
        (5, 1, 0),
    ]
    rates = [c.ctr for _, c in report.positions]
    assert rates == [4 / 14, 1 / 14, 0.0, None, 0.0]
    assert [(url, c.impressions, c.clicks) for url, c in report.lists] == [
        (A, 30, 4),
        (B, 8, 1),
        (C, 1, 0),
    ]
    # C: 10 + 4 impressions, one click; D: 10, never clicked; A: 4 + 1, clicked once.
    assert report.unclicked == [(D, 10)]
    data = report.as_json()
    assert data["first"] == "2023-11-14T22:11:40Z"
    assert data["total"] == {"impressions": 39, "clicks": 5, "ctr": 5 / 39, "lists": 3}
    assert data["positions"][3] == {"position": 4, "impressions": 0, "clicks": 0, "ctr": None}
    assert data["unclicked"] == [{"item": D, "impressions": 10}]

    top = events.read_report(tmp_path, since=NOW - DAY, until=NOW, top=1)
    assert [url for url, _ in top.lists] == [A]
    window = events.read_report(tmp_path, since=NOW - 60, until=NOW)  # list A is older
    assert window.total == events.Counts(impressions=9, clicks=5)
    assert window.first == NOW - 50


def test_no_events_make_an_empty_report(tmp_path):
    assert events.read_report(tmp_path, since=0).empty
    record(tmp_path, [(NOW, Event("impression", A, B, 1))])
    later = events.read_report(tmp_path, since=NOW + 1, until=NOW + 2)
    assert later.empty and later.as_json()["positions"] == []


def test_pruning_drops_old_events_only(tmp_path, monkeypatch):
    monkeypatch.setattr(events, "PRUNE_CHUNK", 3)  # several transactions
    old = [(NOW - 91 * DAY + n, e) for n, e in enumerate(shown(A, [B, C, D]) * 3)]
    new = [(NOW - 89 * DAY, e) for e in shown(B, [A, C])]
    record(tmp_path, old + new)
    assert events.prune_store(tmp_path, days=90, now=NOW) == 9
    report = events.read_report(tmp_path, since=0, until=NOW)
    assert report.total.impressions == 2 and [u for u, _ in report.lists] == [B]
    assert events.prune_store(tmp_path, days=90, now=NOW) == 0
    assert events.prune_store(tmp_path / "elsewhere", days=90) == 0  # no file: nothing to do


def test_writers_in_parallel_lose_nothing(tmp_path):
    """Connections of several processes (here threads) append at once; SQLite serialises
    them with its busy timeout."""

    def write(article: str) -> None:
        connection = events.connect(tmp_path)
        try:
            for n in range(20):
                events.write_events(connection, [(NOW + n, e) for e in shown(article, [C, D])])
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(url,)) for url in (A, B, C, D)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = events.read_report(tmp_path, since=0, until=NOW + DAY)
    assert report.total.impressions == 4 * 20 * 2
    assert {url: c.impressions for url, c in report.lists} == {A: 40, B: 40, C: 40, D: 40}


def test_the_file_holds_nothing_but_the_events(tmp_path):
    record(tmp_path, [(NOW, Event("click", A, B, 2))])
    with sqlite3.connect(tmp_path / events.EVENTS) as connection:
        tables = {
            name: [row[1] for row in connection.execute(f"PRAGMA table_info({name})")]
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    assert tables == {
        "urls": ["id", "url"],
        "events": ["time", "type", "article", "item", "position"],
    }


def test_a_store_that_cannot_hold_events_fails_at_start_up(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.raises(ConfigError, match="RECS_EVENTS is on, but cannot write reader events"):
        events.check_writable(not_a_folder)
    events.check_writable(tmp_path)
    assert (tmp_path / events.EVENTS).is_file()


def test_builds_and_rollbacks_keep_the_events(topic_corpus, tmp_path):
    """The event file is the store's, not a generation's: no publish, clean-up of old
    generations or rollback touches it."""
    from recs.encoder import HashingEncoder
    from recs.options import BuildOptions
    from recs.pipeline import build
    from recs.rank_settings import RankSettings
    from recs.rollback import rollback

    store_dir = tmp_path / "store"
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings(limit=3))
    record(store_dir, [(NOW, e) for e in shown(A, [B, C])])
    for round_ in range(3):  # past RECS_KEEP_GENERATIONS' minimum: old generations go
        (topic_corpus / "space" / "0.md").write_text(
            (topic_corpus / "space" / "0.md").read_text() + f"\nEdit {round_}.\n"
        )
        extra = topic_corpus / f"extra-{round_}.md"
        extra.write_text(
            f'---\ntitle: "Extra {round_}"\nexcerpt: "More space news {round_}."\n'
            f'webUrl: "https://example.com/extra/{round_}"\n---\n'
        )
        build(
            topic_corpus,
            store_dir,
            HashingEncoder(),
            RankSettings(limit=3),
            BuildOptions(keep_generations=2),
        )
    rollback(store_dir, keep=2)
    assert not list(store_dir.glob("gen-*/" + events.EVENTS))
    assert events.read_report(store_dir, since=0, until=NOW).total.impressions == 2


@pytest.fixture
def read_only_events(tmp_path):
    """A store folder with events, seen through a read-only bind mount."""
    source = tmp_path / "store"
    source.mkdir()
    record(source, [(NOW, e) for e in shown(A, [B, C])])
    with read_only_mount(source, tmp_path / "mnt") as mount:
        yield mount


def test_the_report_reads_a_read_only_store(read_only_events):
    with pytest.raises(OSError):
        (read_only_events / "probe").write_text("x")
    report = events.read_report(read_only_events, since=0, until=NOW)
    assert report.total.impressions == 2


# --- recs report --------------------------------------------------------------------------
