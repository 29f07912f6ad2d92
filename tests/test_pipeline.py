"""Builds: the embedding cache, removals, publishing, and the model check."""

from __future__ import annotations

import gc
import os
import threading
import time

import pytest

from recs import generation, journal, store
from recs.encoder import HashingEncoder
from recs.errors import CorpusError, ShrinkRefused, StoreIncompatible
from recs.options import BuildOptions, ReadOptions
from recs.pipeline import build
from recs.rank_settings import RankSettings


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
        snapshot.articles[i.row].url != "https://example.com/cooking/3"
        for items in snapshot.related
        for i in items
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
        assert snapshot.articles[items[0].row].url.split("/")[3] == topic


def test_strict_fails_on_any_problem(topic_corpus, tmp_path):
    (topic_corpus / "broken.md").write_text("not an article")
    with pytest.raises(CorpusError, match=r"broken\.md:1: no front matter"):
        build(
            topic_corpus,
            tmp_path / "s",
            HashingEncoder(),
            RankSettings(),
            BuildOptions(strict=True),
        )
    assert not store.exists(tmp_path / "s")


def test_store_of_another_model_is_refused(topic_corpus, tmp_path):
    build(topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings())
    other = HashingEncoder(dim=128)
    with pytest.raises(StoreIncompatible, match="--rebuild"):
        build(topic_corpus, tmp_path / "s", other, RankSettings())
    snapshot, report = build(
        topic_corpus, tmp_path / "s", other, RankSettings(), BuildOptions(rebuild=True)
    )
    assert report.embedded == 12 and snapshot.model_id == other.model_id


def test_changed_settings_recompute_lists_without_embedding(topic_corpus, tmp_path):
    encoder = CountingEncoder()
    build(topic_corpus, tmp_path / "s", encoder, RankSettings(limit=2))
    encoder.texts.clear()
    snapshot, report = build(topic_corpus, tmp_path / "s", encoder, RankSettings(limit=3))
    assert encoder.texts == [] and report.published and report.recomputed == 12
    assert all(len(items) == 3 for items in snapshot.related)


def test_unchanged_files_are_not_parsed_again(topic_corpus, tmp_path, monkeypatch):
    from recs import corpus, filecache, regenerate

    parsed: list[str] = []
    real_parse = corpus.parse_article_text

    def counting_parse(raw, source, *args, **kwargs):
        parsed.append(source)
        return real_parse(raw, source, *args, **kwargs)

    monkeypatch.setattr(corpus, "parse_article_text", counting_parse)
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
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings(), BuildOptions(rebuild=True))
    assert len(parsed) == 11
    sig = filecache.signature(ReadOptions())
    assert sorted(filecache.load(store_dir, sig)) == sorted(parsed)
    parsed.clear()
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings(), BuildOptions(publish=False))
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
        build(topic_corpus, tmp_path / "s", Watching(), RankSettings(), BuildOptions(strict=True))
    assert gc.isenabled()
    gc.disable()
    try:  # a caller that paused it keeps it paused
        build(topic_corpus, tmp_path / "t", Watching(), RankSettings())
        assert not gc.isenabled()
    finally:
        gc.enable()


def _opened(monkeypatch) -> list[str]:
    """Article files read_corpus opens from now on (by name)."""
    from recs import corpus

    names: list[str] = []

    def counting_open(path, *args, **kwargs):
        names.append(os.path.basename(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(corpus, "open", counting_open, raising=False)
    return names


def test_a_file_whose_stat_is_unchanged_is_not_read_again(topic_corpus, tmp_path, monkeypatch):
    from recs import corpus

    store_dir = tmp_path / "store"
    opened = _opened(monkeypatch)
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    # Files written seconds ago are not trusted by their stat: read every time.
    assert len(opened) == 24

    monkeypatch.setattr(corpus, "SETTLED_NS", 0)  # as if the files were old
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
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings(), BuildOptions(rebuild=True))
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


def test_a_small_rebuild_parses_only_the_changed_articles_stored_fields(
    topic_corpus, tmp_path, monkeypatch
):
    store_dir = tmp_path / "store"
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    parsed: list[str] = []
    real = generation.article_from_record

    def spy(values, fields):
        parsed.append(values[0])
        return real(values, fields)

    monkeypatch.setattr(generation, "article_from_record", spy)
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


# --- never a silent shrink; --rebuild keeps API writes; undo ------------------------------


def api_article(url: str, title: str = "Space station news") -> journal.Change:
    """A journal upsert as PUT /articles writes it (hashing vector of its text)."""
    from recs.articles import article_from_data

    fields = {"title": title, "excerpt": "space rocket orbit", "webUrl": url}
    article = article_from_data(fields, "api")
    vector = HashingEncoder().encode([article.text])[0]
    return journal.Change(0, "upsert", article.url, article, vector)


def test_a_build_that_would_empty_the_store_is_refused_and_changes_nothing(topic_corpus, tmp_path):
    store_dir = tmp_path / "s"
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    before = store.current_generation(store_dir)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ShrinkRefused, match=r"remove 12 of the 12 .*--allow-shrink") as refused:
        build(empty, store_dir, HashingEncoder(), RankSettings())
    assert refused.value.exit_code != 0
    assert store.current_generation(store_dir) == before and len(store.load(store_dir)) == 12
    snapshot, report = build(
        empty, store_dir, HashingEncoder(), RankSettings(), BuildOptions(allow_shrink=True)
    )
    assert report.published and len(snapshot) == 0 and report.removed == 12


