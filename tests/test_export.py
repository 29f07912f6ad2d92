"""Exports for site builds: one JSON map, or one safe file per article."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path, PurePosixPath
from unittest import mock

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import recs.export
from recs.articles import Article
from recs.errors import InvalidInput, StoreWriteError
from recs.export import (
    MANIFEST,
    MAX_FOLDERS,
    MAX_PATH,
    PerArticleReport,
    article_path,
    export_json,
    export_per_article,
    written_urls,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/news/a-story", "example.com/news/a-story.json"),
        ("https://example.com/a/b/c", "example.com/a/b/c.json"),
        ("https://example.com/index", "example.com/index.json"),
        ("https://example.com/feed.json", "example.com/feed.json.json"),
        ("https://example.com/a.json_/b", "example.com/a.json_/b.json"),
        ("https://example.com:8080/x", "example.com_8080/x~{h}.json"),
        ("https://example.com/", "example.com/index~{h}.json"),
        ("https://example.com/a/", "example.com/a/index~{h}.json"),
        ("https://example.com/a?id=7", "example.com/a~{h}.json"),
        ("https://example.com/a#top", "example.com/a~{h}.json"),
        ("http://example.com/a", "example.com/a~{h}.json"),
        ("https://user@example.com/a", "example.com/a~{h}.json"),
        ("https://Example.COM/a", "example.com/a~{h}.json"),
        ("https://example.com/News", "example.com/News~{h}.json"),
        ("https://example.com/is-it%3F", "example.com/is-it_3F~{h}.json"),
        ("https://example.com/../../etc/passwd", "example.com/_../_../etc/passwd~{h}.json"),
        ("https://example.com/.hidden/x", "example.com/_.hidden/x~{h}.json"),
        ("https://example.com/a//b", "example.com/a/_/b~{h}.json"),
        ("https://example.com/caf\u00e9", "example.com/caf_~{h}.json"),
        # A folder never ends in .json (any case): a file of that name can sit beside it.
        ("https://example.com/feed.json/item", "example.com/feed.json_/item~{h}.json"),
        ("https://example.com/x.JSON/y", "example.com/x.JSON_/y~{h}.json"),
        ("https://_manifest.json/a", "_manifest.json_/a~{h}.json"),
        ("https://[::1]:8080/a", "__1_8080/a~{h}.json"),
        # More than 16 folders, or more than 512 characters: the host folder, then the file.
        ("https://example.com/" + "a/" * 16 + "b", "example.com/" + "a/" * 16 + "b.json"),
        ("https://example.com/" + "a/" * 17 + "b", "example.com/b~{h}.json"),
        ("https://example.com/" + "a/" * 1000 + "b", "example.com/b~{h}.json"),
        ("https://example.com/" + "x" * 99 + "/y" * 200, "example.com/y~{h}.json"),
        ("https://example.com/" + "abcd/" * 99 + "z", "example.com/z~{h}.json"),
    ],
)
def test_article_path(url, expected):
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    assert article_path(url) == PurePosixPath(expected.format(h=digest))


def test_the_path_caps_are_inclusive():
    base = "https://example.com/"
    longest = base + "/".join(["a" * 99] * 4) + "/" + "b" * (512 - 12 - 400 - 5)
    assert len(longest) - len("https://") + len(".json") == MAX_PATH
    assert article_path(longest).as_posix() == longest[len("https://") :] + ".json"
    assert article_path(longest + "c").parent == PurePosixPath("example.com")


# Segments that look like folders, files, the manifest, hidden or escaped names, in any case.
SEGMENT = st.one_of(
    st.sampled_from(
        ["a", "b", "", "index", "feed", "feed.json", "FEED.JSON", "feed.json_", MANIFEST,
         ".", "..", ".hidden", "News", "news", "x~1", "%3F", "a" * 101]
    ),
    st.text(st.characters(codec="utf-8"), max_size=6),
)  # fmt: skip
HOST = st.sampled_from(
    ["a.example", "A.Example", MANIFEST, "feed.json", "xn--caf-dma.example", "[::1]",
     "a.example:8080", "a.example:443", "user@a.example", "a.example.", "127.0.0.1"]
)  # fmt: skip
TAIL = st.sampled_from(["", "", "", ".json", "/", "?q=1", "?utm_source=x&a=1", "#top"])


@st.composite
def url_sets(draw) -> set[str]:
    """URLs in prefix relations (a path, its folders, the same with a suffix), odd hosts,
    queries, http and https, sometimes a path over the caps."""
    urls = set()
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.sampled_from(["https://", "https://", "http://"])) + draw(HOST)
        segments = draw(st.lists(SEGMENT, max_size=20))
        for depth in range(len(segments) + 1):
            if depth == len(segments) or draw(st.integers(0, 3)) == 0:
                urls.add(start + "/" + "/".join(segments[:depth]) + draw(TAIL))
        if draw(st.integers(0, 3)) == 0:  # and below it, 1,000 segments more
            urls.add(start + "/" + "/".join(segments + ["d"] * 1000) + draw(TAIL))
    return urls


def read_tree(root: Path) -> tuple[set[str], set[str]]:
    """(files, folders) under root as relative POSIX paths."""
    files, folders = set(), set()
    for path in root.rglob("*"):
        (folders if path.is_dir() else files).add(path.relative_to(root).as_posix())
    return files, folders


@given(url_sets(), url_sets())
@settings(max_examples=100, deadline=None)
def test_generated_urls_each_get_their_own_file_and_round_trip(urls, more):
    related = {url: [{"title": f"about {url}", "score": 0.5}] for url in urls}
    # Durability is not what this tests, and thousands of fsyncs would make it slow.
    with tempfile.TemporaryDirectory() as folder, mock.patch("os.fsync"):
        root = Path(folder).resolve()
        report = export_per_article(related, root)
        assert report.skipped == [] and report.written == len(urls)
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        assert set(manifest) == urls
        paths = list(manifest.values())
        assert len({p.lower() for p in paths}) == len(paths)  # distinct, in any letter case
        for path in paths:
            parts = PurePosixPath(path).parts
            assert len(path) <= MAX_PATH and len(parts) <= MAX_FOLDERS + 2
            assert all(p not in ("", ".", "..") and not p.startswith(".") for p in parts)
            assert all(len(p.encode()) <= 255 for p in parts)
            assert (root / path).resolve().is_relative_to(root)
        files, folders = read_tree(root)
        assert files == {*paths, MANIFEST}
        assert not {f.lower() for f in files} & {f.lower() for f in folders}
        for url, path in manifest.items():
            item = json.loads((root / path).read_text(encoding="utf-8"))
            assert item == {"url": url, "related": related[url]}
        assert export_per_article(related, root).written == 0  # nothing changed
        # Another set: the old files go, with the folders that leaves empty.
        other = {url: [] for url in more}
        report = export_per_article(other, root)
        assert report.skipped == [] and report.written + report.unchanged == len(more)
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        files, folders = read_tree(root)
        assert set(manifest) == more and files == {*manifest.values(), MANIFEST}
        assert all(any(f.startswith(folder + "/") for f in files) for folder in folders)


@given(
    st.from_regex(r"[a-z0-9-]{1,20}(\.[a-z0-9-]{1,10}){0,3}", fullmatch=True),
    st.lists(st.from_regex(r"[a-z0-9_-][a-z0-9._-]{0,30}", fullmatch=True), min_size=1, max_size=8),
)
@settings(max_examples=300, deadline=None)
def test_an_ordinary_url_keeps_its_readable_path(host, segments):
    assume(not any(s.endswith(".json") for s in [host, *segments[:-1]]))
    url = "https://" + host + "/" + "/".join(segments)
    assert article_path(url).as_posix() == url[len("https://") :] + ".json"


def test_the_readme_states_the_path_rule_of_the_module():
    # Widgets reimplement the rule from the README: it must be the module's, word for word.
    def rule(text: str) -> str:
        start, end = text.index("1. Split the URL"), text.index("HASH.json` instead.")
        return " ".join(text[start:end].split())

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert rule(readme) == rule(recs.export.__doc__ or "")


@given(st.text(max_size=60), st.text(max_size=20))
@settings(max_examples=300, deadline=None)
def test_article_paths_are_always_safe(path, query):
    url = "https://example.com/" + path + ("?" + query if query else "")
    relative = article_path(url)
    assert not relative.is_absolute()
    assert all(part not in ("", ".", "..") and not part.startswith(".") for part in relative.parts)
    assert all(len(part.encode()) <= 255 for part in relative.parts)
    assert len(relative.as_posix()) <= MAX_PATH
    assert relative.parts[0] == "example.com" and relative.suffix == ".json"


@pytest.mark.parametrize(
    "url", ["/relative/only", "https:///no-host", "https://a.example:99999/x", "https://[::1/x"]
)
def test_a_url_that_cannot_have_a_file_is_refused_saying_why(url):
    with pytest.raises(InvalidInput, match=r"it has no host|not a usable URL"):
        article_path(url)


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


def test_json_export_keys_each_list_by_the_urls_as_files_write_them(tmp_path):
    a = Article(
        "https://a.example/x", "A", "", {"webUrl": "HTTP://A.example/x/",
        "originalUrl": "https://a.example/x?utm_source=feed"}, "a.md",
    )  # fmt: skip
    b = Article("https://b.example/y", "B", "", {"webUrl": "https://b.example/y"}, "b.md")
    # A file may write another article's URL as its originalUrl: that key stays the other's.
    c = Article("https://c.example/z", "C", "", {"originalUrl": "https://b.example/y"}, "c.md")
    related = lists_for(a.url, b.url, c.url)
    written = written_urls([a, b, c])
    assert written == {
        "HTTP://A.example/x/": a.url,
        "https://a.example/x?utm_source=feed": a.url,
        "https://b.example/y": c.url,
    }
    assert export_json(related, tmp_path / "related.json", written) is True
    assert json.loads((tmp_path / "related.json").read_text()) == {
        **related,
        "HTTP://A.example/x/": related[a.url],
        "https://a.example/x?utm_source=feed": related[a.url],
    }


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
    assert export_per_article(related, out) == PerArticleReport(12, 0, 0, [])
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["https://example.com/space/0"] == "example.com/space/0.json"
    item = json.loads((out / "example.com" / "space" / "0.json").read_text())
    assert item == {"url": "https://example.com/space/0", "related": related[item["url"]]}
    # An article that disappears loses its file; files recs did not write stay.
    smaller = {k: v for k, v in related.items() if k != "https://example.com/space/0"}
    assert export_per_article(smaller, out) == PerArticleReport(0, 11, 1, [])
    assert not (out / "example.com" / "space" / "0.json").exists()
    assert (out / "keep-me.txt").read_text() == "not ours"


def exported(root: Path) -> dict[str, object]:
    """URL -> the content of its file, through the manifest."""
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    return {url: json.loads((root / path).read_text()) for url, path in manifest.items()}


def lists_for(*urls: str) -> dict[str, list[dict[str, object]]]:
    return {url: [{"title": f"next to {url[:40]}", "score": 0.5}] for url in urls}


@pytest.mark.parametrize(
    "urls",
    [
        ["https://a.example/" + "/".join(["p"] * 1000)],  # RecursionError, nothing written
        ["https://a.example/feed", "https://a.example/feed.json/item"],  # Not a directory
        ["https://_manifest.json/a"],  # Is a directory: the host folder was the manifest
    ],
    ids=["1000-segments", "file-and-folder", "manifest-host"],
)
def test_urls_that_broke_the_export_each_get_a_file(tmp_path, urls):
    related = lists_for(*urls, "https://a.example/ok")
    report = export_per_article(related, tmp_path)
    assert report == PerArticleReport(len(related), 0, 0, [])
    assert exported(tmp_path) == {url: {"url": url, "related": v} for url, v in related.items()}


def test_a_url_that_cannot_be_written_is_reported_and_the_rest_exported(tmp_path):
    related = lists_for("https://a.example/x", "https://a.example/y", "https://b.example/z")
    related["no-host\nskipped https://forged.example/: fake"] = []
    (tmp_path / "a.example" / "x.json").mkdir(parents=True)  # someone else's folder
    (tmp_path / "a.example" / "x.json" / "theirs").write_text("keep")
    report = export_per_article(related, tmp_path)
    assert report.skipped == [
        ("https://a.example/x", "cannot write a.example/x.json: Is a directory"),
        ("no-host\nskipped https://forged.example/: fake", "it has no host"),
    ]
    assert report.written == 2
    assert set(exported(tmp_path)) == {"https://a.example/y", "https://b.example/z"}
    assert (tmp_path / "a.example" / "x.json" / "theirs").read_text() == "keep"


def test_a_symlink_out_of_the_folder_is_reported_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.example").symlink_to(elsewhere)
    report = export_per_article(lists_for("https://a.example/x", "https://b.example/y"), out)
    assert report.skipped == [
        ("https://a.example/x", "a.example/x.json leads outside the output folder (a symlink)")
    ]
    assert set(exported(out)) == {"https://b.example/y"} and not any(elsewhere.iterdir())


def test_a_hash_collision_is_reported_never_written_over(tmp_path, monkeypatch):
    import recs.export

    monkeypatch.setattr(recs.export, "url_hash", lambda url: "0" * 16)
    related = lists_for("https://a.example/x?1", "https://a.example/x?2")
    report = export_per_article(related, tmp_path)
    path = "a.example/x~0000000000000000.json"
    assert report.skipped == [
        ("https://a.example/x?2", f"its file {path} is already that of https://a.example/x?1")
    ]
    assert exported(tmp_path) == {"https://a.example/x?1": {"url": "https://a.example/x?1",
                                  "related": related["https://a.example/x?1"]}}  # fmt: skip


def test_an_export_made_by_the_earlier_rule_is_replaced(tmp_path):
    # The earlier rule put `https://a.example/feed.json/item` in a folder `feed.json`, where
    # `https://a.example/feed` now wants its file: the stale file and its folder go first.
    (tmp_path / "a.example" / "feed.json").mkdir(parents=True)
    (tmp_path / "a.example" / "feed.json" / "item.json").write_text("{}")
    old = {"https://a.example/feed.json/item": "a.example/feed.json/item.json"}
    (tmp_path / MANIFEST).write_text(json.dumps(old))
    related = lists_for("https://a.example/feed", "https://a.example/feed.json/item")
    report = export_per_article(related, tmp_path)
    assert report == PerArticleReport(2, 0, 1, [])
    assert set(exported(tmp_path)) == set(related)
    assert (tmp_path / "a.example" / "feed.json").is_file()


def test_an_output_folder_that_cannot_be_written_is_one_error(tmp_path, monkeypatch):
    # Tests run as root, which may write anywhere: the permission check is what is faked.
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(StoreWriteError, match="Permission denied; choose a writable --out"):
        export_per_article(lists_for("https://a.example/x", "https://a.example/y"), tmp_path)
    assert not any(tmp_path.iterdir())


def test_exported_files_are_readable_by_a_web_server(tmp_path):
    old_umask = os.umask(0o022)
    try:
        export_json(lists_for("https://a.example/x"), tmp_path / "related.json")
        export_per_article(lists_for("https://a.example/x"), tmp_path / "per")
    finally:
        os.umask(old_umask)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 3
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o644}


def test_a_tampered_manifest_cannot_delete_outside_the_folder(recommender, tmp_path):
    out = tmp_path / "widgets"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    export_per_article(recommender.related_map(), out)
    (out / MANIFEST).write_text(json.dumps({"https://x.example/": "../victim.txt"}))
    export_per_article(recommender.related_map(), out)
    assert victim.read_text() == "precious"


def test_the_manifest_also_maps_each_url_as_its_file_writes_it(tmp_path):
    a = Article(
        "https://a.example/x", "A", "", {"webUrl": "HTTP://A.example/x/"}, "a.md"
    )  # fmt: skip
    b = Article("https://b.example/y", "B", "", {"webUrl": "https://b.example/y"}, "b.md")
    c = Article("https://c.example/z", "C", "", {"originalUrl": "https://b.example/y"}, "c.md")
    related = lists_for(a.url, b.url, c.url)
    export_per_article(related, tmp_path, written_urls([a, b, c]))
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    # A canonical URL keeps its own file; another article's text never takes it over.
    assert manifest == {
        a.url: "a.example/x.json",
        "HTTP://A.example/x/": "a.example/x.json",
        b.url: "b.example/y.json",
        c.url: "c.example/z.json",
    }
    assert exported(tmp_path)["HTTP://A.example/x/"] == {"url": a.url, "related": related[a.url]}


# --- a site generator's data file (recs export --site) ------------------------------------


def _site_articles(web_urls: dict[str, str]) -> list[Article]:
    from recs.articles import article_from_data

    return [
        article_from_data({"title": s, "excerpt": "E", "webUrl": w}, s) for s, w in web_urls.items()
    ]


@pytest.mark.parametrize(
    ("generator", "base", "keys", "paths"),
    [
        ("hugo", "https://x.example/docs/", ["/docs/a/", "/docs/b/"], ["/docs/b/", "/docs/a/"]),
        ("jekyll", "https://x.example/docs/", ["/a/", "/b/"], ["/b/", "/a/"]),
        ("eleventy", "https://x.example/", ["/docs/a/", "/docs/b/"], ["/docs/b/", "/docs/a/"]),
    ],
)
def test_site_data_is_keyed_as_templates_look_pages_up(generator, base, keys, paths):
    from recs.export import site_data
    from recs.options import UrlRules

    articles = _site_articles(
        {"a.md": "https://x.example/docs/a/", "b.md": "https://x.example/docs/b/"}
    )
    related = {
        articles[0].url: [articles[1].entry() | {"score": 0.5}],
        articles[1].url: [articles[0].entry() | {"score": 0.5}],
    }
    data = site_data(related, articles, UrlRules(generator, base))
    assert list(data) == keys
    assert [entries[0]["path"] for entries in data.values()] == paths
    assert data[keys[0]][0]["webUrl"] == "https://x.example/docs/b/"  # the entry, plus path


def test_astro_data_is_an_object_of_entries_for_its_file_loader(tmp_path):
    from recs.export import export_site
    from recs.options import UrlRules

    articles = _site_articles(
        {
            "blog/First Post.md": "https://a.example/blog/first-post/",
            "blog/two/index.md": "https://a.example/blog/two/",
        }
    )
    related = {articles[0].url: [articles[1].entry() | {"score": 0.5}], articles[1].url: []}
    out = tmp_path / "src" / "data" / "related.json"
    assert export_site(related, articles, UrlRules("astro", "https://a.example/"), out)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data == {
        "blog/first-post": {
            "related": [articles[1].entry() | {"score": 0.5, "path": "/blog/two/"}]
        },
        "blog/two": {"related": []},
    }
    assert not export_site(related, articles, UrlRules("astro", "https://a.example/"), out)
