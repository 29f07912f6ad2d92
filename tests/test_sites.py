"""Opening a site: the generator detected by its config file, recs.toml, base URLs, errors."""

from __future__ import annotations

import shutil

import pytest

from recs.corpus import read_corpus
from recs.errors import ConfigError
from recs.options import ReadOptions
from recs.sites import explain_fields, open_site
from tests.conftest import EXAMPLES as CONTENT

EXAMPLES = CONTENT.parent


@pytest.mark.parametrize(
    ("name", "generator", "content", "base", "data_file", "articles"),
    [
        ("hugo-blog", "hugo", "content", "https://blog.example.org/", "data/related.json", 12),
        ("jekyll-blog", "jekyll", "_posts", "https://platformnine.example.com/blog/",
         "_data/related.json", 8),
        ("eleventy-blog", "eleventy", "src", "https://slowmornings.example.net/",
         "src/_data/related.json", 10),
    ],
)  # fmt: skip
def test_example_sites_are_detected(name, generator, content, base, data_file, articles):
    root = EXAMPLES / name
    site = open_site(root)
    assert (site.generator, site.content_dir, site.data_file) == (
        generator, root / content, root / data_file,
    )  # fmt: skip
    assert site.read.urls is not None and site.read.urls.base_url == base
    corpus = read_corpus(site.content_dir, site.read)
    assert corpus.problems == [] and len(corpus.articles) == articles
    assert all(a.url.startswith(base.rstrip("/")) for a in corpus.articles)


def test_a_plain_folder_reads_as_before_and_says_nothing():
    site = open_site(CONTENT)
    assert site.generator == "plain" and site.read == ReadOptions() and site.describe() is None


def test_the_content_folder_of_a_site_is_read_as_that_site():
    site = open_site(EXAMPLES / "hugo-blog" / "content")
    assert site.generator == "hugo" and site.content_dir == EXAMPLES / "hugo-blog" / "content"
    assert site.read.urls is not None and site.read.urls.permalinks


def test_recs_toml_maps_fields_and_overrides_the_generator(tmp_path):
    root = tmp_path / "site"
    shutil.copytree(EXAMPLES / "hugo-blog", root)
    (root / "recs.toml").write_text(
        'base_url = "https://other.example/"\n'
        '[fields]\nexcerpt = ["summary"]\nexcerpt_from_body = false\n'
        '[permalinks]\nposts = "/p/:slug/"\n',
        encoding="utf-8",
    )
    site = open_site(root)
    assert site.read.fields.excerpt == ("summary",)
    assert site.read.urls is not None
    assert site.read.urls.base_url == "https://other.example/"
    assert site.read.urls.permalinks == (("posts", "/p/:slug/"),)
    corpus = read_corpus(site.content_dir, site.read)
    skipped = {p.path for p in corpus.problems}
    assert "posts/why-does-bread-rise.md" in skipped  # no summary, and no body excerpts
    assert "https://other.example/p/baking-bread-at-high-altitude" in {
        a.url for a in corpus.articles
    }
    assert open_site(root, base_url="https://env.example").read.urls.base_url == (
        "https://env.example/"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1\n", "unknown key 'colour'"),
        ("[fields]\nsummary = 1\n", "unknown key [fields] summary"),
        ("[fields]\ntitle = 1\n", "[fields] title must be a key or a list of keys"),
        ('generator = "wordpress"\n', "generator 'wordpress' is not one of"),
        ('base_url = "blog.example"\n', "is not an absolute http(s) URL"),
        ("title = \n", "invalid TOML"),
    ],
)
def test_a_bad_recs_toml_is_one_line_naming_the_file(tmp_path, text, message):
    (tmp_path / "recs.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        open_site(tmp_path)
    assert message in str(error.value) and "recs.toml" in str(error.value)
    assert "\n" not in str(error.value)


def test_a_site_without_a_base_url_says_how_to_give_one(tmp_path):
    (tmp_path / "eleventy.config.js").write_text("export default {};\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"has no base URL: set base_url in recs.toml"):
        open_site(tmp_path)
    assert open_site(tmp_path, base_url="https://e.example/").generator == "eleventy"


def test_astro_is_detected_with_its_site_and_base(tmp_path):
    (tmp_path / "astro.config.mjs").write_text(
        'export default defineConfig({\n  site: "https://astro.example",\n  base: "/docs",\n});\n',
        encoding="utf-8",
    )
    (tmp_path / "src" / "content" / "blog").mkdir(parents=True)
    (tmp_path / "src" / "content" / "blog" / "first-post.md").write_text(
        "---\ntitle: First\ndescription: D\n---\n", encoding="utf-8"
    )
    site = open_site(tmp_path)
    assert site.generator == "astro" and site.data_file == tmp_path / "src/data/related.json"
    [article] = read_corpus(site.content_dir, site.read).articles
    assert article.url == "https://astro.example/docs/blog/first-post"


def test_explain_fields_names_the_rule_of_each_field():
    root = EXAMPLES / "jekyll-blog"
    lines = explain_fields(
        open_site(root), root / "_posts" / "2024-03-05-packing-for-a-long-train-journey.md"
    )
    text = "\n".join(lines)
    assert lines[0].endswith("YAML front matter, Jekyll rules")
    assert 'excerpt  "Luggage racks fill up fast.' in text and "the body's first paragraph" in text
    assert 'date     "2024-03-05"  <- the file name\'s date' in text
    assert "draft    (none)" in text
    assert "https://platformnine.example.com/blog/2024/03/05/packing-list.html" in text
    with pytest.raises(ConfigError, match="is not inside the content folder"):
        explain_fields(open_site(root), root / "index.md")
