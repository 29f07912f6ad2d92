"""recs/generation.py: one generation in memory (Snapshot) and on disk: written whole or as
an update of the previous file, the same rows either way; read back as it was written."""

from __future__ import annotations

import os
import sqlite3

from recs import generation, store
from recs.encoder import HashingEncoder
from recs.pipeline import build
from recs.rank_settings import RankSettings


def test_bases_round_trip_and_a_store_without_them_still_loads(topic_corpus, tmp_path):
    built, _ = build(topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings(limit=2, pool=5))
    assert any(b is not None for b in built.bases)
    loaded = store.load(tmp_path / "s")
    assert loaded.bases == built.bases
    # A store written before bases were kept has no `basis` column: no basis is known.
    path = tmp_path / "s" / store.current_generation(tmp_path / "s") / store.DB
    os.chmod(path, 0o644)
    with sqlite3.connect(path) as connection:
        connection.execute("ALTER TABLE related DROP COLUMN basis")
    older = store.load(tmp_path / "s")
    assert older.bases == [None] * len(older.articles)
    assert older.related == built.related


def _tables(path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as connection:
        names = ["info", "articles", "aliases", "vectors", "related"]
        tables = {n: sorted(connection.execute(f"SELECT * FROM {n}")) for n in names}
    return tables


def test_a_rebuild_writes_the_same_file_rows_as_a_whole_write(topic_corpus, tmp_path, monkeypatch):
    """A rebuild with the same URLs copies the last generation and replaces changed rows."""
    settings_ = RankSettings(limit=2, pool=5)
    build(topic_corpus, tmp_path / "s", HashingEncoder(), settings_)
    edited = topic_corpus / "space" / "0.md"
    edited.write_text(edited.read_text().replace('title: "', 'title: "Update: ', 1))
    moved = topic_corpus / "cooking" / "1.md"
    moved.write_text(moved.read_text().replace("quality: 50", "quality: 70", 1))

    def whole_write_refused(path, snapshot):
        raise AssertionError("the whole file was written")

    with monkeypatch.context() as patch:
        patch.setattr(generation, "write", whole_write_refused)
        snapshot, report = build(topic_corpus, tmp_path / "s", HashingEncoder(), settings_)
    assert report.published and report.embedded == 1
    updated = tmp_path / "s" / snapshot.generation / store.DB
    whole = tmp_path / "whole.sqlite"
    generation.write(whole, snapshot)
    assert _tables(updated) == _tables(whole)
    assert store.load(tmp_path / "s").related == snapshot.related
