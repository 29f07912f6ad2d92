"""The store on disk: round trip, atomic publish, locking, old generations."""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import numpy as np
import pytest

from recs import generation, store
from recs.encoder import HashingEncoder
from recs.errors import StoreIncompatible, StoreLocked, StoreNotFound, StoreWriteError
from recs.options import KEEP, MIN_KEEP, BuildOptions
from recs.pipeline import build
from recs.rank_settings import RankSettings


def test_round_trip_keeps_everything(topic_corpus, tmp_path):
    built, _ = build(topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings())
    loaded = store.load(tmp_path / "s")
    assert [a.url for a in loaded.articles] == [a.url for a in built.articles]
    assert [dict(a.fields) for a in loaded.articles] == [dict(a.fields) for a in built.articles]
    assert np.array_equal(loaded.vectors, built.vectors)
    assert loaded.related == built.related
    assert np.array_equal(loaded.floors, built.floors)
    assert loaded.settings == built.settings
    assert store.store_info(tmp_path / "s")["article_count"] == "12"


def test_missing_store_says_how_to_build(tmp_path):
    with pytest.raises(StoreNotFound, match="run `recs build"):
        store.load(tmp_path / "nothing")


@pytest.mark.parametrize("keep", [MIN_KEEP, 3, KEEP])
def test_only_the_last_generations_are_kept(topic_corpus, tmp_path, keep):
    options = BuildOptions(keep_generations=keep)
    for limit in range(1, 8):
        build(topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings(limit=limit), options)
    names = sorted(p.name for p in (tmp_path / "s").iterdir() if p.name.startswith("gen-"))
    assert names == [f"gen-{n:06d}" for n in range(8 - keep, 8)]
    assert store.current_generation(tmp_path / "s") == "gen-000007"
    assert [g.name for g in store.generations(tmp_path / "s")] == names


def test_a_failed_publish_leaves_the_previous_generation(topic_corpus, tmp_path, monkeypatch):
    build(topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings(limit=2))

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(generation, "write", full_disk)
    with pytest.raises(StoreWriteError, match="disk is full"):
        build(topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings(limit=3))
    assert store.current_generation(tmp_path / "s") == "gen-000001"
    assert store.load(tmp_path / "s").settings.limit == 2
    assert not list((tmp_path / "s").glob(".tmp-*"))


def test_leftover_temporary_directories_are_removed(topic_corpus, tmp_path):
    build(topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings(limit=2))
    (tmp_path / "s" / ".tmp-gen-000002-dead").mkdir()
    build(topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings(limit=3))
    assert not list((tmp_path / "s").glob(".tmp-*"))


def test_second_writer_is_refused_while_the_lock_is_held(tmp_path):
    holding = threading.Event()
    release = threading.Event()

    def hold():
        with store.locked(tmp_path / "s"):
            holding.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(5)
    try:
        with (
            pytest.raises(StoreLocked, match=f"recs pid {os.getpid()}"),
            store.locked(tmp_path / "s"),
        ):
            pass
        started = time.monotonic()
        with pytest.raises(StoreLocked), store.locked(tmp_path / "s", wait=0.3):
            pass
        assert time.monotonic() - started >= 0.3
    finally:
        release.set()
        thread.join()
    with store.locked(tmp_path / "s"):
        pass


def test_a_failed_final_flush_says_the_new_generation_is_live(topic_corpus, tmp_path, monkeypatch):
    build(topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings(limit=2))
    real = store.fsync_dir

    def failing(path):
        if path == tmp_path / "s":
            raise OSError(5, "Input/output error")
        real(path)

    monkeypatch.setattr(store, "fsync_dir", failing)
    with pytest.raises(StoreWriteError, match="published gen-000002"):
        build(topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings(limit=3))
    assert store.current_generation(tmp_path / "s") == "gen-000002"


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("basis", "[oops"),
        ("basis", "7"),
        ("items", "not json"),
        # Two values in one: still JSON once the column is parsed as one array.
        ("items", "[[1, 0.5]], [[2, 0.4]]"),
        ("basis", "[0.5, [1]], [0.4, [2]]"),
    ],
)
def test_a_damaged_related_row_is_a_clear_error(topic_corpus, tmp_path, column, value):
    build(topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings(limit=2, pool=5))
    path = tmp_path / "s" / store.current_generation(tmp_path / "s") / store.DB
    os.chmod(path, 0o644)
    with sqlite3.connect(path) as connection:
        connection.execute(f"UPDATE related SET {column} = ? WHERE row = 0", (value,))
    with pytest.raises(StoreIncompatible, match=r"cannot be read .*rebuild it with `recs build`"):
        store.load(tmp_path / "s")
