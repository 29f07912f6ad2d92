"""recs/rollback.py: make an earlier generation current again, as a new generation that
servers follow and that can itself be rolled back; API writes are carried over."""

from __future__ import annotations

import pytest

from recs import journal, store
from recs.config import Settings
from recs.encoder import HashingEncoder
from recs.errors import InvalidInput, StoreNotFound
from recs.options import BuildOptions
from recs.pipeline import build
from recs.rank_settings import RankSettings
from recs.rollback import rollback
from recs.service import Service
from tests.test_pipeline import api_article


def test_rollback_publishes_an_earlier_generation_again(topic_corpus, tmp_path):
    store_dir = tmp_path / "s"
    first, _ = build(topic_corpus, store_dir, HashingEncoder(), RankSettings(limit=2))
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings(limit=4))
    service = Service(Settings(store=store_dir, model="hashing"))
    service.poll()
    back = rollback(store_dir)
    assert back.generation == "gen-000003" and back.made == "rollback to gen-000001"
    loaded = store.load(store_dir)
    assert loaded.related == first.related and loaded.generation == "gen-000003"
    assert service.poll() and service.snapshot.generation == "gen-000003"  # servers follow
    made = [(g.name, g.made, g.current) for g in store.generations(store_dir)]
    assert made == [
        ("gen-000001", "build", False),
        ("gen-000002", "build", False),
        ("gen-000003", "rollback to gen-000001", True),
    ]
    # The rollback itself can be undone, and the next build with nothing changed is a no-op.
    assert rollback(store_dir).related == store.load(store_dir, generation="gen-000002").related
    assert rollback(store_dir, "gen-000001").generation == "gen-000005"
    _, report = build(topic_corpus, store_dir, HashingEncoder(), RankSettings(limit=2))
    assert not report.published


def test_rollback_keeps_articles_written_through_the_api(topic_corpus, tmp_path):
    store_dir = tmp_path / "s"
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings())
    empty = tmp_path / "empty"
    empty.mkdir()
    build(empty, store_dir, HashingEncoder(), RankSettings(), BuildOptions(allow_shrink=True))
    journal.append_changes(
        store_dir, "gen-000002", [api_article("https://example.com/api/new", "Rocket news")]
    )
    back = rollback(store_dir)
    assert len(back) == 13 and "https://example.com/api/new" in back.row_of
    assert journal.read_changes(store_dir, "gen-000002") == []  # held by gen-000003 now
    space = back.row_of["https://example.com/space/0"]
    assert back.row_of["https://example.com/api/new"] in [i.row for i in back.related[space]]


@pytest.mark.parametrize(
    ("target", "message"),
    [("gen-000002", "already the current"), ("gen-000009", "keeps no generation 'gen-000009'")],
)
def test_rollback_to_a_generation_not_kept_says_which_are(topic_corpus, tmp_path, target, message):
    store_dir = tmp_path / "s"
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings(limit=2))
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings(limit=3))
    with pytest.raises(InvalidInput, match=message):
        rollback(store_dir, target)
    assert store.current_generation(store_dir) == "gen-000002"


def test_rollback_without_a_store_or_an_earlier_generation_says_what_to_do(topic_corpus, tmp_path):
    store_dir = tmp_path / "s"
    with pytest.raises(StoreNotFound, match="run `recs build CONTENT_DIR` first"):
        rollback(store_dir)
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings(limit=2))
    with pytest.raises(InvalidInput, match="keeps no generation before gen-000001"):
        rollback(store_dir)
    assert store.current_generation(store_dir) == "gen-000001"


def test_a_rollback_keeps_only_as_many_generations_as_asked(topic_corpus, tmp_path):
    store_dir = tmp_path / "s"
    for limit in (1, 2, 3):
        build(topic_corpus, store_dir, HashingEncoder(), RankSettings(limit=limit))
    back = rollback(store_dir, "gen-000001", keep=2)
    assert back.settings.limit == 1 and back.generation == "gen-000004"
    assert [g.name for g in store.generations(store_dir)] == ["gen-000003", "gen-000004"]
