"""Page URLs from generator rules (each expected URL checked against the generator's own
build when written: Hugo 0.111, Jekyll 4.3, Eleventy 3.1; the site tests build them)."""

from __future__ import annotations

import pytest

from recs.frontmatter import ArticleError
from recs.options import UrlRules
from recs.permalinks import hugo_urlize, page_url, site_path, slugify

HUGO = UrlRules("hugo", "https://blog.example.org/", (("posts", "/:year/:month/:slug/"),))
JEKYLL = UrlRules("jekyll", "https://trains.example.com/blog/")
ELEVENTY = UrlRules(
    "eleventy", "https://site.example.net/", (("posts", "/posts/{{ page.fileSlug }}/"),)
)
ASTRO = UrlRules("astro", "https://astro.example/")


@pytest.mark.parametrize(
    ("rules", "source", "data", "date", "title", "url"),
    [
        (HUGO, "posts/a.md", {}, "2024-03-05T10:00:00Z", "Why Does Bread Rise?",
         "https://blog.example.org/2024/03/why-does-bread-rise/"),
        (HUGO, "posts/a.md", {"slug": "mine"}, "2024-03-05", "T", "https://blog.example.org/2024/03/mine/"),
        (HUGO, "notes/My Note.md", {}, None, "T", "https://blog.example.org/notes/my-note/"),
        (HUGO, "notes/bundle/index.md", {}, None, "T", "https://blog.example.org/notes/bundle/"),
        (HUGO, "notes/b.md", {"slug": "s"}, None, "T", "https://blog.example.org/notes/s/"),
        (HUGO, "notes/b.md", {"url": "/custom/"}, None, "T", "https://blog.example.org/custom/"),
        (HUGO, "about.md", {}, None, "T", "https://blog.example.org/about/"),
        (UrlRules("hugo", "https://x.example/", ugly_urls=True), "notes/b.md", {}, None, "T",
         "https://x.example/notes/b.html"),
        (UrlRules("hugo", "https://x.example/", lower_paths=False), "Notes/B.md", {}, None, "T",
         "https://x.example/Notes/B/"),
        (JEKYLL, "2024-01-09-night-trains.md", {"categories": ["Travel", "rail"]}, None, "T",
         "https://trains.example.com/blog/travel/rail/2024/01/09/night-trains.html"),
        (JEKYLL, "2024-01-09-night-trains.md", {"category": "food"}, "2024-02-01", "T",
         "https://trains.example.com/blog/food/2024/02/01/night-trains.html"),
        (JEKYLL, "2024-01-09-a.md", {"slug": "b", "permalink": "/x/:title/"}, None, "T",
         "https://trains.example.com/blog/x/b/"),
        (UrlRules("jekyll", "https://j.example/", (("*", "pretty"),)), "2024-01-09-a.md", {},
         None, "T", "https://j.example/2024/01/09/a/"),
        (ELEVENTY, "posts/2024-01-06-pour-over.md", {}, "2024-01-06", "T",
         "https://site.example.net/posts/pour-over/"),
        (ELEVENTY, "posts/x.md", {"permalink": "/g/{{ title | slugify }}/"}, None, "Café Time!",
         "https://site.example.net/g/cafe-time/"),
        (ELEVENTY, "pages/about.md", {}, None, "T", "https://site.example.net/pages/about/"),
        (ELEVENTY, "index.md", {}, None, "T", "https://site.example.net/"),
        (ASTRO, "blog/My Post.md", {}, None, "T", "https://astro.example/blog/my-post/"),
        (ASTRO, "blog/x.md", {"slug": "y"}, None, "T", "https://astro.example/blog/y/"),
    ],
)  # fmt: skip
def test_page_urls(rules, source, data, date, title, url):
    assert page_url(rules, source, data, date, title)[0] == url


@pytest.mark.parametrize(
    ("rules", "source", "data", "reason"),
    [
        (JEKYLL, "notes.md", {}, "not a Jekyll post name"),
        (ELEVENTY, "x.md", {"permalink": False}, "permalink: false"),
        (ELEVENTY, "x.md", {"permalink": "/{{ page.date | year }}/"}, "cannot evaluate"),
        (HUGO, "posts/x.md", {}, "unknown permalink token"),
    ],
)
def test_what_cannot_be_made_is_one_clear_reason(rules, source, data, reason):
    rules_ = rules if rules is not HUGO else UrlRules("hugo", "https://b/", (("posts", "/:nope/"),))
    with pytest.raises(ArticleError, match=reason):
        page_url(rules_, source, data, None, "T")


def test_site_paths_as_templates_know_them():
    hugo = UrlRules("hugo", "https://x.example/docs/")
    assert site_path(hugo, "https://x.example/docs/a/b/") == "/docs/a/b/"  # .RelPermalink
    assert site_path(JEKYLL, "https://trains.example.com/blog/a.html") == "/a.html"  # page.url
    assert site_path(JEKYLL, "https://elsewhere.example/a") == "https://elsewhere.example/a"


def test_slugs():
    assert hugo_urlize("Why Does Bread Rise? The Science") == "Why-Does-Bread-Rise-The-Science"
    assert slugify("Café: Crème Brûlée!") == "cafe-creme-brulee"
