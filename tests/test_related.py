"""All lists at once vs only the lists a change can reach: always identical."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recs import related
from recs.catalog import Catalog
from recs.encoder import normalise
from recs.rank_settings import RankSettings
from recs.related import link_all, link_changes
from recs.unchanged import settled
from tests.test_rank import make_articles


def clustered_vectors(n: int, seed: int, dim: int = 24) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, dim))
    return normalise(centres[rng.integers(0, 6, n)] + 0.6 * rng.normal(size=(n, dim)))


def apply_edits(articles, vectors, seed, edits):
    """Change, add and remove a few articles; return the new corpus."""
    rng = np.random.default_rng(seed)
    articles = list(articles)
    vectors = vectors.copy()
    for _ in range(edits):
        kind = rng.integers(0, 3)
        if kind == 0 and len(articles) > 2:  # edit text -> new vector
            i = int(rng.integers(0, len(articles)))
            articles[i] = replace(articles[i], excerpt=articles[i].excerpt + " edited")
            vectors[i] = normalise(rng.normal(size=(1, vectors.shape[1])))[0]
        elif kind == 1:  # add
            number = 1000 + int(rng.integers(0, 10**6))
            template = make_articles(1)[0]
            url = f"https://a.com/new-{number}"
            fields = {**template.fields, "webUrl": url, "title": f"New {number}"}
            articles.append(replace(template, url=url, title=fields["title"], fields=fields))
            vectors = np.vstack([vectors, normalise(rng.normal(size=(1, vectors.shape[1])))])
        elif len(articles) > 2:  # remove
            i = int(rng.integers(0, len(articles)))
            del articles[i]
            vectors = np.delete(vectors, i, axis=0)
    order = sorted(range(len(articles)), key=lambda i: articles[i].url)
    return [articles[i] for i in order], vectors[order]


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(5, 120),
    seed=st.integers(0, 1000),
    edits=st.integers(1, 4),
    limit=st.integers(1, 6),
    pool=st.integers(3, 20),
)
def test_incremental_equals_full(n, seed, edits, limit, pool):
    rank_settings = RankSettings(limit=limit, pool=pool)
    articles = make_articles(n)
    vectors = clustered_vectors(n, seed)
    before = link_all(articles, vectors, rank_settings)
    new_articles, new_vectors = apply_edits(articles, vectors, seed, edits)
    full = link_all(new_articles, new_vectors, rank_settings)
    incremental = link_changes(articles, vectors, before, new_articles, new_vectors, rank_settings)
    assert incremental.related == full.related
    assert np.array_equal(incremental.floors, full.floors)


def test_one_change_recomputes_few_lists_in_a_large_corpus():
    n = 2000
    rank_settings = RankSettings(limit=5, pool=20)
    articles = make_articles(n)
    vectors = clustered_vectors(n, 7, dim=48)
    before = link_all(articles, vectors, rank_settings)
    changed = vectors.copy()
    changed[17] = normalise(np.random.default_rng(1).normal(size=(1, 48)))[0]
    edited = list(articles)
    edited[17] = replace(articles[17], excerpt="new text")
    result = link_changes(articles, vectors, before, edited, changed, rank_settings)
    assert result.related == link_all(edited, changed, rank_settings).related
    assert 1 <= result.recomputed < n // 10


def test_nothing_changed_recomputes_nothing():
    articles = make_articles(50)
    vectors = clustered_vectors(50, 3)
    before = link_all(articles, vectors, RankSettings())
    again = link_changes(articles, vectors, before, articles, vectors, RankSettings())
    assert again.recomputed == 0
    assert again.related == before.related


def test_pin_to_a_changed_article_is_recomputed():
    articles = make_articles(300)
    articles[0] = replace(articles[0], pinned=("https://a.com/299",))
    vectors = clustered_vectors(300, 5)
    settings_ = RankSettings(pool=10)
    before = link_all(articles, vectors, settings_)
    assert before.related[0][0].row == 299
    removed = articles[:299]
    result = link_changes(articles, vectors, before, removed, vectors[:299], settings_)
    assert result.related == link_all(removed, vectors[:299], settings_).related
    assert all(i.row != 299 for i in result.related[0])


def nudge(articles, vectors, seed, edits, step):
    """Edit a few articles slightly (a reworded excerpt): their vectors move by about `step`."""
    rng = np.random.default_rng(seed)
    articles, vectors = list(articles), vectors.copy()
    for i in rng.choice(len(articles), size=edits, replace=False).tolist():
        articles[i] = replace(articles[i], excerpt=articles[i].excerpt + f" {seed}")
        moved = vectors[i] + step * rng.normal(size=vectors.shape[1]) / np.sqrt(vectors.shape[1])
        vectors[i] = normalise(moved[None, :])[0]
    return articles, vectors


def twins(n: int, seed: int, dim: int = 24) -> np.ndarray:
    """Clustered vectors where every tenth article nearly repeats the one before."""
    vectors = clustered_vectors(n, seed, dim)
    rng = np.random.default_rng(seed + 1)
    for i in range(1, n, 10):
        vectors[i] = normalise((vectors[i - 1] + 0.05 * rng.normal(size=dim))[None, :])[0]
    return vectors


def edit_rounds_equal_full_builds(articles, vectors, rank_settings, seed, rounds, edits, step):
    """Rounds of small edits, each linked incrementally from the last: always a full build."""
    lists = link_all(articles, vectors, rank_settings)
    for round_ in range(rounds):
        new_articles, new_vectors = nudge(articles, vectors, seed + round_, edits, step)
        lists = link_changes(articles, vectors, lists, new_articles, new_vectors, rank_settings)
        full = link_all(new_articles, new_vectors, rank_settings)
        assert lists.related == full.related
        assert np.array_equal(lists.floors, full.floors)
        assert lists.bases == full.bases
        articles, vectors = new_articles, new_vectors


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(80, 400),
    seed=st.integers(0, 1000),
    edits=st.integers(1, 6),
    step=st.sampled_from([0.02, 0.1, 0.3]),
    limit=st.integers(1, 6),
    pool=st.integers(5, 30),
    expand=st.integers(0, 3),
    boost=st.sampled_from([0.0, 0.2]),
    half_life=st.sampled_from([None, 30.0]),
    dedup=st.sampled_from([None, 0.9, 0.97]),
)
def test_lists_kept_by_their_basis_equal_a_full_build(
    n, seed, edits, step, limit, pool, expand, boost, half_life, dedup
):
    """Small edits, three rounds in a row: lists proved unchanged equal ranking them again."""
    rank_settings = RankSettings(
        limit=limit,
        pool=pool,
        expand_neighbours=expand,
        taxonomy_boost=boost,
        half_life_days=half_life,
        dedup_threshold=dedup,
    )
    articles = [
        replace(a, fields={**a.fields, "topics": [f"t{i % 4}"]})
        for i, a in enumerate(make_articles(n))
    ]
    vectors = twins(n, seed)
    edit_rounds_equal_full_builds(articles, vectors, rank_settings, seed, 3, edits, step)


def test_small_edits_keep_most_reached_lists():
    """The basis check keeps most lists a small edit reaches; without bases all are ranked."""
    n = 2000
    rank_settings = RankSettings()
    articles = make_articles(n)
    vectors = clustered_vectors(n, 11, dim=48)
    before = link_all(articles, vectors, rank_settings)
    assert sum(b is not None for b in before.bases) > 0.9 * n
    edited, moved = nudge(articles, vectors, 3, 20, 0.1)
    full = link_all(edited, moved, rank_settings)
    kept = link_changes(articles, vectors, before, edited, moved, rank_settings)
    unknown = replace(before, bases=[])  # a store written before bases were kept
    ranked = link_changes(articles, vectors, unknown, edited, moved, rank_settings)
    assert kept.related == ranked.related == full.related
    assert np.array_equal(kept.floors, full.floors)
    assert 20 <= kept.recomputed < ranked.recomputed / 2


def test_an_excluded_url_that_comes_or_goes_relinks_every_list():
    """Settings' exclude_urls count against each pool only while the URL is stored."""
    rank_settings = RankSettings(pool=10, exclude_url=("https://a.com/007",))
    articles = make_articles(300)
    vectors = clustered_vectors(300, 9)
    before = link_all(articles, vectors, rank_settings)
    kept = [a for a in articles if a.url != "https://a.com/007"]
    rows = [i for i, a in enumerate(articles) if a.url != "https://a.com/007"]
    result = link_changes(articles, vectors, before, kept, vectors[rows], rank_settings)
    full = link_all(kept, vectors[rows], rank_settings)
    assert result.related == full.related
    assert np.array_equal(result.floors, full.floors)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 1000),
    step=st.sampled_from([0.02, 0.1]),
    mmr=st.sampled_from([1.0, 0.7]),
    cap=st.sampled_from([None, 1, 2]),
    window=st.sampled_from([None, 40.0]),
    newer=st.booleans(),
    keep=st.sampled_from(["earliest", "quality"]),
)
def test_kept_lists_equal_a_full_build_under_soft_constraints_and_pins(
    seed, step, mmr, cap, window, newer, keep
):
    """Lists with a ladder step, MMR or pins record no basis and are ranked; the rest are kept."""
    rank_settings = RankSettings(
        mmr_lambda=mmr,
        provider_cap=cap,
        window_days=window,
        allow_newer=newer,
        dedup_keep=keep,
        dedup_threshold=0.9,
        pool=15,
    )
    n = 250
    articles = make_articles(n)
    for i in range(0, n, 17):  # some articles pin another
        articles[i] = replace(articles[i], pinned=(articles[(i * 7 + 3) % n].url,))
    vectors = twins(n, seed)
    edit_rounds_equal_full_builds(articles, vectors, rank_settings, seed, 2, 5, step)