@pytest.mark.parametrize(("removed", "refused"), [(5, False), (6, False), (7, True), (12, True)])
def test_more_than_half_of_the_store_going_is_refused(topic_corpus, tmp_path, removed, refused):
    store_dir = tmp_path / "s"
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    for path in sorted(topic_corpus.rglob("*.md"))[:removed]:
        path.unlink()
    if refused:
        with pytest.raises(ShrinkRefused, match=f"remove {removed} of the 12"):
            build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
        assert len(store.load(store_dir)) == 12
    else:
        _, report = build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
        assert report.published and report.removed == removed


def test_a_refused_build_keeps_the_journal_and_the_api_writes(topic_corpus, tmp_path):
    store_dir = tmp_path / "s"
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    generation = store.current_generation(store_dir)
    journal.append_changes(store_dir, generation, [api_article("https://example.com/api/1")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ShrinkRefused):
        build(empty, store_dir, HashingEncoder(), RankSettings())
    assert [c.url for c in journal.read_changes(store_dir, generation)] == [
        "https://example.com/api/1"
    ]


def test_rebuild_keeps_articles_written_through_the_api_and_their_deletions(topic_corpus, tmp_path):
    store_dir = tmp_path / "s"
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    generation = store.current_generation(store_dir)
    kept, deleted = "https://example.com/api/kept", "https://example.com/api/deleted"
    journal.append_changes(store_dir, generation, [api_article(kept), api_article(deleted)])
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings())  # folds them in
    generation = store.current_generation(store_dir)
    journal.append_changes(store_dir, generation, [journal.Change(0, "delete", deleted)])
    other = HashingEncoder(dim=64)  # another model: --rebuild is what the README says to run
    snapshot, report = build(
        topic_corpus, store_dir, other, RankSettings(), BuildOptions(rebuild=True)
    )
    assert report.published and report.removed == 0  # the API deletion was not the build's
    assert kept in snapshot.row_of and deleted not in snapshot.row_of
    assert snapshot.vectors.shape == (13, 64)  # re-embedded with the new model
    loaded = store.load(store_dir, model_id=other.model_id)
    assert loaded.articles[loaded.row_of[kept]].source == "api"
    assert journal.read_changes(store_dir, generation) == []  # in the generation, then cleared
    assert "--rebuild" in store.generations(store_dir)[-1].made


def test_the_journal_is_cleared_only_of_what_a_generation_holds(topic_corpus, tmp_path):
    store_dir = tmp_path / "s"
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    generation = store.current_generation(store_dir)
    journal.append_changes(store_dir, generation, [api_article("https://example.com/api/1")])
    snapshot, _ = build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    assert snapshot.journal_seq == 1 and store.load(store_dir).journal_seq == 1
    assert not journal.read_changes(store_dir, generation)
    # An entry the generation does not hold (a later sequence number) is never cleared.
    later = journal.append_changes(
        store_dir, snapshot.generation, [api_article("https://example.com/api/2")]
    )
    journal.clear_changes(store_dir, snapshot.journal_seq)
    assert [c.seq for c in journal.read_changes(store_dir, snapshot.generation)] == [later]


def test_an_original_url_that_finds_another_article_is_a_warning(write_article, tmp_path):
    write_article("a.md", "Rocket launch", "space", url="https://example.com/a")
    write_article(
        "b.md", "Rocket launch again", "space", extra='originalUrl: "https://example.com/a"\n'
    )
    write_article(
        "c.md", "Lunar lander", "moon", extra='originalUrl: "https://elsewhere.example/x"\n'
    )
    write_article(
        "d.md", "Lunar news", "moon", extra='originalUrl: "https://elsewhere.example/x"\n'
    )
    snapshot, report = build(
        write_article.content, tmp_path / "s", HashingEncoder(), RankSettings()
    )
    assert report.notices == [
        "b.md: originalUrl https://example.com/a is the URL of a.md; it finds that article, "
        "not this one",
        "d.md: originalUrl https://elsewhere.example/x is also the originalUrl of c.md; it "
        "finds that article, not this one",
    ]
    assert (
        snapshot.resolve("https://elsewhere.example/x") == snapshot.row_of["https://example.com/c"]
    )
