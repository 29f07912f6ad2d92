"""Reading article files: the seed, .jsonl, and every way a file can be unusable."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from recs import articles
from recs.articles import (
    ENTRY_FIELDS,
    ArticleError,
    embed_text,
    parse_article_text,
    read_corpus,
    read_front_matter,
)
from tests.conftest import SEED, article_text


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


def test_bom_and_crlf_are_accepted():
    raw = "\ufeff" + article_text("T", "E", "https://a.com/x").replace("\n", "\r\n")
    article = parse_article_text(raw.encode("utf-8"), "x.md")
    assert article.title == "T"


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


def test_alias_bomb_is_refused_without_expanding():
    bomb = [
        "---",
        'title: "t"',
        'excerpt: "e"',
        'webUrl: "https://a.com/x"',
        "a: &a [x, x, x, x, x, x, x, x, x, x]",
    ]
    for level in "bcdefghij":
        previous = chr(ord(level) - 1)
        bomb.append(f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]")
    bomb.append("---")
    with pytest.raises(ArticleError, match="more than"):
        parse_article_text("\n".join(bomb).encode(), "bomb.md")


@pytest.mark.parametrize("depth", [30, 5000])
def test_deep_nesting_is_refused(depth):
    deep = (
        "---\ntitle: t\nexcerpt: e\nwebUrl: https://a.com/x\nd: "
        + "[" * depth
        + "]" * depth
        + "\n---\n"
    )
    with pytest.raises(ArticleError, match="nest"):
        parse_article_text(deep.encode(), "deep.md")


def test_corpus_reads_files_and_jsonl_and_reports_problems(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.md").write_text(article_text("One", "First", "https://a.com/1"))
    (tmp_path / "two.txt").write_text(article_text("Two", "Second", "https://a.com/2"))
    (tmp_path / "bad.md").write_text("---\ntitle: [x]\nexcerpt: e\n---\n")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden.md").write_text("nonsense")
    lines = [
        {"title": "Three", "excerpt": "Third", "webUrl": "https://a.com/3"},
        {"title": 5, "excerpt": "bad"},
        {"title": "Four", "excerpt": "Fourth", "webUrl": "https://a.com/4"},
    ]
    (tmp_path / "more.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken\n")
    corpus = read_corpus(tmp_path)
    assert [a.title for a in corpus.articles] == ["One", "Two", "Three", "Four"]
    problems = sorted(str(p) for p in corpus.problems)
    assert problems[0].startswith("bad.md:2: title")
    assert any(p.startswith("more.jsonl:2: title") for p in problems)
    assert any(p.startswith("more.jsonl:4: invalid JSON") for p in problems)
    assert len(problems) == 3


def test_duplicate_urls_first_source_wins_and_is_reported(tmp_path: Path):
    (tmp_path / "b.md").write_text(article_text("B", "b", "https://a.com/same"))
    (tmp_path / "a.md").write_text(article_text("A", "a", "http://A.com/same/"))
    corpus = read_corpus(tmp_path)
    assert [a.title for a in corpus.articles] == ["A"]
    assert "same URL https://a.com/same as a.md" in str(corpus.problems[0])


def test_oversized_file_is_skipped(tmp_path: Path):
    (tmp_path / "big.md").write_text(article_text("Big", "x" * 2_000_000, "https://a.com/big"))
    (tmp_path / "ok.md").write_text(article_text("Ok", "fine", "https://a.com/ok"))
    corpus = read_corpus(tmp_path)
    assert [a.title for a in corpus.articles] == ["Ok"]
    assert "at most 1,000,000" in corpus.problems[0].reason


def test_symlink_loop_is_reported_not_followed_forever(tmp_path: Path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.md").write_text(article_text("A", "a", "https://a.com/a"))
    os.symlink(tmp_path / "d", tmp_path / "d" / "loop")
    corpus = read_corpus(tmp_path)
    assert [a.title for a in corpus.articles] == ["A"]
    assert any("symlink loop" in p.reason for p in corpus.problems)


def test_unreadable_file_is_reported(tmp_path: Path, monkeypatch):
    locked = tmp_path / "locked.md"
    locked.write_text(article_text("A", "a", "https://a.com/a"))
    (tmp_path / "ok.md").write_text(article_text("B", "b", "https://a.com/b"))
    real_open = open

    def open_(path, *args, **kwargs):
        # chmod 000 does not stop root, who runs CI; fail the open the way the OS would.
        if Path(path).name == "locked.md":
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(articles, "open", open_, raising=False)
    corpus = read_corpus(tmp_path)
    assert [a.title for a in corpus.articles] == ["B"]
    assert str(corpus.problems[0]) == "locked.md: cannot read: Permission denied"
