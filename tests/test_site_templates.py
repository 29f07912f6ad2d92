"""recs/site_templates.py: the partial `recs init` writes for each generator: where it goes,
the line a layout adds to show it, and the data it reads, which must be what `recs export
--site` writes for that generator (tests/test_site_builds.py renders them in real builds)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from recs.site_templates import ASTRO, ASTRO_COLLECTION, PARTIALS
from recs.sites import NAMES, open_site
from tests.conftest import EXAMPLES

SITES = EXAMPLES.parent

# How each template language names the data file's contents and an entry's fields.
READS = {
    "hugo": ("site.Data.related", '"path"', '"title"'),
    "jekyll": ("site.data.related[page.url]", "item.path", "item.title"),
    "eleventy": ("related[page.url]", "item.path", "item.title"),
    "eleventy-liquid": ("related[page.url]", "item.path", "item.title"),
    "astro": ('getEntry("related"', "item.path", "item.title"),
}
SUFFIX = {"hugo": ".html", "jekyll": ".html", "eleventy": ".njk", "eleventy-liquid": ".liquid"}


def test_every_generator_recs_detects_has_a_partial():
    assert set(NAMES) <= set(PARTIALS)
    assert set(PARTIALS) == set(READS)


@pytest.mark.parametrize("key", sorted(PARTIALS))
def test_the_layout_line_includes_the_partial_written(key):
    path, text, line = PARTIALS[key]
    name = PurePosixPath(path)
    assert name.suffix == SUFFIX.get(key, ".astro")
    if key == "astro":  # a component: used by name, imported by its path from a page
        assert f"<{name.stem} " in line and f'"../components/{name.name}"' in line
    else:
        assert name.name in line
    assert text.endswith("\n") and "Related articles" in text


@pytest.mark.parametrize("key", sorted(PARTIALS))
def test_each_partial_reads_the_related_data_and_links_each_items_path(key):
    _, text, _ = PARTIALS[key]
    for needle in READS[key]:
        assert needle in text, (key, needle)


@pytest.mark.parametrize(
    ("site", "key"),
    [("hugo-blog", "hugo"), ("jekyll-blog", "jekyll"), ("eleventy-blog", "eleventy")],
)
def test_the_data_file_export_writes_is_the_one_the_partial_reads(site, key):
    data_file = open_site(SITES / site).data_file
    assert data_file is not None and data_file.suffix == ".json"
    assert data_file.parent.name in ("data", "_data")  # the generator's data folder
    # A generator names a data file's contents by the file's stem: what the partial reads.
    assert f".{data_file.stem}" in READS[key][0] or READS[key][0].startswith(data_file.stem)


def test_astros_collection_loads_the_file_export_writes(tmp_path: Path):
    (tmp_path / "astro.config.mjs").write_text('export default { site: "https://a.example" };\n')
    data_file = open_site(tmp_path).data_file
    assert data_file is not None
    relative = data_file.relative_to(tmp_path).as_posix()
    assert f'file("{relative}")' in ASTRO_COLLECTION
    assert ASTRO_COLLECTION.endswith(" related };")  # registered as the `related` collection
    assert "found?.data.related" in ASTRO  # each entry keeps its list under `related`
