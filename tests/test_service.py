"""recs/service.py: what the HTTP service does without HTTP: load the store, follow new
generations and writes, answer with ETags, write through the journal."""

from __future__ import annotations

import json
import re
import threading

import numpy as np
import pytest

from recs.config import Settings
from recs.encoder import HashingEncoder
from recs.errors import ArticleNotFound, StoreNotFound
from recs.pipeline import build
from recs.rank_settings import RankSettings
from recs.service import Service
from tests.test_pipeline import CountingEncoder

SPACE0 = "https://example.com/space/0"


@pytest.fixture
def service(topic_corpus, tmp_path) -> Service:
    store_dir = tmp_path / "store"
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings(limit=3))
    service = Service(Settings(store=store_dir, model="hashing"), CountingEncoder())
    assert service.poll()
    return service


def related(service: Service, url: str = SPACE0, key: str = "k", **filters) -> dict:
    return json.loads(service.related(url, None, filters, key).body)


def test_nothing_is_answered_until_a_store_is_loaded(tmp_path):
    service = Service(Settings(store=tmp_path / "none", model="hashing"))
    assert not service.ready and service.etag_for("k") is None
    with pytest.raises(StoreNotFound, match="still loading"):
        service.related(SPACE0, None, {}, "k")
    with pytest.raises(StoreNotFound, match=r"no store at .*: run `recs build CONTENT_DIR --store"):
        service.poll()
    service.first_load()  # keeps the reason instead of raising: polling retries
    assert not service.ready and service.last_error and "no store at" in service.last_error


def test_an_answer_is_the_articles_list_with_an_etag_of_the_loaded_version(service):
    answer = service.related(SPACE0, None, {}, "k")
    body = json.loads(answer.body)
    assert body["url"] == SPACE0 and len(body["related"]) == 3
    assert re.fullmatch(r'"gen-000001\.0-[0-9a-f]{16}"', answer.etag)
    assert service.related(SPACE0, None, {}, "k") == answer  # the same request, the same answer
    assert service.related(SPACE0, None, {}, "other").etag != answer.etag
    assert service.etag_for("k") == answer.etag
    assert len(json.loads(service.related(SPACE0, 2, {}, "k2").body)["related"]) == 2


def test_filters_rank_live_and_are_never_cached_as_the_plain_answer(service):
    first = related(service)["related"][0]["webUrl"]
    filtered = related(service, exclude_url=(first,))
    assert first not in [entry["webUrl"] for entry in filtered["related"]]
    assert related(service)["related"][0]["webUrl"] == first


def test_polling_changes_nothing_until_the_store_does(service, topic_corpus):
    seen = []
    service.on_change = lambda: seen.append(service.snapshot.version)
    assert not service.poll() and seen == []
    build(topic_corpus, service.settings.store, HashingEncoder(), RankSettings(limit=2))
    assert service.poll() and seen == ["gen-000002.0"]
    assert len(related(service)["related"]) == 2


def test_a_write_is_served_at_once_and_a_same_text_write_needs_no_model(service):
    article = {
        "title": "Space station crew returns",
        "excerpt": "Astronauts land after months in orbit.",
        "webUrl": "HTTP://example.com/space/new/",
    }
    url, created, revision = service.upsert(article)
    assert (url, created, revision) == ("https://example.com/space/new", True, 1)
    assert service.snapshot.version == "gen-000001.1"
    assert len(related(service, url)["related"]) == 3
    assert service.encoder.texts == [
        "Space station crew returns. Astronauts land after months in orbit."
    ]
    again = service.upsert({**article, "topics": ["space"]})
    assert again == ("https://example.com/space/new", False, 2)
    assert len(service.encoder.texts) == 1  # the text did not change: its vector is kept


def test_a_delete_removes_the_article_and_an_unknown_one_is_not_found(service):
    revision = service.delete("http://example.com/space/1/")
    assert revision == 1
    with pytest.raises(ArticleNotFound):
        related(service, "https://example.com/space/1")
    assert "https://example.com/space/1" not in [e["webUrl"] for e in related(service)["related"]]
    with pytest.raises(ArticleNotFound, match="no stored article has the URL"):
        service.delete("https://example.com/nowhere")


def test_a_draft_is_answered_without_being_stored(service):
    body = json.loads(
        service.draft({"title": "Rocket launch", "excerpt": "A space rocket."}, 2, {})
    )
    assert body["url"] is None and len(body["related"]) == 2
    assert len(service.snapshot) == 12


def _answers(service: Service) -> dict[str, tuple[bytes, bytes]]:
    """Every article's plain and filtered (ranked live) answer bodies."""
    answers = {}
    for article in service.snapshot.articles:
        plain = service.related(article.url, None, {}, "k").body
        live = service.related(article.url, 5, {"exclude_url": (SPACE0,)}, "k").body
        answers[article.url] = (plain, live)
    return answers


def test_a_replacing_write_overwrites_the_served_vectors_and_answers_as_a_fresh_load(service):
    url = "https://example.com/space/new"
    service.upsert({"title": "Space crew", "excerpt": "Astronauts in orbit.", "webUrl": url})
    served = service.snapshot  # the loaded matrix had no free rows: the append copied it
    service.upsert({"title": "Space crew", "excerpt": "Astronauts land.", "webUrl": url})
    service.upsert({**dict(service.snapshot.articles[0].fields), "excerpt": "Rewritten."})
    assert np.shares_memory(service.snapshot.vectors, served.vectors), "written in place"
    fresh = Service(Settings(store=service.settings.store, model="hashing"), CountingEncoder())
    assert fresh.poll()  # the journal folded into a freshly loaded store: copies only
    assert not np.shares_memory(fresh.snapshot.vectors, service.snapshot.vectors)
    assert np.array_equal(fresh.snapshot.vectors, service.snapshot.vectors)
    assert _answers(service) == _answers(fresh)


def test_readers_ranking_live_while_writes_overwrite_rows_lose_nothing(service):
    """Live rankings and drafts in other threads while replacing writes fold in place:
    none fails, and the answers end as a fresh load of the store gives them."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def read() -> None:
        while not stop.is_set():
            try:
                related(service, SPACE0, exclude_url=("https://example.com/space/1",))
                service.draft({"title": "Rocket launch", "excerpt": "A space rocket."}, 3, {})
            except BaseException as error:  # noqa: BLE001 - reported below
                failures.append(error)
                return

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for n in range(20):
            service.upsert({"title": f"Space take {n}", "excerpt": f"Orbit {n}.", "webUrl": SPACE0})
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=30)
    assert failures == []
    fresh = Service(Settings(store=service.settings.store, model="hashing"), CountingEncoder())
    assert fresh.poll()
    assert _answers(service) == _answers(fresh)
