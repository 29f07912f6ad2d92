"""recs/cli/query_commands.py: related (stored articles and drafts), eval and export as a
user runs them: output formats, filters, one-line errors and exit codes."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from unittest import mock

import pytest

from recs.cli import main
from recs.recommender import Recommender
from tests.conftest import article_text
from tests.test_draft import DRAFT_EXCERPT, DRAFT_TITLE, NEW_URL


def test_related_takes_request_filters(topic_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECS_MODEL", "hashing")
    assert main(["build", str(topic_corpus), "--store", str(tmp_path / "s"), "-q"]) == 0
    url = "https://example.com/space/0"
    args = ["related", url, "--store", str(tmp_path / "s"), "--limit", "3"]
    capsys.readouterr()
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)[0]["webUrl"]
    assert main([*args, "--filter", f"exclude_url={first}"]) == 0
    filtered = [item["webUrl"] for item in json.loads(capsys.readouterr().out)]
    assert len(filtered) == 3 and first not in filtered
    assert main([*args, "--filter", "mmr_lambda=0.5"]) == 2
    assert "--filter 'mmr_lambda=0.5': expected NAME=VALUE" in capsys.readouterr().err


def test_unknown_url_is_one_line_and_non_zero(topic_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECS_MODEL", "hashing")
    assert main(["build", str(topic_corpus), "--store", str(tmp_path / "s"), "-q"]) == 0
    capsys.readouterr()
    assert main(["related", "https://example.com/nope", "--store", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err
    assert err == "error: no stored article has the URL https://example.com/nope\n"


def test_related_explain_prints_each_items_parts(topic_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECS_MODEL", "hashing")
    store_dir = str(tmp_path / "s")
    assert main(["build", str(topic_corpus), "--store", store_dir, "-q", "--limit", "3"]) == 0
    capsys.readouterr()
    url = "https://example.com/space/0"
    assert main(["related", url, "--store", store_dir, "--explain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:6] == ["#", "score", "cosine", "+expand", "+topics", "decay"]
    assert len(lines) == 5 and lines[1].split()[0] == "1" and "similar" in lines[1]
    assert main(["related", url, "--store", store_dir, "--format", "json"]) == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert lines[1].split()[1] == f"{first['score']:.3f}" and first["title"] in lines[1]


def test_related_draft_ranks_an_unsaved_file(cli_built, tmp_path, capsys):
    _, store_dir = cli_built
    draft = tmp_path / "draft.md"
    draft.write_text(article_text(DRAFT_TITLE, DRAFT_EXCERPT, NEW_URL))
    args = ["related", "--draft", str(draft), "--store", str(store_dir)]
    assert main(args) == 0
    items = json.loads(capsys.readouterr().out)
    assert len(items) == 3 and all("/space/" in item["webUrl"] for item in items)
    assert main([*args, "--limit", "1", "--filter", "exclude_url=" + items[0]["webUrl"]]) == 0
    assert [i["webUrl"] for i in json.loads(capsys.readouterr().out)] == [items[1]["webUrl"]]


def test_related_needs_a_url_or_a_draft_and_not_both(cli_built, tmp_path, capsys):
    _, store_dir = cli_built
    assert main(["related", "--store", str(store_dir)]) == 2
    assert "Missing argument 'URL' (or --draft FILE)" in capsys.readouterr().err
    args = ["related", "https://example.com/space/0", "--draft", "x.md"]
    assert main([*args, "--store", str(store_dir)]) == 2
    assert "give an article URL or --draft FILE, not both" in capsys.readouterr().err
    assert main(["related", "--draft", str(tmp_path / "none.md"), "--store", str(store_dir)]) == 2
    assert capsys.readouterr().err.startswith("error: cannot read ")


def test_recs_eval_command(topics_file, monkeypatch, capsys):
    monkeypatch.setenv("RECS_MODEL", "hashing")
    code = main(["eval", str(topics_file), "--limit", "2", "--json", "-q", "-o", "mmr_lambda=0.5"])
    assert code == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert out.count("\n") == 1
    assert data["limit"] == 2 and data["options"] == {"mmr_lambda": 0.5}
    assert data["settings"]["mmr_lambda"] == 0.5 and data["settings"]["limit"] == 2
    assert set(data["methods"]) == {"recs", "tfidf", "random"}

    assert main(["eval", str(topics_file), "--no-baselines", "-q"]) == 0
    table = capsys.readouterr().out
    assert "precision@5" in table and "recs" in table and "tfidf" not in table

    monkeypatch.setenv("RECS_RANK_DEDUP_THRESHOLD", "0.9")
    assert main(["eval", str(topics_file), "--json", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["options"] == {"dedup_threshold": 0.9}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "mmr_lambda=2"], "mmr_lambda must be at most 1.0, not 2.0"),
        (["-o", "colour=blue"], "--option 'colour=blue': expected NAME=VALUE"),
        (["-o", "limit=3"], "--option 'limit=3'"),
    ],
)
def test_recs_eval_refuses_bad_options_in_one_line(topics_file, monkeypatch, capsys, args, message):
    monkeypatch.setenv("RECS_MODEL", "hashing")
    assert main(["eval", str(topics_file), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_recs_eval_compare(topics_file, monkeypatch, capsys):
    monkeypatch.setenv("RECS_MODEL", "hashing")
    args = ["eval", str(topics_file), "--json", "-q", "--no-baselines"]
    assert main([*args, "--compare", "mmr_lambda=0.5 provider_cap=1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["methods"]) == {"recs", "recs mmr_lambda=0.5 provider_cap=1"}
    assert main([*args, "--compare", "mmr_lambda='0.5"]) == 2
    assert "--compare" in capsys.readouterr().err


def test_a_site_folder_is_evaluated_with_a_front_matter_label(capsys):
    from tests.conftest import EXAMPLES

    site = EXAMPLES.parent / "hugo-blog"
    args = ["eval", str(site), "--label", "categories", "--model", "hashing", "--json", "-q"]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"Hugo site {site}")
    result = json.loads(out[1])
    assert result["articles"] == 8 and result["labels"] == 2  # the notes have no categories
    assert main(["eval", str(site), "--label", "nope", "--model", "hashing", "-q"]) == 2
    assert "0 of 12 articles have a 'nope' front-matter key" in capsys.readouterr().err


def test_export_command(recommender, tmp_path, capsys):
    store_dir = str(tmp_path / "store")
    out = tmp_path / "related.json"
    assert main(["export", "--format", "json", "--out", str(out), "--store", store_dir]) == 0
    assert capsys.readouterr().out == f"12 related lists: {out} written\n"
    assert len(json.loads(out.read_text())) == 12
    folder = tmp_path / "per"
    args = ["export", "--format", "per-article", "--out", str(folder), "--store", store_dir]
    assert main([*args, "--limit", "1"]) == 0
    assert "12 files written" in capsys.readouterr().out
    item = json.loads((folder / "example.com" / "cooking" / "1.json").read_text())
    assert len(item["related"]) == 1
    assert main(["export", "--format", "json", "--out", str(folder), "--store", store_dir]) == 74
    assert capsys.readouterr().err.count("\n") == 1


def test_export_command_reports_each_skipped_url_on_one_line(recommender, tmp_path, capsys):
    forged = "no-host\nskipped https://example.com/space/1: \x1b[2Jfake"
    related = {**recommender.related_map(), forged: []}
    with mock.patch.object(Recommender, "related_map", return_value=related):
        args = ["export", "--format", "per-article", "--out", str(tmp_path / "per")]
        assert main([*args, "--store", str(tmp_path / "store")]) == 0
    out, err = capsys.readouterr()
    assert err == (
        "skipped no-host\\nskipped https://example.com/space/1: \\x1b[2Jfake: it has no host\n"
    )
    assert "13 related lists: 12 files written, 0 unchanged, 0 removed, 1 skipped in" in out


def test_export_command_fails_only_when_nothing_could_be_written(recommender, tmp_path, capsys):
    folder = tmp_path / "per"
    folder.mkdir()
    (folder / "example.com").write_text("a file where every article wants a folder")
    args = ["export", "--format", "per-article", "--out", str(folder)]
    assert main([*args, "--store", str(tmp_path / "store")]) == 74
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 13 and lines[-1] == f"error: no related list could be written to {folder}"
    assert all(
        re.fullmatch(
            r"skipped https://example\.com/\w+/\d: cannot write \S+: Not a directory", line
        )
        for line in lines[:-1]
    )


def test_export_without_a_store_says_what_to_do(tmp_path, capsys):
    out = Path(tmp_path / "x.json")
    args = ["export", "--format", "json", "--out", str(out), "--store", str(tmp_path / "none")]
    assert main(args) == 1
    assert "recs build" in capsys.readouterr().err and not out.exists()


def test_export_command_writes_the_widget_beside_an_export(recommender, tmp_path, capsys):
    from importlib import resources

    folder = tmp_path / "per"
    store = ["--store", str(tmp_path / "store")]
    assert main(["export", "--format", "per-article", "--out", str(folder), *store]) == 0
    assert main(["export", "--format", "widget", "--out", str(folder)]) == 0  # no store needed
    assert capsys.readouterr().out.endswith(f"widget: {folder / 'widget.js'}\n")
    widget = resources.files("recs").joinpath("static", "widget.js").read_bytes()
    assert (folder / "widget.js").read_bytes() == widget
    assert stat.S_IMODE((folder / "widget.js").stat().st_mode) & 0o044 == 0o044  # readable
    # A later per-article export leaves it alone: it removes only what its manifest listed.
    assert main(["export", "--format", "per-article", "--out", str(folder), *store]) == 0
    assert (folder / "widget.js").read_bytes() == widget
    assert main(["export", "--format", "widget", "--out", str(folder / "widget.js")]) == 2
    assert "is a file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export"], "give --out PATH, or --site SITE_DIR"),
        (["export", "--site", ".", "--format", "json"], "--format does not go with --site"),
        (["related", "--draft", "x.md", "--explain"], "--explain explains a stored article's"),
    ],
)
def test_contradictory_or_missing_options_are_usage_errors(tmp_path, capsys, args, message):
    assert main([*args, "--store", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_export_site_refuses_a_folder_that_is_no_site(recommender, tmp_path, capsys):
    args = ["export", "--site", str(tmp_path / "content"), "--store", str(tmp_path / "store")]
    assert main(args) == 2
    assert "is not a Hugo, Jekyll, Eleventy or Astro site" in capsys.readouterr().err


def test_related_block_format_is_the_front_matter_an_editor_pastes(recommender, tmp_path, capsys):
    from recs.draft import front_matter_lines

    url = "https://example.com/space/0"
    args = ["related", url, "--store", str(tmp_path / "store"), "--limit", "2"]
    assert main([*args, "--format", "block"]) == 0
    block = capsys.readouterr().out
    assert block == front_matter_lines(recommender.related(url, limit=2))
    assert block.startswith("related:\n  - title: ") and block.count("  - title: ") == 2


def test_an_explanation_of_an_empty_list_says_why_it_can_be_empty():
    from recs.cli.query_commands import explanation

    lines = explanation([]).splitlines()
    assert lines[1] == "  (no related article: none above the relevance floor, or filtered out)"
    assert lines[-1].startswith("score: what the list is ordered by")
