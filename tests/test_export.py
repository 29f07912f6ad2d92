"""Exports for site builds: one JSON map, or one safe file per article."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recs.cli import main
from recs.errors import InvalidInput
from recs.export import MANIFEST, article_path, export_json, export_per_article
from recs.pipeline import build
from recs.rank import RankSettings
from recs.recommender import Recommender


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/news/a-story", "example.com/news/a-story.json"),
        ("https://example.com/a/b/c", "example.com/a/b/c.json"),
        ("https://example.com:8080/x", "example.com_8080/x~{h}.json"),
        ("https://example.com/", "example.com/index~{h}.json"),
        ("https://example.com/index", "example.com/index.json"),
        ("https://example.com/a?id=7", "example.com/a~{h}.json"),
        ("https://example.com/is-it%3F", "example.com/is-it_3F~{h}.json"),
        ("https://example.com/../../etc/passwd", "example.com/_../_../etc/passwd~{h}.json"),
        ("https://example.com/.hidden/x", "example.com/_.hidden/x~{h}.json"),
        ("https://example.com/a//b", "example.com/a/_/b~{h}.json"),
        ("https://example.com/caf\u00e9", "example.com/caf_~{h}.json"),
    ],
)
def test_article_path(url, expected):
    import hashlib

    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    assert article_path(url) == PurePosixPath(expected.format(h=digest))


@given(st.text(max_size=60), st.text(max_size=20))
@settings(max_examples=300, deadline=None)
def test_article_paths_are_always_safe(path, query):
    url = "https://example.com/" + path + ("?" + query if query else "")
    relative = article_path(url)
    assert not relative.is_absolute()
    assert all(part not in ("", ".", "..") and not part.startswith(".") for part in relative.parts)
    assert all(len(part.encode()) <= 120 for part in relative.parts)
    assert relative.parts[0] == "example.com" and relative.suffix == ".json"


def test_article_path_needs_a_host():
    with pytest.raises(InvalidInput, match="no host"):
        article_path("/relative/only")


@pytest.fixture
def recommender(topic_corpus, tmp_path, encoder) -> Recommender:
    build(topic_corpus, tmp_path / "store", encoder, RankSettings(limit=3))
    return Recommender.open(tmp_path / "store")


def test_json_export_is_sorted_stable_and_atomic(recommender, tmp_path):
    out = tmp_path / "site" / "data" / "related.json"
    related = recommender.related_map()
    assert export_json(related, out) is True
    data = json.loads(out.read_text(encoding="utf-8"))
    assert list(data) == sorted(data) and len(data) == 12
    first = data["https://example.com/space/0"]
    assert first == recommender.related("https://example.com/space/0")
    assert [item["score"] for item in first] == sorted((i["score"] for i in first), reverse=True)
    text = out.read_text(encoding="utf-8")
    assert (
        text.endswith("\n")
        and json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n" == text
    )
    mtime = out.stat().st_mtime_ns
    assert export_json(recommender.related_map(), out) is False  # identical: not rewritten
    assert out.stat().st_mtime_ns == mtime
    assert [p.name for p in out.parent.iterdir()] == ["related.json"]  # no temp files


def test_json_exports_can_be_inlined_in_a_script_element(tmp_path):
    # A site may inline an export in <script>: `<`, `>` and `&` are \u escapes, so a title
    # cannot close the element; the JSON still loads to the same values.
    title = "</script><script>alert(1)</script> & <!-- more\u2028"
    url = "https://example.com/a?x=1&y=2"
    related = {url: [{"title": title, "webUrl": "https://example.com/b?c=<d>", "score": 0.5}]}
    export_json(related, tmp_path / "related.json")
    export_per_article(related, tmp_path / "per")
    files = [tmp_path / "related.json", *(p for p in (tmp_path / "per").rglob("*.json"))]
    assert len(files) == 3  # the map, one article file, the manifest
    for path in files:
        raw = path.read_bytes()
        assert not {"<", ">", "&", "\u2028"} & set(raw.decode("utf-8")), path
        assert b"\\u003c/script\\u003e" in raw or path.name == MANIFEST
    assert json.loads((tmp_path / "related.json").read_text()) == related
    manifest = json.loads((tmp_path / "per" / MANIFEST).read_text())
    assert list(manifest) == [url]
    item = json.loads((tmp_path / "per" / manifest[url]).read_text())
    assert item == {"url": url, "related": related[url]}


def test_per_article_export_writes_a_manifest_and_removes_only_its_own_stale_files(
    recommender, tmp_path
):
    out = tmp_path / "widgets"
    out.mkdir()
    (out / "keep-me.txt").write_text("not ours")
    related = recommender.related_map()
    assert export_per_article(related, out) == (12, 0, 0)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["https://example.com/space/0"] == "example.com/space/0.json"
    item = json.loads((out / "example.com" / "space" / "0.json").read_text())
    assert item == {"url": "https://example.com/space/0", "related": related[item["url"]]}
    # An article that disappears loses its file; files recs did not write stay.
    smaller = {k: v for k, v in related.items() if k != "https://example.com/space/0"}
    assert export_per_article(smaller, out) == (0, 11, 1)
    assert not (out / "example.com" / "space" / "0.json").exists()
    assert (out / "keep-me.txt").read_text() == "not ours"


def test_a_tampered_manifest_cannot_delete_outside_the_folder(recommender, tmp_path):
    out = tmp_path / "widgets"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    export_per_article(recommender.related_map(), out)
    (out / MANIFEST).write_text(json.dumps({"https://x.example/": "../victim.txt"}))
    export_per_article(recommender.related_map(), out)
    assert victim.read_text() == "precious"


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


def test_export_without_a_store_says_what_to_do(tmp_path, capsys):
    out = Path(tmp_path / "x.json")
    args = ["export", "--format", "json", "--out", str(out), "--store", str(tmp_path / "none")]
    assert main(args) == 1
    assert "recs build" in capsys.readouterr().err and not out.exists()
