"""recs/corpus.py: reading a content folder: which files, in what order, each bad file one
problem with its path and line, one article per URL; the bytes of one file."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest

from recs import corpus
from recs.corpus import (
    dedupe,
    explain_article_text,
    front_matter_kind,
    parse_article_text,
    parse_jsonl,
    read_corpus,
    read_front_matter,
)
from recs.errors import InvalidInput
from recs.options import ReadOptions
from tests.conftest import article_text


def test_bom_and_crlf_are_accepted():
    raw = "\ufeff" + article_text("T", "E", "https://a.com/x").replace("\n", "\r\n")
    article = parse_article_text(raw.encode("utf-8"), "x.md")
    assert article.title == "T"


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

    monkeypatch.setattr(corpus, "open", open_, raising=False)
    found = read_corpus(tmp_path)
    assert [a.title for a in found.articles] == ["B"]
    assert str(found.problems[0]) == "locked.md: cannot read: Permission denied"


def test_a_missing_content_folder_is_one_clear_error(tmp_path: Path):
    with pytest.raises(InvalidInput, match="does not exist or is not a folder"):
        read_corpus(tmp_path / "nowhere")


def test_skipped_folders_hidden_files_section_pages_and_other_suffixes_are_not_read(
    tmp_path: Path,
):
    for name in ("posts/a.md", "drafts/b.md", "posts/_index.md", "posts/.c.md", "posts/d.MD"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        url = "https://a.com/" + name.replace("/", "-").replace(".", "-")
        (tmp_path / name).write_text(article_text(name, "E", url))
    (tmp_path / "posts" / "e.png").write_bytes(b"\x89PNG")
    found = read_corpus(tmp_path, ReadOptions(skip=("drafts",)))
    assert sorted(a.source for a in found.articles) == ["posts/a.md", "posts/d.MD"]
    assert found.problems == []


def test_known_files_are_not_parsed_again_and_say_so(tmp_path: Path, monkeypatch):
    (tmp_path / "a.md").write_text(article_text("A", "a", "https://a.com/a"))
    (tmp_path / "b.md").write_text(article_text("B", "b", "https://a.com/b"))
    first = read_corpus(tmp_path)
    known = {
        a.source: (first.raw_hashes[a.source], a, first.stats.get(a.source)) for a in first.articles
    }
    (tmp_path / "b.md").write_text(article_text("B2", "b", "https://a.com/b"))
    again = read_corpus(tmp_path, known=known)
    assert again.reused == {"a.md"}
    assert again.articles[0] is first.articles[0] and again.articles[1].title == "B2"
    assert again.raw_hashes["b.md"] != first.raw_hashes["b.md"]


def test_a_file_whose_stat_is_trusted_is_not_even_opened(tmp_path: Path, monkeypatch):
    (tmp_path / "a.md").write_text(article_text("A", "a", "https://a.com/a"))
    monkeypatch.setattr(corpus, "SETTLED_NS", 0)  # as if the file had been written long ago
    first = read_corpus(tmp_path)
    assert set(first.stats) == {"a.md"}
    known = {"a.md": (first.raw_hashes["a.md"], first.articles[0], first.stats["a.md"])}

    def no_open(*args, **kwargs):
        raise AssertionError("a file whose stat vouches for its bytes was opened")

    monkeypatch.setattr(corpus, "open", no_open, raising=False)
    again = read_corpus(tmp_path, known=known)
    assert again.articles == first.articles and again.reused == {"a.md"}


def test_the_front_matter_as_written_keeps_the_related_block_and_says_its_kind():
    raw = article_text("T", "E", "https://a.com/x", extra="related:\n  - title: R\n").encode()
    assert read_front_matter(raw)["related"] == [{"title": "R"}]
    assert "related" not in parse_article_text(raw, "x.md").fields
    assert front_matter_kind(raw) == "yaml"
    assert front_matter_kind(b'+++\ntitle = "T"\n+++\n') == "toml"
    assert front_matter_kind(b'\xef\xbb\xbf{"title": "T"}\n') == "json"


def test_explaining_a_file_gives_its_article_how_each_field_was_picked_and_its_kind():
    raw = b'---\ntitle: "T"\ndescription: "From the description"\nwebUrl: "https://a.com/x"\n---\n'
    article, picks, kind = explain_article_text(raw, "x.md")
    assert article == parse_article_text(raw, "x.md") and kind == "yaml"
    assert article.excerpt == "From the description"
    assert any("description" in str(pick) for pick in picks)


def test_a_jsonl_stream_is_hashed_as_it_is_read():
    lines = [{"title": "A", "excerpt": "a", "webUrl": "https://a.com/a"}, {"title": 3}]
    raw = ("\n".join(json.dumps(line) for line in lines) + "\n").encode()
    digest = hashlib.sha256()
    articles, problems = parse_jsonl(io.BytesIO(raw), "x.jsonl", digest=digest)
    assert [(a.url, a.line) for a in articles] == [("https://a.com/a", 1)]
    assert [(p.path, p.line) for p in problems] == [("x.jsonl", 2)]
    assert digest.hexdigest() == hashlib.sha256(raw).hexdigest()
    assert parse_jsonl(raw, "x.jsonl")[0] == articles  # bytes or a stream alike


def test_dedupe_keeps_one_article_per_url_sorted_by_url():
    a = parse_article_text(article_text("A", "a", "https://a.com/2").encode(), "b.md")
    b = parse_article_text(article_text("B", "b", "https://a.com/2").encode(), "a.md")
    c = parse_article_text(article_text("C", "c", "https://a.com/1").encode(), "c.md")
    kept, problems = dedupe([a, b, c])
    assert kept == [c, b]  # b's source sorts first
    assert [str(p) for p in problems] == [
        "b.md: same URL https://a.com/2 as a.md, which is used instead"
    ]
    assert dedupe([c, b]) == ([c, b], [])
