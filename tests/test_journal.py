"""The write journal: appending, reading, clearing, and folding writes into a generation."""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recs import journal
from recs.articles import alias_map
from recs.encoder import normalise
from recs.generation import Snapshot
from recs.journal import Change, SharedLock, fold, grown
from recs.rank_settings import RankSettings
from recs.related import link_all
from tests.test_rank import make_articles
from tests.test_related import clustered_vectors


def snapshot_of(articles, vectors, rank: RankSettings) -> Snapshot:
    lists = link_all(articles, vectors, rank)
    return Snapshot(
        "fake-model",
        vectors.shape[1],
        rank,
        list(articles),
        vectors,
        lists.related,
        lists.floors,
        alias_map(articles),
        lists.bases,
        generation="gen-000001",
    )


def by_url(snapshot: Snapshot) -> dict[str, tuple[list[tuple], float]]:
    """Each article's list by URLs, with its floor: what a reader sees, whatever the rows."""
    urls = [a.url for a in snapshot.articles]
    return {
        urls[row]: (
            [
                (urls[i.row], i.score, i.similarity, i.step, [urls[r] for r in i.same_story])
                for i in snapshot.related[row]
            ],
            float(snapshot.floors[row]),
        )
        for row in range(len(urls))
    }


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(30, 150),
    seed=st.integers(0, 10_000),
    writes=st.lists(st.sampled_from(["new", "replace", "same", "delete"]), min_size=1, max_size=6),
    limit=st.integers(1, 5),
    pool=st.integers(4, 25),
    in_place=st.booleans(),
)
def test_folded_writes_give_the_lists_of_a_full_build(n, seed, writes, limit, pool, in_place):
    """Writes folded in (rows kept, appended, or renumbered by a deletion) leave every list
    as ranking all articles again gives it; with `overwrite`, replaced vectors are written
    into the matrix the snapshot had (as a server folds), with the same lists."""
    rank = RankSettings(limit=limit, pool=pool)
    rng = np.random.default_rng(seed)
    articles = make_articles(n)
    vectors = clustered_vectors(n, seed)
    if in_place:  # a matrix with free rows after it, as a server's folded one
        vectors = grown(vectors, {}, [])
    before = snapshot_of(articles, vectors, rank)
    current = {a.url: (a, vectors[i]) for i, a in enumerate(articles)}
    changes = []
    for number, kind in enumerate(writes, start=1):
        urls = sorted(current)
        if kind == "new":
            template = articles[0]
            url = f"https://a.com/api-{number}"
            fields = {**template.fields, "webUrl": url, "title": f"Written {number}"}
            article = replace(template, url=url, title=fields["title"], fields=fields)
        elif kind == "delete" and len(current) > 3:
            url = urls[int(rng.integers(0, len(urls)))]
            del current[url]
            changes.append(Change(number, "delete", url))
            continue
        else:
            url = urls[int(rng.integers(0, len(urls)))]
            article = current[url][0]
            if kind == "replace":
                article = replace(article, excerpt=article.excerpt + f" take {number}")
        vector = normalise(rng.normal(size=(1, vectors.shape[1])))[0].astype(np.float32)
        if kind == "same":
            vector = current[url][1]
        current[url] = (article, vector)
        changes.append(Change(number, "upsert", url, article, vector))
    folded = fold(before, changes, SharedLock().exclusive if in_place else None)
    if in_place and "delete" not in writes:
        assert np.shares_memory(folded.vectors, vectors), "written in place, not copied"
    urls = sorted(current)
    full = snapshot_of([current[u][0] for u in urls], np.array([current[u][1] for u in urls]), rank)
    assert by_url(folded) == by_url(full)
    assert folded.revision == len(writes) and folded.generation == before.generation
    assert folded.catalog.urls == [a.url for a in folded.articles]


def test_a_fold_runs_with_the_garbage_collector_paused(monkeypatch):
    rank = RankSettings(limit=3, pool=8)
    articles, vectors = make_articles(40), clustered_vectors(40, 1)
    before = snapshot_of(articles, vectors, rank)
    seen: list[bool] = []
    real = journal.link_changes

    def watching(*args, **kwargs):
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(journal, "link_changes", watching)
    edited = replace(articles[3], excerpt=articles[3].excerpt + " again")
    fold(before, [Change(1, "upsert", edited.url, edited, vectors[5])])
    assert seen == [False] and gc.isenabled()


def _rows(n: int, seed: int) -> np.ndarray:
    return normalise(np.random.default_rng(seed).normal(size=(n, 8))).astype(np.float32)


