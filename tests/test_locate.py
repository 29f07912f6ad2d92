"""Naming a stored article by URL, page path or file path (`recs related`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recs.articles import article_from_data
from recs.errors import ArticleNotFound, InvalidInput
from recs.locate import article_url


def article(source: str, web: str):
    return article_from_data({"title": "T", "excerpt": "E", "webUrl": web}, source)


ARTICLES = [
    article("posts/a.md", "https://blog.example/2024/01/a/"),
    article("notes/a.md", "https://blog.example/notes/a/"),
    article("b.md", "https://blog.example/b/"),
]


def test_a_url_is_given_back():
    assert article_url(ARTICLES, "http://BLOG.example/b") == "http://BLOG.example/b"


def test_a_file_is_found_by_its_source(tmp_path, monkeypatch):
    (tmp_path / "content" / "posts").mkdir(parents=True)
    (tmp_path / "content" / "posts" / "a.md").write_text("x")
    monkeypatch.chdir(tmp_path)
    assert article_url(ARTICLES, "content/posts/a.md") == "https://blog.example/2024/01/a"
    assert article_url(ARTICLES, str(Path("content/posts/a.md").resolve())).endswith("/2024/01/a")
    (tmp_path / "other.md").write_text("x")
    with pytest.raises(ArticleNotFound, match=r"no stored article was read from other\.md"):
        article_url(ARTICLES, "other.md")


def test_a_page_path_is_found_by_its_url():
    assert article_url(ARTICLES, "/notes/a/") == "https://blog.example/notes/a"
    assert article_url(ARTICLES, "/notes/a") == "https://blog.example/notes/a"
    with pytest.raises(ArticleNotFound, match="has the path /nope/"):
        article_url(ARTICLES, "/nope/")


def test_anything_else_is_refused():
    with pytest.raises(InvalidInput, match="neither a URL"):
        article_url(ARTICLES, "plain words")