def test_reach_and_settled_work_in_blocks(monkeypatch):
    """Many edits on a large corpus are checked block by block: same lists as in one block."""
    n = 600
    rank_settings = RankSettings(pool=20)
    articles = make_articles(n)
    vectors = clustered_vectors(n, 4, dim=32)
    before = link_all(articles, vectors, rank_settings)
    edited, moved = nudge(articles, vectors, 8, 40, 0.1)
    whole = link_changes(articles, vectors, before, edited, moved, rank_settings)
    monkeypatch.setattr(related, "rows_per_block", lambda columns, mib=64: 7)
    blocked = link_changes(articles, vectors, before, edited, moved, rank_settings)
    assert blocked.related == whole.related == link_all(edited, moved, rank_settings).related
    assert blocked.recomputed == whole.recomputed < n


def test_settled_leaves_lists_with_fewer_neighbours_to_still():
    """A list whose basis has fewer neighbours than asked does not stop the others (it made
    numpy raise on a ragged array, found by hypothesis)."""
    n = 300
    rank_settings = RankSettings(pool=10, expand_neighbours=3)
    articles = make_articles(n)
    vectors = clustered_vectors(n, 7, dim=24)
    before = link_all(articles, vectors, rank_settings)
    queries = [r for r in range(n) if before.bases[r] is not None][:40]
    lists = [before.ranked(r) for r in queries]
    edited, moved = nudge(articles, vectors, 3, 4, 0.1)
    rows = [r for r in range(n) if not np.array_equal(vectors[r], moved[r])]
    catalog = Catalog.from_articles(edited, moved)
    whole = settled(catalog, queries, lists, rows, vectors[rows], rank_settings)
    short = replace(
        lists[0], basis=lists[0].basis._replace(neighbours=lists[0].basis.neighbours[:2])
    )
    mixed = settled(catalog, queries, [short, *lists[1:]], rows, vectors[rows], rank_settings)
    assert not mixed[0] and list(mixed[1:]) == list(whole[1:]) and whole[1:].any()


@given(st.data())
@settings(max_examples=60, deadline=None)
def test_moved_vectors_flags_exactly_the_rows_whose_vector_differs(data):
    old_count = data.draw(st.integers(0, 300))
    count = data.draw(st.integers(0, 300))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    dim = 4096  # blocks of 256 rows: some lists span two, in place or not
    old_vectors = rng.standard_normal((old_count, dim)).astype(np.float32)
    kept = data.draw(st.booleans())  # rows in place (a small rebuild), else shuffled
    before = [
        (row if kept and row < old_count else int(rng.integers(-1, old_count))) if old_count else -1
        for row in range(count)
    ]
    vectors = rng.standard_normal((count, dim)).astype(np.float32)
    same = rng.random(count) < 0.7
    for row in range(count):
        if same[row] and before[row] >= 0:
            vectors[row] = old_vectors[before[row]]
    expected = [
        b < 0 or bool((old_vectors[b] != vectors[row]).any()) for row, b in enumerate(before)
    ]
    assert related.moved_vectors(old_vectors, vectors, before).tolist() == expected
