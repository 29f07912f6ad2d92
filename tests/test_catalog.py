"""recs/catalog.py: what ranking knows of every article (Facts, the Catalog columns and
lookups) and of the article asking (Query)."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import fields, replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recs.articles import Article
from recs.catalog import (
    COLUMNS,
    Catalog,
    Facts,
    Query,
    category_of,
    is_draft,
    title_key,
    topics_of,
)


@given(st.text(alphabet=st.characters(max_codepoint=0x2FFF), max_size=30))
def test_title_key_of_any_text_ignores_case_accents_and_punctuation(title):
    key = title_key(title)
    if any(c.isascii() and c.isalnum() for c in unicodedata.normalize("NFKD", title)):
        # Lower-case ASCII letters and digits, one space between runs, none at the ends.
        assert key == " ".join(key.split()) and all(
            c == " " or (c.isascii() and c.isalnum() and not c.isupper()) for c in key
        )
        assert title_key(title.upper()) == key or not title.isascii()  # upper() may add letters
        assert title_key(f"¡{title}!") == key == title_key(key)
    else:  # nothing left: the title itself, lower case
        assert key == title.strip().lower()


@pytest.mark.parametrize(
    ("title", "key"),
    [
        ("Café — ÉTÉ", "cafe ete"),
        ("Cafe ete!", "cafe ete"),
        ("  Snake_case   and\tTabs  ", "snake case and tabs"),
        ("Mars 2030: NASA's plan", "mars 2030 nasa s plan"),
        ("ﬁnal ① Ⅻ", "final 1 xii"),  # compatibility forms fold to ASCII
        ("  Новости  ", "новости"),  # nothing ASCII: the title, lower case
    ],
)
def test_title_key_examples(title, key):
    assert title_key(title) == key


def article(n: int, **fields) -> Article:
    """Article n (https://a.example/n) with `fields` over a title and an excerpt."""
    url = f"https://a.example/{n}"
    data = {"title": f"Title {n}", "excerpt": "E", "webUrl": url, **fields}
    original = fields.get("originalUrl")
    return Article(url, data["title"], "E", data, f"{n}.md", original_url=original)


@pytest.mark.parametrize(
    ("provider", "name"),
    [
        ({"name": " BBC News ", "domain": "bbc.co.uk"}, "bbc news"),
        ({"domain": "BBC.co.uk"}, "bbc.co.uk"),
        ("Reuters", "reuters"),
        ("  ", None),
        ({"name": 5}, None),
        (None, None),
    ],
)
def test_the_provider_is_the_name_else_the_domain_lower_case(provider, name):
    assert Facts.of(article(1, provider=provider)).provider == name


@pytest.mark.parametrize(
    ("quality", "read"), [(7, 7.0), (2.5, 2.5), (True, math.nan), ("high", math.nan)]
)
def test_quality_is_a_number_or_unknown(quality, read):
    found = Facts.of(article(1, quality=quality)).quality
    assert found == read or (math.isnan(read) and math.isnan(found))


def test_topics_category_and_tags_are_compared_in_lower_case():
    fields = {"topics": ["AI", " Space ", "", "  "], "category": " Science "}
    facts = Facts.of(article(1, **fields))
    assert facts.topics == topics_of(fields) == frozenset({"ai", "space"})
    assert facts.category == category_of(fields) == "science"
    assert facts.tags == frozenset({"ai", "space", "category:science"})
    assert Facts.of(article(2, category="  ")).tags == frozenset()
    assert category_of({"category": 3}) is None


@pytest.mark.parametrize(
    ("fields", "draft"),
    [
        ({}, False),
        ({"published": False}, True),
        ({"draft": True}, True),
        ({"published": True, "draft": False}, False),
        ({"draft": "yes"}, False),  # only the boolean marks a draft
    ],
)
def test_a_draft_is_published_false_or_draft_true(fields, draft):
    assert is_draft(fields) is draft
    assert Facts.of(article(1, **fields)).draft is draft


def catalog_of(articles: list[Article], now: float | None = None) -> Catalog:
    vectors = np.eye(len(articles), 4, dtype=np.float32)
    return Catalog.from_articles(articles, vectors, now)


def test_each_row_holds_the_facts_of_its_article():
    articles = [
        article(0, provider={"name": "P"}, quality=3, type="video", topics=["x"]),
        article(1, published=False, category="News", originalUrl="https://b.example/1"),
        article(2),
    ]
    catalog = catalog_of(articles)
    assert len(catalog) == 3 and catalog.urls == [a.url for a in articles]
    for row, one in enumerate(articles):
        got, want = catalog.fact(row), Facts.of(one)
        assert got.quality == want.quality or (math.isnan(got.quality) and math.isnan(want.quality))
        assert got._replace(quality=0.0, published_ts=0.0) == want._replace(
            quality=0.0, published_ts=0.0
        )
    assert catalog.row_of == {a.url: row for row, a in enumerate(articles)}


def test_a_catalog_of_no_articles_has_every_column_empty():
    catalog = Catalog.from_articles([], np.zeros((0, 4), dtype=np.float32))
    assert len(catalog) == 0 and catalog.row_of == {}
    for column in COLUMNS.values():
        assert len(getattr(catalog, column)) == 0
    assert catalog.published_ts.dtype == catalog.quality.dtype == np.float64


def test_a_patched_catalog_equals_one_made_from_the_new_articles():
    articles = [article(n, topics=[f"t{n}"], quality=n) for n in range(4)]
    catalog = catalog_of(articles, now=1_700_000_000.0)
    replaced = article(1, topics=["new"], provider="P", published=False)
    added = article(9, category="c", originalUrl="https://b.example/9")
    new = [articles[0], replaced, articles[2], articles[3], added]
    vectors = np.eye(5, 4, dtype=np.float32)
    patched = catalog.patched(vectors, {4: added, 1: replaced})
    whole = Catalog.from_articles(new, vectors, 1_700_000_000.0)
    for column in COLUMNS.values():
        got, want = getattr(patched, column), getattr(whole, column)
        if isinstance(want, np.ndarray):
            assert np.array_equal(got, want, equal_nan=True), column
        else:
            assert got == want, column
    assert patched.now == whole.now and patched.vectors is vectors
    assert catalog.urls[1] == replaced.url and catalog.topics[1] == {"t1"}  # the old one stays
    # The lookups, carried and patched rather than made again, are the whole one's.
    assert patched.url_order.tolist() == whole.url_order.tolist()
    assert patched.rows_by_original == whole.rows_by_original
    assert patched.curated == whole.curated


@given(
    st.lists(st.integers(0, 30), min_size=1, max_size=12, unique=True),
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 5)), max_size=8),
)
@settings(max_examples=200, deadline=None)
def test_patching_rows_in_any_order_keeps_every_lookup_right(numbers, writes):
    """Replacing and appending articles (URLs in any order, titles shared or not) gives
    the URL order, title classes and curated rows of a catalog made from scratch."""
    articles = [
        article(n, title=f"T{n % 4}", originalUrl=f"https://o.example/{n % 3}") for n in numbers
    ]
    catalog = catalog_of(articles)
    rows: dict[int, object] = {}
    current = list(articles)
    for number, title in writes:
        new = replace(
            article(number, title=f"T{title}", originalUrl=f"https://o.example/{title % 3}"),
            pinned=(f"https://a.example/{title}",) * (title % 2),
        )
        row = next((i for i, a in enumerate(current) if a.url == new.url), len(current))
        if row == len(current):
            current.append(new)
        else:
            current[row] = new
        rows[row] = new
    vectors = np.zeros((len(current), 4), dtype=np.float32)
    patched = catalog.patched(vectors, rows)
    whole = Catalog.from_articles(current, vectors)
    assert patched.url_order.tolist() == whole.url_order.tolist()
    assert patched.curated == whole.curated
    assert patched.row_of == whole.row_of
    assert patched.rows_by_original == whole.rows_by_original
    same = patched.title_ids[:, None] == patched.title_ids[None, :]
    assert np.array_equal(same, whole.title_ids[:, None] == whole.title_ids[None, :])


