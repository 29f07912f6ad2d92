"""Builds: the embedding cache, removals, publishing, and the model check."""

from __future__ import annotations

import gc
import os
import threading
import time

import pytest

from recs import store
from recs.encoder import HashingEncoder
from recs.errors import CorpusError, StoreIncompatible
from recs.pipeline import build
from recs.rank import RankSettings


class CountingEncoder(HashingEncoder):
    """The hashing encoder, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def encode(self, texts):
        self.texts.extend(texts)
        return super().encode(texts)


def test_cache_embeds_only_what_changed(topic_corpus, tmp_path):
    store_dir = tmp_path / "store"
    encoder = CountingEncoder()
    _, first = build(topic_corpus, store_dir, encoder, RankSettings())
    assert (first.embedded, first.reused, first.removed) == (12, 0, 0)
    assert first.published and first.generation == "gen-000001"

    encoder.texts.clear()
    _, again = build(topic_corpus, store_dir, encoder, RankSettings())
    assert (again.embedded, again.reused, again.removed) == (0, 12, 0)
    assert encoder.texts == []
    assert not again.published and store.current_generation(store_dir) == "gen-000001"

    edited = topic_corpus / "space" / "1.md"
    edited.write_text(edited.read_text().replace("drilled rock", "found a frozen sea"))
    (topic_corpus / "cooking" / "3.md").unlink()
    _, third = build(topic_corpus, store_dir, encoder, RankSettings())
    assert (third.embedded, third.reused, third.removed) == (1, 10, 1)
    assert len(encoder.texts) == 1 and "frozen sea" in encoder.texts[0]
    snapshot = store.load(store_dir)
    assert len(snapshot) == 11
    assert "https://example.com/cooking/3" not in snapshot.row_of
    assert all(
        snapshot.articles[r].url != "https://example.com/cooking/3"
        for items in snapshot.related
        for r, _ in items
    )


def test_summary_line_counts(topic_corpus, tmp_path):
    (topic_corpus / "broken.md").write_text("---\ntitle: [x]\n---\n")
    _, report = build(topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings())
    assert report.summary().startswith("12 articles: 12 embedded, 0 reused, 0 removed, 1 skipped;")


def test_related_lists_stay_on_topic(topic_corpus, tmp_path):
    snapshot, _ = build(topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings(limit=2))
    for row, items in enumerate(snapshot.related):
        topic = snapshot.articles[row].url.split("/")[3]
        assert len(items) == 2
        assert snapshot.articles[items[0][0]].url.split("/")[3] == topic


def test_strict_fails_on_any_problem(topic_corpus, tmp_path):
    (topic_corpus / "broken.md").write_text("not an article")
    with pytest.raises(CorpusError, match=r"broken\.md:1: no front matter"):
        build(topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings(), strict=True)
    assert not store.exists(tmp_path / "s")


def test_store_of_another_model_is_refused(topic_corpus, tmp_path):
    build(topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings())
    other = HashingEncoder(dim=128)
    with pytest.raises(StoreIncompatible, match="--rebuild"):
        build(topic_corpus, tmp_path / "s", other, RankSettings())
    snapshot, report = build(topic_corpus, tmp_path / "s", other, RankSettings(), rebuild=True)
    assert report.embedded == 12 and snapshot.model_id == other.model_id


def test_changed_settings_recompute_lists_without_embedding(topic_corpus, tmp_path):
    encoder = CountingEncoder()
    build(topic_corpus, tmp_path / "s", encoder, RankSettings(limit=2))
    encoder.texts.clear()
    snapshot, report = build(topic_corpus, tmp_path / "s", encoder, RankSettings(limit=3))
    assert encoder.texts == [] and report.published and report.recomputed == 12
    assert all(len(items) == 3 for items in snapshot.related)


def test_unchanged_files_are_not_parsed_again(topic_corpus, tmp_path, monkeypatch):
    from recs import articles, filecache, regenerate

    parsed: list[str] = []
    real_parse = articles.parse_article_text

    def counting_parse(raw, source, *args, **kwargs):
        parsed.append(source)
        return real_parse(raw, source, *args, **kwargs)

    monkeypatch.setattr(articles, "parse_article_text", counting_parse)
    store_dir = tmp_path / "store"
    _, first = build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    assert len(parsed) == 12 and first.published

    parsed.clear()
    _, again = build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    assert parsed == [] and (again.embedded, again.reused) == (0, 12)

    edited = topic_corpus / "space" / "1.md"
    edited.write_text(edited.read_text().replace("drilled rock", "found a frozen sea"))
    parsed.clear()
    snapshot, changed = build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    assert parsed == ["space/1.md"] and changed.embedded == 1
    row = next(r for r, a in enumerate(snapshot.articles) if a.source == "space/1.md")
    assert "found a frozen sea" in snapshot.articles[row].text

    # --rebuild reads every file again and keeps the cache to the files there are;
    # a dry run neither uses nor writes the cache.
    (topic_corpus / "cooking" / "3.md").unlink()
    parsed.clear()
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings(), rebuild=True)
    assert len(parsed) == 11
    sig = filecache.signature("relatedPinned", "relatedExclude", None)
    assert sorted(filecache.load(store_dir, sig)) == sorted(parsed)
    parsed.clear()
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings(), publish=False)
    assert len(parsed) == 11

    # A build's entries make the next regenerate check every block, then skip them.
    report = regenerate.regenerate(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    assert len(report.changed) == 11
    report = regenerate.regenerate(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    assert report.changed == [] and len(report.unchanged) == 11


def test_a_build_pauses_the_garbage_collector_and_always_restarts_it(topic_corpus, tmp_path):
    seen: list[bool] = []

    class Watching(HashingEncoder):
        def encode(self, texts):
            seen.append(gc.isenabled())
            return super().encode(texts)

    build(topic_corpus, tmp_path / "s", Watching(), RankSettings())
    assert seen == [False] and gc.isenabled()
    (topic_corpus / "broken.md").write_text("no front matter\n")
    with pytest.raises(CorpusError):
        build(topic_corpus, tmp_path / "s", Watching(), RankSettings(), strict=True)
    assert gc.isenabled()
    gc.disable()
    try:  # a caller that paused it keeps it paused
        build(topic_corpus, tmp_path / "t", Watching(), RankSettings())
        assert not gc.isenabled()
    finally:
        gc.enable()


def _opened(monkeypatch) -> list[str]:
    """Article files read_corpus opens from now on (by name)."""
    from recs import articles

    names: list[str] = []

    def counting_open(path, *args, **kwargs):
        names.append(os.path.basename(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(articles, "open", counting_open, raising=False)
    return names


def test_a_file_whose_stat_is_unchanged_is_not_read_again(topic_corpus, tmp_path, monkeypatch):
    from recs import articles

    store_dir = tmp_path / "store"
    opened = _opened(monkeypatch)
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    # Files written seconds ago are not trusted by their stat: read every time.
    assert len(opened) == 24

    monkeypatch.setattr(articles, "SETTLED_NS", 0)  # as if the files were old
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings())  # records their stat
    opened.clear()
    _, report = build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    assert opened == [] and report.embedded == 0

    # Same size, mtime set back: the ctime still moved, so the file is read and embedded.
    edited = topic_corpus / "space" / "1.md"
    before = edited.stat()
    time.sleep(0.05)  # past the clock tick of the last write (what SETTLED_NS covers)
    text = edited.read_text()
    edited.write_text(text.replace("drilled rock", "drilled sand"))
    os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert edited.stat().st_size == before.st_size
    snapshot, report = build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    assert opened == ["1.md"] and report.embedded == 1
    assert any("drilled sand" in a.text for a in snapshot.articles)

    # --rebuild reads everything whatever the stat says.
    opened.clear()
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings(), rebuild=True)
    assert len(opened) == 12


class WarmingEncoder(HashingEncoder):
    """The hashing encoder with a background load that lasts until `loaded` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded = threading.Event()
        self.thread: threading.Thread | None = None

    def warm_up(self) -> threading.Thread:
        self.thread = threading.Thread(target=self.loaded.wait, args=(60,), daemon=True)
        self.thread.start()
        return self.thread


