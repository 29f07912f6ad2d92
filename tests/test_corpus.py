"""recs/corpus.py: reading a content folder: which files, in what order, each bad file one
problem with its path and line, one article per URL; the bytes of one file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from recs import corpus
from recs.corpus import parse_article_text, read_corpus
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
