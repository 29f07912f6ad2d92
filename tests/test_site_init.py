"""`recs init` (recs.site_init): two new files, the lines to add, nothing else touched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from recs.errors import InvalidInput
from recs.site_init import init_site
from recs.site_templates import PARTIALS
from recs.sites import open_site
from tests.conftest import EXAMPLES as CONTENT

EXAMPLES = CONTENT.parent


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("name", "partial", "line"),
    [
        ("hugo-blog", "layouts/partials/recs-related.html", '{{ partial "recs-related.html" . }}'),
        ("jekyll-blog", "_includes/recs-related.html", "{% include recs-related.html %}"),
        ("eleventy-blog", "src/_includes/recs-related.njk", '{% include "recs-related.njk" %}'),
    ],
)
def test_init_writes_the_config_and_the_partial_only(tmp_path, name, partial, line):
    site = tmp_path / name
    shutil.copytree(EXAMPLES / name, site, ignore=shutil.ignore_patterns("node_modules", "_site"))
    before = snapshot(site)
    report = init_site(site)
    after = snapshot(site)
    assert set(after) - set(before) == {"recs.toml", partial}
    assert all(after[path] == data for path, data in before.items())
    assert any(line in step for step in report.steps)
    assert after[partial].decode() in {text for _, text, _ in PARTIALS.values()}
    # The written recs.toml reads back as the same site.
    detected, configured = open_site(EXAMPLES / name), open_site(site)
    assert configured.read.urls == detected.read.urls
    assert configured.read.fields == detected.read.fields
    assert configured.content_dir == site / detected.content_dir.relative_to(EXAMPLES / name)


def test_init_without_a_generator_is_one_clear_line(tmp_path):
    with pytest.raises(InvalidInput, match="no Hugo, Jekyll, Eleventy or Astro config"):
        init_site(tmp_path)