def test_rows_appended_to_the_newest_matrix_go_into_its_free_rows_and_nothing_else_changes():
    loaded = _rows(5, 1)
    kept = loaded.copy()
    first = grown(loaded, {}, list(_rows(2, 2)))  # a loaded matrix has no free rows: copied
    assert not np.shares_memory(first, loaded) and np.array_equal(loaded, kept)
    second = grown(first, {}, list(_rows(1, 3)))
    assert np.shares_memory(second, first), "appended into the free rows, not copied"
    assert np.array_equal(second[:7], first) and np.array_equal(second[7], _rows(1, 3)[0])
    assert len(first) == 7, "the earlier view still holds its own rows only"


def test_a_matrix_that_is_not_the_newest_view_of_its_buffer_is_copied_not_overwritten():
    base = grown(_rows(4, 1), {}, list(_rows(1, 2)))
    newer = grown(base, {}, list(_rows(1, 3)))
    branch = grown(base, {}, list(_rows(1, 4)))  # the rows after `base` belong to `newer`
    assert np.array_equal(newer[5], _rows(1, 3)[0]), "the newer view's row is untouched"
    assert np.array_equal(branch[5], _rows(1, 4)[0]) and not np.shares_memory(branch, newer)


def test_a_replaced_row_or_a_full_buffer_gives_a_copy(monkeypatch):
    base = grown(_rows(4, 1), {}, list(_rows(1, 2)))
    before = base.copy()
    replaced = grown(base, {2: _rows(1, 5)[0]}, [])
    assert np.array_equal(base, before) and np.array_equal(replaced[2], _rows(1, 5)[0])
    assert not np.shares_memory(replaced, base)
    monkeypatch.setattr(journal, "SPARE_ROWS", 1)
    small = grown(_rows(3, 1), {}, list(_rows(1, 2)))
    full = grown(small, {}, list(_rows(2, 3)))  # two rows, one free
    assert not np.shares_memory(full, small) and np.array_equal(full[:4], small)


def test_a_replaced_row_is_written_in_place_inside_the_overwrite_lock():
    base = grown(_rows(4, 1), {}, list(_rows(1, 2)))
    held: list[bool] = []
    lock = SharedLock()

    def overwrite():
        held.append(True)
        return lock.exclusive()

    replaced = grown(base, {2: _rows(1, 5)[0]}, list(_rows(1, 6)), overwrite)
    assert held == [True] and np.shares_memory(replaced, base)
    assert np.array_equal(replaced[2], _rows(1, 5)[0]) and np.array_equal(base[2], replaced[2])
    assert np.array_equal(replaced[5], _rows(1, 6)[0]) and len(replaced) == 6
    # Not the newest view of its buffer: copied, lock or not.
    again = grown(base, {1: _rows(1, 7)[0]}, [], overwrite)
    assert not np.shares_memory(again, base) and held == [True]


def _in_thread(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_readers_share_the_lock_and_a_writer_has_it_alone():
    lock = SharedLock()
    entered = threading.Event()

    def read_once() -> None:
        with lock.shared():
            entered.set()

    with lock.shared():
        _in_thread(read_once)
        assert entered.wait(timeout=5), "two readers at once"
    events: list[str] = []

    def holding(hold, name: str):
        def run() -> None:
            with hold():
                events.append(name)

        return run

    reading = lock.shared()
    reading.__enter__()
    writer = _in_thread(holding(lock.exclusive, "write"))
    time.sleep(0.1)
    assert events == [], "the writer waits for the reader"
    late = _in_thread(holding(lock.shared, "read"))
    time.sleep(0.1)
    assert events == [], "a reader arriving while a writer waits waits too"
    reading.__exit__(None, None, None)
    writer.join(timeout=5)
    late.join(timeout=5)
    assert events == ["write", "read"]


def test_writers_have_the_lock_one_at_a_time():
    lock = SharedLock()
    inside = 0
    most = 0
    guard = threading.Lock()

    def write() -> None:
        nonlocal inside, most
        for _ in range(50):
            with lock.exclusive():
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.0005)
                with guard:
                    inside -= 1

    threads = [_in_thread(write) for _ in range(4)]
    for thread in threads:
        thread.join(timeout=30)
    assert most == 1 and inside == 0


def test_a_fold_searches_exactly_whatever_the_stores_size(monkeypatch):
    """Past EXACT_MAX rows "auto" means an inverted file, which a write would build again
    for the few lists it ranks (seconds at 60,000 rows): a fold asks for exact search."""
    from recs import related

    kinds: list[str] = []
    real = related.VectorIndex

    def spying(vectors, settings=None):
        index = real(vectors, settings)
        kinds.append(settings.kind if settings is not None else "auto")
        return index

    monkeypatch.setattr(related, "VectorIndex", spying)
    rank = RankSettings(limit=3, pool=8)
    articles, vectors = make_articles(60), clustered_vectors(60, 2)
    before = snapshot_of(articles, vectors, rank)
    kinds.clear()
    edited = replace(articles[3], excerpt=articles[3].excerpt + " again")
    fold(before, [Change(1, "upsert", edited.url, edited, vectors[7])])
    assert kinds == ["exact"]
