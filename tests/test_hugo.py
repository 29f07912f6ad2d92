"""A real site build: examples/hugo renders the related lists recs wrote (Hugo must be there)."""

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
from tests.conftest import BIN, EXAMPLES

SITE = EXAMPLES.parent / "hugo"
SEED_SOURCE = "technology/chinese-school-facial-recognition.md"
SEED_PAGE = "technology/chinese-school-facial-recognition/index.html"
SEED_URL = (
    "https://www.sixthtone.com/news/1009712/"
    "chinese-school-faces-backlash-over-use-of-facial-recognition-scanners"
)

pytestmark = pytest.mark.e2e


def hugo() -> str:
    path = shutil.which("hugo")
    if path is None:  # never skip: CI installs it (make system-deps)
        pytest.fail("hugo is not installed: run `make system-deps` (Debian package hugo)")
    return path


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """Copies of the example site and the sample corpus, laid out as in examples/."""
    shutil.copytree(SITE, tmp_path / "hugo", ignore=shutil.ignore_patterns("public", "resources"))
    shutil.copytree(EXAMPLES, tmp_path / "content")
    return tmp_path


def recs(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(BIN / "recs"), *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def render(site: Path, *config: str) -> str:
    done = subprocess.run(
        [hugo(), "--source", str(site / "hugo"), "--destination", str(site / "public"),
         "--config", ",".join(config or ("hugo.toml",)), "--quiet"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    return (site / "public" / SEED_PAGE).read_text(encoding="utf-8")


def related_items(page: str) -> list[tuple[str, str, str | None]]:
    """(href, title, thumbnail src) of each related item on a rendered page."""
    section = re.search(r'<section class="related">(.*?)</section>', page, re.S)
    assert section, "the page has no related section"
    items = []
    for li in re.findall(r"<li>(.*?)</li>", section.group(1), re.S):
        link = re.search(r'<a href="([^"]*)">(.*?)</a>', li, re.S)
        assert link, li
        image = re.search(r'<img class="thumbnail" src="([^"]*)"', li)
        items.append(
            (
                html.unescape(link.group(1)),
                html.unescape(link.group(2)),
                html.unescape(image.group(1)) if image else None,
            )
        )
    return items


def stored_items(snapshot: store.Snapshot, row: int) -> list[tuple[str, str, str | None]]:
    """An article's stored list, as a page shows it, in rank order (not sorted by `score`:
    the score an entry reports is the plain cosine, while the order also weighs neighbours
    and freshness)."""
    items = []
    for r in (item.row for item in snapshot.related[row]):
        fields = snapshot.articles[r].fields
        images = fields.get("images") or []
        href = fields.get("webUrl", "")  # an article known by its originalUrl has none
        items.append((href, fields["title"], images[0]["url"] if images else None))
    return items


def expected_items(store_dir: Path) -> list[tuple[str, str, str | None]]:
    """The seed's stored list, in rank order."""
    snapshot = store.load(store_dir)
    row = snapshot.row_of[SEED_URL]
    assert len(snapshot.related[row]) == 5
    return stored_items(snapshot, row)


def env_for(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env.update(RECS_MODEL="hashing", RECS_STORE=str(site / "store"))
    return env


def test_front_matter_route_lists_related_articles_in_rank_order(site):
    env = env_for(site)
    recs("regenerate", str(site / "content"), "-q", env=env)
    items = related_items(render(site))
    assert items == expected_items(site / "store")
    # Working links: each is the webUrl of an article of the corpus, whose own page exists.
    snapshot = store.load(site / "store")
    by_web_url = {a.fields["webUrl"]: a for a in snapshot.articles}
    for href, title, _ in items:
        assert href.startswith("https://") and by_web_url[href].title == title
        page = Path(by_web_url[href].source).with_suffix("") / "index.html"
        assert (site / "public" / page).is_file()


def test_data_file_route_reads_the_json_export(site):
    env = env_for(site)
    # The store is built, but the files keep their hand-written blocks: only the data file
    # can give the page its five stored items.
    recs("build", str(site / "content"), "-q", env=env)
    data = site / "hugo" / "data" / "related.json"
    recs("export", "--format", "json", "--out", str(data), env=env)
    exported = json.loads(data.read_text(encoding="utf-8"))[SEED_URL]
    items = related_items(render(site, "hugo.toml", "data-route.toml"))
    assert items == expected_items(site / "store")
    assert [href for href, _, _ in items] == [e["webUrl"] for e in exported]
    # The front-matter route on the same files still shows the seed's single hand entry.
    assert [title for _, title, _ in related_items(render(site))] == [
        "Is Chinese Math Education as Good as It Seems?"
    ]


# URLs as sites write them, not in recs' canonical form: http, upper case, a trailing slash,
# tracking parameters, and an article known only by its originalUrl. (The sample already
# has two upper-case hosts.)
WRITTEN_FORMS = {
    "cooking/one-pan-chickpea-spinach-curry.md": (
        'webUrl: "https://homekitchenjournal.example/',
        'webUrl: "http://homekitchenjournal.example/',
    ),
    "space/europa-flyby-reveals-fresh-fractures-in-ice-shell.md": (
        'webUrl: "https://launchpadweekly.example/planetary/europa-flyby-fresh-fractures"',
        'webUrl: "https://launchpadweekly.example/planetary/europa-flyby-fresh-fractures/"',
    ),
    "climate/cities-plant-street-trees-to-fight-urban-heat.md": (
        'webUrl: "https://climatedesk.example/cities/street-trees-urban-heat-islands"',
        'webUrl: "https://climatedesk.example/cities/street-trees-urban-heat-islands'
        '?utm_source=newsletter&utm_medium=email"',
    ),
    "football/semi-automated-offside-technology-trial.md": (
        'webUrl: "https://pitchsidereport.example/news/semi-automated-offside-trial"',
        'webUrl: "HTTP://PitchsideReport.example:80/news/semi-automated-offside-trial/"',
    ),
    "health/new-antibiotic-kills-drug-resistant-bacteria.md": (
        'originalUrl: "https://clinicnotes.example/research/new-antibiotic-drug-resistant-bacteria"\n'
        'webUrl: "https://clinicnotes.example/research/new-antibiotic-drug-resistant-bacteria"\n',
        'originalUrl: "http://ClinicNotes.example/research/new-antibiotic-drug-resistant-bacteria'
        '/?utm_campaign=spring"\n',
    ),
}


def test_data_file_route_finds_every_page_whatever_its_url_form(site):
    for source, (old, new) in WRITTEN_FORMS.items():
        path = site / "content" / source
        text = path.read_text(encoding="utf-8")
        assert old in text, source
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
    env = env_for(site)
    recs("build", str(site / "content"), "-q", env=env)
    recs(
        "export", "--format", "json", "--out", str(site / "hugo" / "data" / "related.json"), env=env
    )
    render(site, "hugo.toml", "data-route.toml")
    snapshot = store.load(site / "store")
    assert len(snapshot.articles) == 51
    written = [a.fields.get("webUrl") or a.fields["originalUrl"] for a in snapshot.articles]
    assert sum(url != a.url for url, a in zip(written, snapshot.articles, strict=True)) == 7
    for row, article in enumerate(snapshot.articles):
        page = site / "public" / Path(article.source).with_suffix("") / "index.html"
        items = related_items(page.read_text(encoding="utf-8"))  # fails without a section
        assert items == stored_items(snapshot, row), article.source
