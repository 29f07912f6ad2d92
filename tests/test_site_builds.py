"""Real site builds: each example site, unmodified, set up with `recs init`, its related
lists built and exported as a user would, then built by its generator; every article page
must show its related list, linking to pages that exist in the output.

Hugo (the Debian package) and Eleventy (npm, installed by `make test` with `npm ci` in
examples/eleventy-blog) run for real. Jekyll does not: its data file is checked against
the URLs Jekyll gives its posts, and the include is rendered by liquidjs (the Liquid
engine Eleventy installs) with Jekyll's `relative_url` filter.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from recs import store
from recs.permalinks import site_path
from recs.sites import open_site
from tests.conftest import BIN

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ELEVENTY = EXAMPLES / "eleventy-blog"


def tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:  # never skip: `make test` installs it
        pytest.fail(f"{name} is not installed: {hint}")
    return path


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env.update(RECS_MODEL="hashing", RECS_STORE=str(tmp_path / "store"))
    return env


def recs(*args: str, env: dict[str, str]) -> str:
    return run(str(BIN / "recs"), *args, env=env)


def set_up(site: Path, layout: str, env: dict[str, str]) -> str:
    """`recs init`, then the one line it asks for, added where a user would put it."""
    out = recs("init", str(site), env=env)
    line = re.search(r"where the list should appear:\n\s+(.+)\n", out)
    assert line, out
    path = site / layout
    text = path.read_text(encoding="utf-8")
    assert "</article>" in text
    path.write_text(text.replace("</article>", "</article>\n" + line.group(1), 1), "utf-8")
    return out


def related_links(page: str) -> list[tuple[str, str]]:
    """(href, title) of each item of a page's related list."""
    aside = re.search(r'<aside class="related">(.*?)</aside>', page, re.S)
    assert aside, "the page has no related list"
    return [
        (html.unescape(href), html.unescape(title))
        for href, title in re.findall(r'<a href="([^"]*)">([^<]*)</a>', aside.group(1))
    ]


def check_every_page(out_dir: Path, site: Path, env: dict[str, str], html_name: str) -> int:
    """Every article's page lists its stored related articles, in rank order, each a link
    to a page that exists in `out_dir`. Returns the number of pages checked."""
    snapshot = store.load(Path(env["RECS_STORE"]))
    rules = open_site(site).read.urls
    assert rules is not None
    for row, article in enumerate(snapshot.articles):
        path = site_path(rules, article.fields["webUrl"])
        page = out_dir / path.lstrip("/") / html_name if path.endswith("/") else out_dir / path
        links = related_links(page.read_text(encoding="utf-8"))
        expected = [snapshot.articles[i.row].title for i in snapshot.related[row]]
        assert [title for _, title in links] == expected, path
        assert len(links) == 5
        for href, _ in links:
            target = out_dir / href.lstrip("/")
            assert (target / html_name if href.endswith("/") else target).is_file(), href
    return len(snapshot.articles)


# --- Hugo -------------------------------------------------------------------------------


def hugo_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    shutil.copytree(EXAMPLES / "hugo-blog", site, ignore=shutil.ignore_patterns("public"))
    return site


def test_hugo_site_with_toml_front_matter_through_the_data_file(tmp_path):
    hugo = tool("hugo", "run `make system-deps` (Debian package hugo)")
    site, env = hugo_site(tmp_path), env_for(tmp_path)
    before = {p: p.read_bytes() for p in (site / "content").rglob("*.md")}
    set_up(site, "layouts/_default/single.html", env)
    first, summary = recs("build", str(site), "-q", env=env).splitlines()
    assert first.startswith(f"Hugo site {site} (hugo.toml, recs.toml): reading {site}/content")
    assert "URLs under https://blog.example.org/" in first
    assert summary.startswith("12 articles: 12 embedded, 0 reused, 0 removed, 0 skipped")
    recs("export", "--site", str(site), env=env)
    run(hugo, "--source", str(site), "--destination", str(tmp_path / "public"), "--quiet")
    assert check_every_page(tmp_path / "public", site, env, "index.html") == 12
    assert {p: p.read_bytes() for p in (site / "content").rglob("*.md")} == before


def test_hugo_site_through_toml_front_matter_written_by_regenerate(tmp_path):
    hugo = tool("hugo", "run `make system-deps` (Debian package hugo)")
    site, env = hugo_site(tmp_path), env_for(tmp_path)
    set_up(site, "layouts/_default/single.html", env)
    recs("regenerate", str(site), "-q", env=env)
    assert "0 changed, 12 unchanged" in recs("regenerate", str(site), "-q", env=env)
    text = (site / "content" / "posts" / "what-is-a-tangzhong.md").read_text(encoding="utf-8")
    assert text.count("\n[[related]]\n") == 5
    run(hugo, "--source", str(site), "--destination", str(tmp_path / "public"), "--quiet")
    assert not (site / "data" / "related.json").exists()  # the lists came from the files
    assert check_every_page(tmp_path / "public", site, env, "index.html") == 12


# --- Eleventy ---------------------------------------------------------------------------