def test_lookups_order_urls_number_titles_and_find_rows_by_either_url():
    articles = [
        replace(article(2), url="https://a.example/c"),
        replace(article(0, originalUrl="https://old.example/x"), url="https://a.example/a"),
        replace(article(1, title="Title 2!"), url="https://a.example/b"),
    ]
    articles[1] = replace(articles[1], original_url="https://old.example/x")
    catalog = catalog_of(articles)
    assert catalog.url_order.tolist() == [2, 0, 1]  # c, a, b in URL order
    assert catalog.title_ids.tolist() == [0, 1, 0]  # "Title 2" and "Title 2!" are one title
    assert catalog.rows_by_original == {"https://old.example/x": [1]}
    assert catalog.rows_of({"https://a.example/b", "https://old.example/x"}) == {1, 2}
    assert catalog.rows_of({"https://nowhere.example/"}) == set()


def test_a_query_is_what_ranking_needs_of_the_article_asking():
    one = replace(
        article(1, topics=["AI"], category="Tech", originalUrl="https://old.example/1"),
        original_url="https://old.example/1",
        published_ts=1_600_000_000.0,
        pinned=("https://a.example/2",),
        excluded=("https://a.example/3",),
    )
    vector = np.ones(4, dtype=np.float32)
    query = Query.for_article(one, vector)
    assert query.url == one.url and query.original_url == "https://old.example/1"
    assert query.title_key == "title 1" and query.published_ts == 1_600_000_000.0
    assert query.topics == {"ai"} and query.category == "tech"
    assert query.tags == {"ai", "category:tech"}
    assert (query.pinned, query.excluded) == (one.pinned, one.excluded)


def test_a_stored_rows_query_reads_the_catalog_and_says_what_the_article_says():
    """`for_row` takes the facts from the catalog's columns (a build asks for thousands of
    queries); every field is the one `for_article` works out from the article itself."""
    draft = replace(article(2, topics=["Space"], language="de"), published_ts=None)
    stored = [article(0), article(1, topics=["AI"], category="Tech"), draft]
    vectors = np.eye(3, 4, dtype=np.float32)
    catalog = Catalog.from_articles(stored, vectors)
    for row, one in enumerate(stored):
        from_row = Query.for_row(catalog, row, one)
        from_article = Query.for_article(one, vectors[row])
        for name in (f.name for f in fields(Query)):
            mine, theirs = getattr(from_row, name), getattr(from_article, name)
            if name == "vector":
                assert np.array_equal(mine, theirs)
            else:
                assert mine == theirs, name
