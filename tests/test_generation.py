"""recs/generation.py: one generation in memory (Snapshot) and on disk: written whole or as
an update of the previous file, the same rows either way; read back as it was written."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import replace

import numpy as np
import pytest

from recs import generation, store
from recs.articles import text_hash
from recs.encoder import HashingEncoder
from recs.errors import StoreIncompatible
from recs.pipeline import build
from recs.rank_settings import RankSettings
from recs.ranked import Basis, Item
from tests.test_rank import make_articles


def test_bases_round_trip_and_a_store_without_them_still_loads(topic_corpus, tmp_path):
    built, _ = build(topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings(limit=2, pool=5))
    assert any(b is not None for b in built.bases)
    loaded = store.load(tmp_path / "s")
    assert loaded.bases == built.bases
    # A store written before bases were kept has no `basis` column: no basis is known.
    path = tmp_path / "s" / store.current_generation(tmp_path / "s") / store.DB
    os.chmod(path, 0o644)
    _as_format(path, 1)
    with sqlite3.connect(path) as connection:
        connection.execute("ALTER TABLE related DROP COLUMN basis")
    older = store.load(tmp_path / "s")
    assert older.bases == [None] * len(older.articles)
    assert older.related == built.related


def _as_format(path, version: int) -> None:
    """Rewrite the generation file at `path` the way format `version` (1 or 2) kept its
    lists: items as JSON, [row, score, similarity, step, [same story rows]], and no
    `stories` column."""
    lists = generation.read(path, "gen", known={}).related
    with sqlite3.connect(path) as connection:
        connection.execute(
            "UPDATE info SET value = ? WHERE key = 'format_version'", (str(version),)
        )
        connection.execute("ALTER TABLE related DROP COLUMN stories")
        connection.executemany(
            "UPDATE related SET items = ? WHERE row = ?",
            [
                (
                    json.dumps(
                        [[i.row, i.score, i.similarity, i.step, list(i.same_story)] for i in items]
                    ),
                    row,
                )
                for row, items in enumerate(lists)
            ],
        )


def test_a_format_2_generation_reads_back_and_is_published_whole(topic_corpus, tmp_path):
    """A store of the last format reads as it was; the next build writes its generation
    whole (an update copies the file it updates, whose lists are in the old format)."""
    settings_ = RankSettings(limit=2, pool=5)
    built, _ = build(topic_corpus, tmp_path / "s", HashingEncoder(), settings_)
    path = tmp_path / "s" / built.generation / store.DB
    os.chmod(path, 0o644)
    _as_format(path, 2)
    older = store.load(tmp_path / "s")
    assert older.related == built.related and older.bases == built.bases
    edited = topic_corpus / "space" / "0.md"
    edited.write_text(edited.read_text().replace('title: "', 'title: "Update: ', 1))
    snapshot, report = build(topic_corpus, tmp_path / "s", HashingEncoder(), settings_)
    assert report.published
    written = tmp_path / "s" / snapshot.generation / store.DB
    assert generation.read_info(written)["format_version"] == str(generation.FORMAT_VERSION)
    whole = tmp_path / "whole.sqlite"
    generation.write(whole, snapshot)
    assert _tables(written) == _tables(whole)


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


def a_snapshot(**changes) -> generation.Snapshot:
    articles = make_articles(3)
    snapshot = generation.Snapshot(
        model_id="hashing-4-v1",
        dim=4,
        settings=RankSettings(limit=2, pool=7),
        articles=articles,
        vectors=np.arange(12, dtype=np.float32).reshape(3, 4) / 12,
        related=[
            [Item(1, 0.9, 0.8, 0, (2,))],
            [Item(0, 0.7, 0.7), Item(2, 0.5, 0.6, -1)],
            [],
        ],
        floors=np.array([-np.inf, 0.25, 0.5]),
        aliases={"https://old.example/zero": articles[0].url},
        bases=[Basis((1, 2), 0.9), None],  # shorter than the lists: the rest have none
        generation="gen-000004",
        created="2024-01-02T03:04:05Z",
        digest="abc",
        journal_seq=6,
        made="build --rebuild",
        ranked_at=1_700_000_000.5,
    )
    for name, value in changes.items():
        setattr(snapshot, name, value)
    return snapshot


def test_a_written_generation_reads_back_as_it_was(tmp_path):
    snapshot = a_snapshot()
    path = tmp_path / "meta.sqlite"
    generation.write(path, snapshot)
    loaded = generation.read(path, "gen-000004", known={})
    assert loaded.articles == [replace(a, body="") for a in snapshot.articles]
    # The text hash comes from the row: it must be the one the article's text gives.
    assert [a.text_hash for a in loaded.articles] == [text_hash(a.text) for a in loaded.articles]
    assert np.array_equal(loaded.vectors, snapshot.vectors) and loaded.vectors.dtype == np.float32
    assert loaded.related == snapshot.related
    assert np.array_equal(loaded.floors, snapshot.floors)
    assert loaded.bases == [Basis((1, 2), 0.9), None, None]
    assert loaded.settings == snapshot.settings and loaded.aliases == snapshot.aliases
    for name in ("model_id", "dim", "generation", "created", "digest", "journal_seq", "made"):
        assert getattr(loaded, name) == getattr(snapshot, name), name
    assert loaded.ranked_at == 1_700_000_000.5 and loaded.revision == 0
    info = generation.read_info(path)
    assert info["article_count"] == "3" and info["format_version"] == "3"
    assert info["settings"] == snapshot.settings.fingerprint()


def test_a_snapshot_finds_an_article_by_its_url_or_its_alias():
    snapshot = a_snapshot(revision=3)
    assert snapshot.resolve(snapshot.articles[2].url) == 2
    assert snapshot.resolve("https://old.example/zero") == 0
    assert snapshot.resolve("https://nowhere.example/") is None
    assert snapshot.version == "gen-000004.3" and len(snapshot) == 3
    assert snapshot.catalog is snapshot.catalog and snapshot.catalog.now == 1_700_000_000.5


def test_only_a_snapshot_of_the_same_rows_model_and_settings_is_written_as_an_update():
    base = a_snapshot()
    assert generation.updatable(base, a_snapshot(related=[[], [], []]))
    assert not generation.updatable(base, a_snapshot(model_id="other"))
    assert not generation.updatable(base, a_snapshot(settings=RankSettings(limit=3)))
    assert not generation.updatable(base, a_snapshot(articles=make_articles(4)[1:]))
    assert not generation.updatable(a_snapshot(revision=1), a_snapshot())  # a folded journal


def test_a_format_1_generation_is_read_with_todays_names_and_rules(tmp_path):
    path = tmp_path / "meta.sqlite"
    generation.write(path, a_snapshot())
    _as_format(path, 1)
    old_settings = {
        "limit": 2,
        "types": ["article"],
        "require_providers": ["P1"],
        "exclude_urls": [],
        "exclude_providers": [],
        "published_only": True,
    }
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE info SET value = '1' WHERE key = 'format_version'")
        connection.execute(
            "UPDATE info SET value = ? WHERE key = 'settings'", (json.dumps(old_settings),)
        )
        connection.execute("UPDATE related SET items = '[[2, 0.5]]' WHERE row = 0")
    loaded = generation.read(path, "gen-000004", known={})
    assert (loaded.settings.type, loaded.settings.provider) == (("article",), ("P1",))
    # Its lists were ranked with no relevance floor and with drafts.
    assert loaded.settings.min_similarity is None and loaded.settings.include_drafts
    assert loaded.related[0] == [Item(2, 0.5, 0.5)]  # [row, cosine]: the cosine was the score


@pytest.mark.parametrize(
    ("items", "stories"),
    [
        ("CAST(substr(items, 1, length(items) - 3) AS BLOB)", "stories"),  # a record cut short
        ("items", "'[[1], [2]]'"),  # more same-story entries than items
        ("CAST(items || items AS BLOB)", "stories"),  # fewer
    ],
)
def test_a_damaged_list_is_refused_not_misread(tmp_path, items, stories):
    path = tmp_path / "meta.sqlite"
    generation.write(path, a_snapshot())
    with sqlite3.connect(path) as connection:
        connection.execute(f"UPDATE related SET items = {items}, stories = {stories} WHERE row = 0")
    with pytest.raises(ValueError, match=r"related row 0: .* do not match"):
        generation.read(path, "gen-000004", known={})


def test_a_generation_of_an_unknown_format_says_to_rebuild(tmp_path):
    folder = tmp_path / "store" / "gen-000004"
    folder.mkdir(parents=True)
    path = folder / generation.DB
    generation.write(path, a_snapshot())
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE info SET value = '9' WHERE key = 'format_version'")
    with pytest.raises(StoreIncompatible, match="has format 9; this recs reads format 3: rebuild"):
        generation.read(path, "gen-000004", known={})
