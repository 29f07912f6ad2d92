"""recs/filecache.py: parsed article files kept beside the store; a cache that cannot be
used is ignored and written anew, never an error, and never changes a result."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from recs import filecache, records
from recs.corpus import read_corpus
from recs.encoder import HashingEncoder
from recs.options import FieldMap, ReadOptions, UrlRules
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


def entries_of(folder: Path) -> dict[str, filecache.Cached]:
    """What a run would record for the articles of `folder` (block key unknown)."""
    found = read_corpus(folder)
    return {
        a.source: filecache.Cached(found.raw_hashes[a.source], a, "", found.stats.get(a.source))
        for a in found.articles
    }


def test_saved_entries_load_back_with_their_stored_texts(write_article, tmp_path):
    write_article("a.md", "Rocket launch", "space")
    write_article("b.md", "Bread recipe", "cooking", extra="topics: [food]\n")
    store_dir = tmp_path / "store"
    sig = filecache.signature(ReadOptions())
    entries = entries_of(write_article.content)
    filecache.save(store_dir, sig, {}, entries)
    loaded = filecache.load(store_dir, sig)
    assert set(loaded) == {"a.md", "b.md"}
    for source, entry in entries.items():
        got = loaded[source]
        assert (got.sha, got.block, got.stat) == (entry.sha, entry.block, entry.stat)
        assert got.article == replace(entry.article, body="")  # the body is never kept
        assert got.record == records.record_text(entry.article)
        assert got.fields == records.fields_text(entry.article.fields)
    assert filecache.for_reading(loaded)["a.md"] == (
        loaded["a.md"].sha,
        loaded["a.md"].article,
        None,
    )


def test_a_save_writes_what_differs_and_forgets_what_is_gone(write_article, tmp_path):
    write_article("a.md", "Rocket launch", "space")
    write_article("b.md", "Bread recipe", "cooking")
    store_dir = tmp_path / "store"
    sig = filecache.signature(ReadOptions())
    first = entries_of(write_article.content)
    filecache.save(store_dir, sig, {}, first)
    previous = filecache.load(store_dir, sig)
    changed = {"a.md": first["a.md"]._replace(block="https://example.com/b")}
    filecache.save(store_dir, sig, previous, changed)
    loaded = filecache.load(store_dir, sig)
    assert set(loaded) == {"a.md"} and loaded["a.md"].block == "https://example.com/b"


@pytest.mark.parametrize(
    "other",
    [
        ReadOptions(pinned_key="featured"),
        ReadOptions(max_file_bytes=10),
        ReadOptions(fields=FieldMap(title=("headline",))),
        ReadOptions(urls=UrlRules("hugo", "https://example.com/")),
    ],
    ids=["pinned key", "size limit", "field map", "url rules"],
)
def test_a_cache_made_with_other_read_options_is_not_used(write_article, tmp_path, other):
    write_article("a.md", "Rocket launch", "space")
    store_dir = tmp_path / "store"
    sig = filecache.signature(ReadOptions())
    filecache.save(store_dir, sig, {}, entries_of(write_article.content))
    assert filecache.signature(other) != sig
    assert filecache.load(store_dir, filecache.signature(other)) == {}
    assert len(filecache.load(store_dir, sig)) == 1


def test_a_missing_or_damaged_cache_is_empty_and_is_written_anew(write_article, tmp_path):
    write_article("a.md", "Rocket launch", "space")
    store_dir = tmp_path / "store"
    sig = filecache.signature(ReadOptions())
    assert filecache.load(store_dir, sig) == {}  # no store folder yet
    store_dir.mkdir()
    (store_dir / filecache.FILE).write_bytes(b"not a database at all" * 100)
    assert filecache.load(store_dir, sig) == {}
    filecache.save(store_dir, sig, {}, entries_of(write_article.content))
    assert len(filecache.load(store_dir, sig)) == 1
