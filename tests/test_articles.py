"""Articles (recs.articles): the seed's fields and entry, the text embedded, URLs, every way
a file can be unusable, and text that changes what a reader sees."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recs import articles
from recs.articles import ENTRY_FIELDS, Article, ArticleError, embed_text, text_hash
from recs.corpus import parse_article_text, read_corpus, read_front_matter
from tests.conftest import SEED


def test_seed_parses_with_dates_kept_as_written():
    article = parse_article_text(SEED.read_bytes(), "seed.md")
    assert article.title == "Chinese School Faces Backlash Over Use of Facial Recognition Scanners"
    assert article.url.endswith("facial-recognition-scanners")
    assert article.fields["publishedDateTime"] == "2022-02-21T03:37:00Z"
    # The related block is recs' output: not part of the article, still in the file.
    assert "related" not in article.fields
    related = read_front_matter(SEED.read_bytes())["related"]
    assert related[0]["publishedDateTime"] == "2022-02-25T03:15:00Z"
    assert article.published_ts == 1645414620.0
    assert article.fields["secured"].startswith("qQUmftxr")


def test_entry_has_the_seed_key_order_and_nothing_invented():
    article = parse_article_text(SEED.read_bytes(), "seed.md")
    entry = article.entry()
    assert list(entry) == list(ENTRY_FIELDS)
    assert entry["provider"] == {"name": "Sixth Tone", "domain": "sixthtone.com"}
    bare = parse_article_text(
        b'---\ntitle: "T"\nexcerpt: "E"\nwebUrl: "https://a.com/x"\n---\n', "x.md"
    )
    assert bare.entry() == {"title": "T", "excerpt": "E", "webUrl": "https://a.com/x"}


def test_embed_text_rule():
    assert embed_text("Title", "Excerpt here.") == "Title. Excerpt here."
    assert embed_text("  Title\n on two lines ", "") == "Title on two lines"
    assert embed_text("A", " b\n c ") == "A. b c"


def test_original_url_resolves_and_body_is_kept():
    raw = (
        b'---\ntitle: "T"\nexcerpt: "E"\nwebUrl: "https://a.com/x"\n'
        b'originalUrl: "http://origin.com/y?utm_source=z"\n---\nThe body.\n'
    )
    article = parse_article_text(raw, "x.md")
    assert article.original_url == "https://origin.com/y"
    assert article.body == "The body.\n"


def test_article_without_web_url_uses_original_url():
    raw = b'---\ntitle: "T"\nexcerpt: "E"\noriginalUrl: "https://origin.com/y"\n---\n'
    assert parse_article_text(raw, "x.md").url == "https://origin.com/y"


@pytest.mark.parametrize(
    ("raw", "reason", "line"),
    [
        (b"", "empty file", None),
        (b"just text\n", "no front matter", 1),
        (b"---\ntitle: x\n", "never closed", 1),
        (b'---\ntitle: "x\n---\n', "invalid YAML", None),
        (b'---\nexcerpt: "e"\n---\n', "missing required field 'title'", None),
        (b'---\ntitle: "t"\n---\n', "missing required field 'excerpt'", None),
        (b'---\ntitle: [a, b]\nexcerpt: "e"\n---\n', "title: must be text", 2),
        (
            b'---\ntitle: "t"\nexcerpt: "e"\nwebUrl: "x"\npublishedDateTime: yesterday\n---\n',
            "publishedDateTime",
            5,
        ),
        (
            b'---\ntitle: "t"\nexcerpt: "e"\nwebUrl: "https://a.com/x"\nquality: high\n---\n',
            "quality: must be a number",
            5,
        ),
        (b'---\ntitle: "t"\nexcerpt: "e"\nwebUrl: "not a url"\n---\n', "webUrl", 4),
        (b'---\ntitle: "t"\nexcerpt: "e"\n---\n', "no 'webUrl' or 'originalUrl'", None),
        (b'---\ntitle: "t"\ntitle: "u"\nexcerpt: "e"\n---\n', "duplicate key 'title'", 3),
        (b'---\ntitle: !!python/object:os.system "t"\nexcerpt: "e"\n---\n', "invalid YAML", 2),
        (b"---\n- a\n- b\n---\n", "must be a mapping", None),
        (b'---\ntitle: "caf\xe9"\n---\n', "not UTF-8", 2),
        (b"\x00\x01\x02binary", "binary file", None),
    ],
)
def test_unusable_files_say_why_and_where(raw, reason, line):
    with pytest.raises(ArticleError) as error:
        parse_article_text(raw, "bad.md")
    assert reason in error.value.reason
    if line is not None:
        assert error.value.line == line


# --- text that changes what a reader sees --------------------------------------------------

BIDI_CONTROLS = frozenset(chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def is_unsafe(char: str, multiline: bool) -> bool:
    """The rule, stated independently of recs.articles: Unicode's control characters
    (category Cc: C0, DEL, C1) and the bidirectional embeddings, overrides and isolates;
    an excerpt keeps tabs and line breaks."""
    if multiline and char in "\t\n\r":
        return False
    return unicodedata.category(char) == "Cc" or char in BIDI_CONTROLS


def with_text(field: str, text: str) -> dict:
    """A valid article whose `field` (a dotted path for nested fields) holds `text`."""
    data = {"title": "T", "excerpt": "E", "webUrl": "https://a.example/x"}
    values = {
        "provider.name": {"provider": {"name": text, "domain": "a.example"}},
        "provider.domain": {"provider": {"name": "A", "domain": text}},
        "topics": {"topics": ["ok", text]},
        "images.url": {"images": [{"url": "https://a.example/i" + text}]},
        "images.caption": {"images": [{"url": "https://a.example/i.png", "caption": text}]},
        "originalUrl": {"originalUrl": "https://a.example/o" + text},
        "webUrl": {"webUrl": "https://a.example/w" + text},
    }
    data.update(values.get(field, {field: f"a{text}b"}))
    return data


TEXT_FIELDS = [
    *articles.LINE_FIELDS,
    "excerpt",
    "provider.name",
    "provider.domain",
    "topics",
    "images.url",
    "images.caption",
]


@settings(max_examples=300, deadline=None)
@given(
    char=st.one_of(
        st.characters(codec="utf-8"),
        st.characters(categories=["Cc"]),
        st.sampled_from(sorted(BIDI_CONTROLS)),
        st.sampled_from("\u200e\u200f\u061c\u2028\u2029\u00a0\ufeff"),  # marks, separators
    ),
    field=st.sampled_from(TEXT_FIELDS),
)
def test_control_and_bidi_characters_are_refused_in_every_text_field(char, field):
    data = with_text(field, char)
    if field == "publishedDateTime":
        data["publishedDateTime"] = "2022-01-01T00:00:00Z" + char
    try:
        articles.article_from_data(data, "x.md")
    except ArticleError as error:
        if is_unsafe(char, multiline=field == "excerpt"):
            assert f"U+{ord(char):04X}" in error.reason, error.reason
            assert "control" in error.reason and "remove it" in error.reason
        else:  # refused for another reason (not a URL, not a date), never for this rule
            assert "control" not in error.reason, error.reason
    else:
        assert not is_unsafe(char, multiline=field == "excerpt"), (field, hex(ord(char)))


def test_unsafe_text_is_refused_in_files_and_jsonl_lines_with_path_and_line(tmp_path: Path):
    (tmp_path / "esc.md").write_bytes(
        b'---\ntitle: "Red \\e[31m alert"\nexcerpt: "E"\nwebUrl: "https://a.example/1"\n---\n'
    )
    (tmp_path / "bidi.md").write_text(
        '---\ntitle: "T"\nexcerpt: "invoice\u202egnp.exe"\nwebUrl: "https://a.example/2"\n---\n',
        encoding="utf-8",
    )
    (tmp_path / "image.md").write_bytes(
        b'---\ntitle: "T"\nexcerpt: "E"\nwebUrl: "https://a.example/3"\n'
        b'images:\n  - url: "javascript:alert(1)"\n---\n'
    )
    good = {"title": "G", "excerpt": "line one\n\tline two", "webUrl": "https://a.example/4"}
    (tmp_path / "lines.jsonl").write_text(
        "\n".join(
            json.dumps(row)
            for row in (
                good,
                {**good, "webUrl": "https://a.example/5", "title": "bell\x07"},
                {**good, "webUrl": "https://a.example/6", "provider": {"name": "\u2066x"}},
                {**good, "webUrl": "https://a.example/7", "images": [{"url": "data:,x"}]},
            )
        ),
        encoding="utf-8",
    )
    corpus = read_corpus(tmp_path)
    assert [a.url for a in corpus.articles] == ["https://a.example/4"]
    assert sorted(str(p) for p in corpus.problems) == [
        "bidi.md:3: excerpt: holds the bidirectional control U+202E at character 8; remove it "
        "(control characters and bidirectional overrides are not allowed)",
        "esc.md:2: title: holds the control character U+001B at character 5; remove it "
        "(control characters and bidirectional overrides are not allowed)",
        "image.md:5: images[0].url: 'javascript:alert(1)' is not an absolute http:// or "
        "https:// URL",
        "lines.jsonl:2: title: holds the control character U+0007 at character 5; remove it "
        "(control characters and bidirectional overrides are not allowed)",
        "lines.jsonl:3: provider.name: holds the bidirectional control U+2066 at character 1; "
        "remove it (control characters and bidirectional overrides are not allowed)",
        "lines.jsonl:4: images[0].url: 'data:,x' is not an absolute http:// or https:// URL",
    ]


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:image/png;base64,iVBORw0KGgo=",
        "file:///etc/passwd",
        "ftp://a.example/i.png",
        "/images/relative.png",
        "//cdn.example/i.png",
        "https://",
        "http://[::1",
    ],
)
def test_image_urls_must_be_http_or_https(url):
    data = {**with_text("title", ""), "images": [{"url": "https://a.example/ok.png"}, {"url": url}]}
    with pytest.raises(ArticleError, match=r"images\[1\]\.url: .* is not an absolute http"):
        articles.article_from_data(data, "x.md")
    for fine in ("https://a.example/i.png", "HTTP://a.example/i.png?w=2", " http://a.example/ "):
        data["images"][1]["url"] = fine
        assert articles.article_from_data(data, "x.md").fields["images"][1]["url"] == fine


def test_a_text_hash_given_by_a_reader_never_replaces_one_computed():
    article = Article(url="https://a.example/x", title="T", excerpt="E", fields={}, source="x.md")
    assert article.with_text_hash("from a row").text_hash == "from a row"
    computed = Article(url="https://a.example/y", title="T", excerpt="E", fields={}, source="y.md")
    expected = computed.text_hash
    assert computed.with_text_hash("stale").text_hash == expected == text_hash(embed_text("T", "E"))
