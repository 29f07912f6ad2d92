"""recs/filecache.py: parsed article files kept beside the store; a cache that cannot be
used is ignored and written anew, never an error, and never changes a result."""

from __future__ import annotations

from recs.encoder import HashingEncoder
from recs.options import ReadOptions
from recs.pipeline import build
from recs.rank_settings import RankSettings


def test_a_parse_cache_of_an_older_format_is_replaced_not_an_error(topic_corpus, tmp_path):
    import sqlite3

    from recs import filecache

    store_dir = tmp_path / "store"
    store_dir.mkdir()
    older = sqlite3.connect(store_dir / filecache.FILE)
    with older:  # format 4: the stat in one text column
        older.execute("CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT)")
        older.execute("INSERT INTO info VALUES ('signature', '[4, \"0.1.0\"]')")
        older.execute(
            "CREATE TABLE files (source TEXT PRIMARY KEY, sha TEXT NOT NULL, "
            "record TEXT NOT NULL, block TEXT, stat TEXT)"
        )
        older.execute("INSERT INTO files VALUES ('space/1.md', 'x', '[]', '', '1 2 3 4')")
    older.close()
    _, first = build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    sig = filecache.signature(ReadOptions())
    entries = filecache.load(store_dir, sig)
    assert first.articles == 12 and len(entries) == 12
    assert entries["space/1.md"].sha != "x" and entries["space/1.md"].record