def eleventy_site(tmp_path: Path) -> Path:
    """A copy of the example site, using the node_modules `npm ci` installed beside it."""
    modules = ELEVENTY / "node_modules"
    if not (modules / "@11ty" / "eleventy").is_dir():
        pytest.fail("Eleventy is not installed: run `make test` (npm ci in examples/eleventy-blog)")
    site = tmp_path / "site"
    shutil.copytree(ELEVENTY, site, ignore=shutil.ignore_patterns("node_modules", "_site"))
    (site / "node_modules").symlink_to(modules)
    return site


def test_eleventy_site_built_for_real(tmp_path):
    node = tool("node", "install Node.js 20 (Debian package nodejs)")
    site, env = eleventy_site(tmp_path), env_for(tmp_path)
    set_up(site, "src/_includes/layouts/post.njk", env)
    first = recs("build", str(site), "-q", env=env).splitlines()[0]
    assert first.startswith(f"Eleventy site {site} (eleventy.config.js, recs.toml)")
    recs("export", "--site", str(site), env=env)
    assert (site / "src" / "_data" / "related.json").is_file()
    cli = site / "node_modules" / "@11ty" / "eleventy" / "cmd.cjs"
    run(node, str(cli), "--quiet", cwd=site)
    assert check_every_page(site / "_site", site, env, "index.html") == 10


# --- Jekyll -----------------------------------------------------------------------------

# Each post's page.url as Jekyll gives it: the default `date` permalink style
# (/:categories/:year/:month/:day/:title.html), `slug` for the title, and a post's own
# `permalink`. (Checked against `jekyll build` 4.3 when this test was written.)
JEKYLL_URLS = {
    "2024-01-09-night-trains-are-back.md": "/travel/rail/2024/01/09/night-trains-are-back.html",
    "2024-01-23-interrailing-on-a-budget.md": "/travel/2024/01/23/interrailing-on-a-budget.html",
    "2024-02-06-reading-a-railway-timetable.md": "/2024/02/06/reading-a-railway-timetable.html",
    "2024-02-20-best-seats-on-scenic-railways.md": (
        "/travel/rail/2024/02/20/best-seats-on-scenic-railways.html"
    ),
    "2024-03-05-packing-for-a-long-train-journey.md": "/2024/03/05/packing-list.html",
    "2024-01-16-sourdough-on-the-road.md": "/food/2024/01/16/sourdough-on-the-road.html",
    "2024-02-13-station-cafes-worth-a-detour.md": (
        "/food/travel/2024/02/13/station-cafes-worth-a-detour.html"
    ),
    "2024-03-12-cooking-in-a-hostel-kitchen.md": "/guides/hostel-cooking/",
}

RENDER_LIQUID = """
const { Liquid } = require(process.argv[2]);
const fs = require("fs");
const [template, data, baseurl] = [3, 4, 5].map((i) => process.argv[i]);
const engine = new Liquid();
engine.registerFilter("relative_url", (path) => baseurl + path);
const site = { data: { related: JSON.parse(fs.readFileSync(data, "utf8")) }, baseurl };
const pages = JSON.parse(fs.readFileSync(0, "utf8"));
const out = {};
for (const url of pages) {
  out[url] = engine.parseAndRenderSync(fs.readFileSync(template, "utf8"), { site, page: { url } });
}
process.stdout.write(JSON.stringify(out));
"""


def test_jekyll_data_file_and_include(tmp_path):
    node = tool("node", "install Node.js 20 (Debian package nodejs)")
    liquid = ELEVENTY / "node_modules" / "liquidjs"
    if not liquid.is_dir():
        pytest.fail("liquidjs is not installed: run `make test` (npm ci in examples/eleventy-blog)")
    site, env = tmp_path / "site", env_for(tmp_path)
    shutil.copytree(EXAMPLES / "jekyll-blog", site)
    out = recs("init", str(site), env=env)
    assert "{% include recs-related.html %}" in out and "exclude: [recs.toml, embeddings]" in out
    first = recs("build", str(site), "-q", env=env).splitlines()[0]
    assert first.startswith(f"Jekyll site {site} (_config.yml, recs.toml): reading {site}/_posts")
    recs("export", "--site", str(site), env=env)
    data = json.loads((site / "_data" / "related.json").read_text(encoding="utf-8"))
    assert sorted(data) == sorted(JEKYLL_URLS.values())
    snapshot = store.load(tmp_path / "store")
    by_source = {a.source: row for row, a in enumerate(snapshot.articles)}
    script = tmp_path / "render.cjs"
    script.write_text(RENDER_LIQUID, encoding="utf-8")
    done = subprocess.run(
        [node, str(script), str(liquid), str(site / "_includes" / "recs-related.html"),
         str(site / "_data" / "related.json"), "/blog"],
        input=json.dumps(list(JEKYLL_URLS.values())), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rendered = json.loads(done.stdout)
    for source, url in JEKYLL_URLS.items():
        row = by_source[source]
        links = related_links(rendered[url])
        assert [t for _, t in links] == [
            snapshot.articles[i.row].title for i in snapshot.related[row]
        ]
        for href, _ in links:  # relative_url adds the baseurl; each is another post's page
            assert href.startswith("/blog/") and href.removeprefix("/blog") in data
