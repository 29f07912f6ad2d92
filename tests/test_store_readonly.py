"""A store on a read-only mount (replicas reading a shared store): it opens, journal and all."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recs import journal, store
from recs.encoder import HashingEncoder
from recs.pipeline import build
from recs.rank_settings import RankSettings
from recs.recommender import Recommender
from tests.conftest import read_only_mount


@pytest.fixture
def read_only_copy(topic_corpus, tmp_path):
    """A built store with one journal entry, seen through a read-only bind mount."""
    source = tmp_path / "store"
    snapshot, _ = build(topic_corpus, source, HashingEncoder(), RankSettings(limit=3))
    first = snapshot.articles[0]
    fields = {**first.fields, "webUrl": "https://example.com/from-api"}
    article = replace(first, url="https://example.com/from-api", source="api", fields=fields)
    change = journal.Change(
        0, "upsert", "https://example.com/from-api", article, np.asarray(snapshot.vectors[0])
    )
    with store.locked(source):
        journal.append_changes(source, snapshot.generation, [change])
    with read_only_mount(source, tmp_path / "mnt") as mount:
        yield mount


def test_a_read_only_store_opens_with_its_journal(read_only_copy):
    with pytest.raises(OSError):
        (read_only_copy / "probe").write_text("x")
    recommender = Recommender.open(read_only_copy)
    assert recommender.canonical("https://example.com/from-api") == "https://example.com/from-api"
    assert recommender.related("https://example.com/space/0", limit=2)
