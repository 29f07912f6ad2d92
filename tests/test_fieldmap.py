"""The field mapping: the usual keys of site generators, the body's first paragraph, and
seed-format files read exactly as before."""

from __future__ import annotations

from dataclasses import replace

import pytest

from recs.corpus import explain_article_text, parse_article_text
from recs.fieldmap import EXCERPT_CHARS, derive, first_paragraph, iso_date
from recs.frontmatter import ArticleError
from recs.options import FieldMap, ReadOptions, UrlRules
from tests.conftest import EXAMPLES, SEED

HUGO = ReadOptions(urls=UrlRules("hugo", "https://blog.example/"))


def test_seed_format_files_keep_their_fields_exactly():
    for path in [SEED, *sorted(EXAMPLES.rglob("*.md"))]:
        if path.name == "README.md":
            continue
        from recs.corpus import read_front_matter

        written = read_front_matter(path.read_bytes())
        article = parse_article_text(path.read_bytes(), path.name)
        assert dict(article.fields) == {k: v for k, v in written.items() if k != "related"}
        assert list(article.fields) == [k for k in written if k != "related"]


@pytest.mark.parametrize(
    ("front", "field", "value"),
    [
        ('description = "D"', "excerpt", "D"),
        ('summary = "S"', "excerpt", "S"),
        ('subtitle = "U"', "excerpt", "U"),
        ('description = "D"\nsummary = "S"', "excerpt", "D"),
        ('excerpt = "E"\ndescription = "D"', "excerpt", "E"),
        ("date = 2024-01-05T10:00:00Z", "publishedDateTime", "2024-01-05T10:00:00Z"),
        ('publishDate = "2024-02-01"', "publishedDateTime", "2024-02-01"),
        ('pubDate = "2024-03-01T08:00:00+01:00"', "publishedDateTime", "2024-03-01T08:00:00+01:00"),
        ('tags = ["a", "b"]\ncategories = ["b", "c"]', "topics", ["a", "b", "c"]),
        ('keywords = "k"', "topics", ["k"]),
        ("draft = true", "draft", True),
    ],
)
def test_usual_keys_are_read(front, field, value):
    raw = f'+++\ntitle = "T"\n{front}\n+++\nFirst paragraph.\n'.encode()
    article = parse_article_text(raw, "posts/x.md", HUGO)
    assert article.fields[field] == value


def test_excerpt_comes_from_the_first_paragraph_of_prose():
    body = (
        '{{< figure src="a.png" >}}\n\n'
        "# A heading\n\n"
        "```python\nprint('code')\n```\n\n"
        "<!-- a comment -->\n\n"
        "![alt](pic.png)\n\n"
        "The **first** paragraph, with [a link](https://x.example) and `code`,\n"
        "wrapped over _two_ lines &amp; an entity.\n\n"
        "The second paragraph.\n"
    )
    assert first_paragraph(body) == (
        "The first paragraph, with a link and code, wrapped over two lines & an entity."
    )
    assert first_paragraph("Summary here.\n<!--more-->\nRest.") == "Summary here."
    assert first_paragraph("{% include x.html %}\n\nLiquid {{ page.title }} text.") == (
        "Liquid text."
    )
    assert first_paragraph("- a list\n- of items\n\n| a | table |\n") == ""
    long = " ".join(["word"] * 200)
    cut = first_paragraph(long)
    assert len(cut) <= EXCERPT_CHARS + 1 and cut.endswith("word…")


def test_no_excerpt_anywhere_is_one_clear_problem():
    raw = b'+++\ntitle = "T"\n+++\n## Only a heading\n'
    with pytest.raises(ArticleError, match=r"missing required field 'excerpt' .*description"):
        parse_article_text(raw, "posts/x.md", HUGO)
    no_body = ReadOptions(fields=FieldMap(excerpt_from_body=False), urls=HUGO.urls)
    with pytest.raises(ArticleError, match="missing required field 'excerpt'"):
        parse_article_text(b'+++\ntitle = "T"\n+++\nA paragraph.\n', "posts/x.md", no_body)


def test_a_mapping_reads_other_keys():
    read = replace(
        HUGO, fields=FieldMap(title=("headline",), excerpt=("dek",), date=("when",), url=("link",))
    )
    raw = b'---\nheadline: "H"\ndek: "D"\nwhen: 2024-05-01\nlink: "https://x.example/h"\n---\n'
    article = parse_article_text(raw, "h.md", read)
    assert (article.title, article.excerpt, article.url) == ("H", "D", "https://x.example/h")
    assert article.fields["publishedDateTime"] == "2024-05-01"
    assert article.fields["headline"] == "H"  # the site's own keys stay


def test_site_dates_are_made_iso():
    assert iso_date("2024-01-05 10:00:00 +0100") == "2024-01-05T10:00:00+01:00"
    assert iso_date("2024-01-05 9:30") == "2024-01-05T09:30:00"
    assert iso_date("2024-01-05") == "2024-01-05"
    assert iso_date("next tuesday") is None
    raw = b'---\ntitle: "T"\nexcerpt: "E"\ndate: someday\n---\n'
    with pytest.raises(ArticleError) as error:
        parse_article_text(raw, "posts/x.md", HUGO)
    assert error.value.reason.startswith("date: 'someday' is not an ISO 8601")
    assert error.value.line == 4


def test_site_images_become_absolute_urls():
    raw = b'+++\ntitle = "T"\ndescription = "D"\nimages = ["/img/a.png", "b.png"]\n+++\n'
    article = parse_article_text(raw, "posts/x.md", HUGO)
    assert article.fields["images"] == [
        {"url": "https://blog.example/img/a.png"},
        {"url": "https://blog.example/b.png"},
    ]


def test_explain_says_which_rule_picked_each_field():
    raw = b'+++\ntitle = "T"\ndate = 2024-01-05\ntags = ["x"]\n+++\nThe body.\n'
    article, picks, kind = explain_article_text(raw, "posts/my-post.md", HUGO)
    assert kind == "toml"
    assert {p.field: p.rule for p in picks} == {
        "title": "key `title`",
        "excerpt": "the body's first paragraph",
        "date": "key `date`",
        "topics": "keys `tags`",
        "url": "Hugo: folders and file name, under https://blog.example/",
    }
    assert article.url == "https://blog.example/posts/my-post"
    assert article.fields["webUrl"] == "https://blog.example/posts/my-post/"


def test_derive_leaves_anything_but_a_mapping_alone():
    assert derive(["a"], "", "x.md", ReadOptions()) == (["a"], [])
