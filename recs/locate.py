"""Which stored article a person means: by URL, by page path, or by the path of its file.

`recs related` takes any of the three. A URL (anything with `://`) is the article's URL in
any form recs.urls makes canonical. A file path that exists names the article read from
that file: the stored article whose `source` (its path under the content folder it was
built from) ends the file's absolute path. A path starting with `/` that is no file is a
page's path on its site (`/2024/01/my-post/`): the article whose URL has that path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from recs.articles import Article
from recs.errors import ArticleNotFound, InvalidInput, one_line


def _unique(found: list[Article], what: str) -> str:
    if not found:
        raise ArticleNotFound(f"no stored article {what}: run `recs build` on its site first")
    urls = sorted({a.url for a in found})
    if len(urls) > 1:
        raise InvalidInput(
            f"{len(urls)} stored articles {what} ({urls[0]}, {urls[1]}); give the URL"
        )
    return urls[0]


def article_url(articles: Sequence[Article], text: str) -> str:
    """The URL to look up for `text` (a URL is given back as it is)."""
    if "://" in text:
        return text
    path = Path(text)
    if path.is_file():
        absolute = path.resolve().as_posix()
        found = [a for a in articles if absolute.endswith("/" + a.source)]
        longest = max((len(a.source) for a in found), default=0)
        chosen = [a for a in found if len(a.source) == longest]
        return _unique(chosen, f"was read from {one_line(text)}")
    if text.startswith("/"):
        wanted = text.rstrip("/") or "/"

        def page_path(article: Article) -> str:
            web = article.fields.get("webUrl")
            url = web if isinstance(web, str) else article.url
            try:
                return urlsplit(url).path.rstrip("/") or "/"
            except ValueError:
                return ""

        return _unique([a for a in articles if page_path(a) == wanted], f"has the path {text}")
    raise InvalidInput(
        f"{one_line(text)} is neither a URL (https://...), an article file nor a page path (/...)"
    )