def test_ranking_waits_for_the_model_load_and_an_unchanged_build_does_not(
    topic_corpus, tmp_path, monkeypatch
):
    import recs.pipeline

    loading_when_ranked: list[bool] = []

    def watched(function):
        def ranking(*args, **kwargs):
            loading_when_ranked.append(encoder.thread is not None and encoder.thread.is_alive())
            return function(*args, **kwargs)

        return ranking

    monkeypatch.setattr(recs.pipeline, "link_all", watched(recs.pipeline.link_all))
    monkeypatch.setattr(recs.pipeline, "link_changes", watched(recs.pipeline.link_changes))
    store_dir = tmp_path / "store"
    encoder = WarmingEncoder()
    threading.Timer(0.3, encoder.loaded.set).start()
    _, first = build(topic_corpus, store_dir, encoder, RankSettings())
    assert first.published and loading_when_ranked == [False], "ranked before the load ended"

    encoder = WarmingEncoder()  # a load that has not ended when the build does
    _, again = build(topic_corpus, store_dir, encoder, RankSettings())
    assert not again.published and encoder.thread is not None and encoder.thread.is_alive()
    encoder.loaded.set()

    edited = topic_corpus / "space" / "1.md"
    edited.write_text(edited.read_text().replace("drilled rock", "found a frozen sea"))
    encoder = WarmingEncoder()
    threading.Timer(0.3, encoder.loaded.set).start()
    _, third = build(topic_corpus, store_dir, encoder, RankSettings())
    assert third.published and loading_when_ranked == [False, False]


def test_articles_from_the_parse_cache_count_in_the_digest_as_freshly_parsed_ones(
    topic_corpus, tmp_path
):
    from recs import filecache

    store_dir = tmp_path / "store"
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    _, cached = build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    (store_dir / filecache.FILE).unlink()  # every file parsed again, no stored record used
    _, parsed = build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    assert not cached.published and not parsed.published

    # A cached entry whose file changed is not taken for the new article.
    edited = topic_corpus / "space" / "1.md"
    edited.write_text(edited.read_text().replace("category: news", "category: science"))
    _, changed = build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    assert changed.published and changed.embedded == 0


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
    sig = filecache.signature("relatedPinned", "relatedExclude", None)
    entries = filecache.load(store_dir, sig)
    assert first.articles == 12 and len(entries) == 12
    assert entries["space/1.md"].sha != "x" and entries["space/1.md"].record


def test_a_small_rebuild_parses_only_the_changed_articles_stored_fields(
    topic_corpus, tmp_path, monkeypatch
):
    store_dir = tmp_path / "store"
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    parsed: list[str] = []
    real = store._stored_article

    def spy(row, fields):
        parsed.append(row[0])
        return real(row, fields)

    monkeypatch.setattr(store, "_stored_article", spy)
    _, again = build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    assert not again.published and parsed == []
    edited = topic_corpus / "space" / "1.md"
    edited.write_text(edited.read_text().replace("category: news", "category: science"))
    snapshot, changed = build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    assert changed.published and parsed == ["https://example.com/space/1"]
    assert (
        store.load(store_dir)
        .articles[snapshot.row_of["https://example.com/space/1"]]
        .fields["category"]
        == "science"
    )
