"""recs/cli/site_commands.py: `recs init` as a user runs it."""

from __future__ import annotations

import shutil

from recs.cli import main
from tests.conftest import EXAMPLES

SITES = EXAMPLES.parent  # the example Hugo, Jekyll, Eleventy and Astro sites


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path, capsys):
    site = tmp_path / "site"
    shutil.copytree(SITES / "hugo-blog", site)
    (site / "layouts" / "partials").mkdir()
    (site / "layouts" / "partials" / "recs-related.html").write_text("mine", encoding="utf-8")
    assert main(["init", str(site)]) == 2
    err = capsys.readouterr().err
    assert "recs-related.html exists already; nothing was written (--force" in err
    assert not (site / "recs.toml").exists()
    assert (site / "layouts" / "partials" / "recs-related.html").read_text() == "mine"
    assert main(["init", str(site), "--force"]) == 0
    assert "mine" not in (site / "layouts" / "partials" / "recs-related.html").read_text()


def test_init_asks_for_a_base_url_it_cannot_find(tmp_path, capsys):
    (tmp_path / "eleventy.config.js").write_text("export default {};\n", encoding="utf-8")
    assert main(["init", str(tmp_path)]) == 0
    assert "warning: no base URL in eleventy.config.js: edit base_url" in capsys.readouterr().err
    assert 'base_url = "https://example.com/"' in (tmp_path / "recs.toml").read_text()


def test_init_says_what_it_wrote_and_what_to_add_by_hand(tmp_path, capsys):
    site = tmp_path / "site"
    shutil.copytree(SITES / "jekyll-blog", site)
    assert main(["init", str(site)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == (
        f"Jekyll site {site}: wrote {site / 'recs.toml'}, {site / '_includes/recs-related.html'}"
    )
    assert "1. Add this line to _layouts/post.html" in out
    assert "{% include recs-related.html %}" in out
    assert f"recs build {site} && recs export --site {site}" in out
    assert "exclude: [recs.toml, embeddings]" in out  # Jekyll would publish them otherwise
    assert err == ""
