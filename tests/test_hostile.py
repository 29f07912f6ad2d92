"""Hostile article files: malformed, malicious, huge. Each bad file becomes one problem that
names the file and says what is wrong, the rest of the corpus still builds, nothing crashes,
and memory stays bounded (the bound is checked here and stated in docs/reliability.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recs import corpus, frontmatter, store
from recs.articles import Article, ArticleError
from recs.cli import main
from recs.corpus import parse_article_text, parse_jsonl, read_corpus, read_front_matter
from recs.encoder import HashingEncoder
from recs.options import ReadOptions
from recs.pipeline import build
from recs.rank_settings import RankSettings
from recs.rewrite import RewriteError, rewrite
from tests.conftest import BIN

HEAD = 'title: "T"\nexcerpt: "E"\nwebUrl: "https://hostile.example/{name}"\n'
MARKER = "recs-hostile-tag-was-executed"


def front(name: str, extra: str = "") -> bytes:
    """A valid article file named `name`, with `extra` YAML lines after the required ones."""
    return ("---\n" + HEAD.format(name=name) + extra + "---\nBody.\n").encode()


def bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels + 1):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


# (file name, bytes, words the problem must contain, line it must name or None)
BAD: list[tuple[str, bytes, str, int | None]] = [
    ("invalid-yaml.md", b'---\ntitle: "unclosed\nexcerpt: e\n---\n', "invalid YAML", None),
    ("bad-indent.md", front("bad-indent", "provider:\n  name: a\n bad: b\n"), "invalid YAML", 7),
    ("unclosed.md", b'---\ntitle: "t"\nexcerpt: "e"\n', "is never closed", 1),
    ("no-front-matter.md", b"# Just markdown\n\nText.\n", "no front matter", 1),
    ("empty.md", b"", "empty file", None),
    ("blank.md", b" \n\r\n\t\n", "empty file", None),
    ("only-fences.md", b"---\n---\n", "must be a mapping of fields, not empty", None),
    ("latin1.md", front("latin1").replace(b'"E"', b'"caf\xe9"'), "not UTF-8", 3),
    ("utf16.md", "---\ntitle: t\n---\n".encode("utf-16"), "binary file", None),
    ("binary.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary", None),
    ("list.md", b"---\n- a\n- b\n---\n", "must be a mapping", None),
    ("scalar.md", b"---\njust text\n---\n", "must be a mapping", None),
    ("deep-flow.md", front("deep-flow", "d: " + "[" * 30 + "]" * 30 + "\n"), "nested", None),
    ("deep-libyaml.md", front("deep-libyaml", "d: " + "[" * 5000 + "]" * 5000 + "\n"), "nested", 5),
    (
        "deep-block.md",
        front("deep-block", "".join("  " * i + f"k{i}:\n" for i in range(40)) + "  " * 40 + "v\n"),
        "nested",
        None,
    ),
    ("alias-bomb.md", front("alias-bomb", bomb()), "more than 20000 values", None),
    ("wide.md", front("wide", "d: [" + ",".join(["a"] * 300_000) + "]\n"), "more than 20000", None),
    (
        "many-keys.md",
        front("many-keys", "".join(f"k{i}: {i}\n" for i in range(30_000))),
        "20000",
        None,
    ),
    (
        "python-apply.md",
        front("python-apply", f'x: !!python/object/apply:os.system ["touch {MARKER}"]\n'),
        "invalid YAML",
        5,
    ),
    ("python-name.md", front("python-name", "x: !!python/name:os.system\n"), "invalid YAML", 5),
    ("python-module.md", front("python-module", "x: !!python/module:os\n"), "invalid YAML", 5),
    (
        "python-object.md",
        front("python-object", "x: !!python/object:subprocess.Popen {args: [id]}\n"),
        "invalid YAML",
        5,
    ),
    ("custom-tag.md", front("custom-tag", "x: !include /etc/passwd\n"), "invalid YAML", 5),
    ("binary-tag.md", front("binary-tag", "x: !!binary aGVsbG8=\n"), "type bytes", None),
    ("set-tag.md", front("set-tag", "x: !!set {a: null}\n"), "type set", None),
    ("set-on-scalar.md", front("set-on-scalar", "x: !!set .nan\n"), "invalid YAML", 5),
    ("timestamp-tag.md", front("timestamp-tag", "x: !!timestamp 2020-01-01\n"), "type date", None),
    ("int-tag.md", front("int-tag", "quality: !!int many\n"), "cannot be read as int", 5),
    ("float-tag.md", front("float-tag", "quality: !!float x\n"), "cannot be read as float", 5),
    ("bool-tag.md", front("bool-tag", "published: !!bool maybe\n"), "cannot be read as bool", 5),
    ("time-tag.md", front("time-tag", "x: !!timestamp soon\n"), "cannot be read as timestamp", 5),
    ("nan.md", front("nan", "quality: .nan\n"), "non-finite", None),
    ("huge-number.md", front("huge-number", "quality: 1.0e+400\n"), "non-finite", None),
    ("control-char.md", front("control-char", "x: a\x07b\n"), "U+0007 is not allowed", 5),
    ("duplicate-key.md", b'---\ntitle: "a"\nexcerpt: "e"\ntitle: "b"\n---\n', "duplicate key", 4),
    (
        "duplicate-nested.md",
        front("duplicate-nested", "provider:\n  name: a\n  name: b\n"),
        "duplicate key 'name'",
        7,
    ),
    ("title-list.md", b'---\ntitle: [a, b]\nexcerpt: "e"\n---\n', "title: must be text", 2),
    ("title-number.md", b'---\ntitle: 12\nexcerpt: "e"\n---\n', "title: must be text", 2),
    ("title-empty.md", front("x").replace(b'"T"', b'"  "'), "title: is empty", 2),
    ("no-title.md", b'---\nexcerpt: "e"\nwebUrl: "https://a.example/x"\n---\n', "'title'", None),
    ("date-text.md", front("date-text", "publishedDateTime: last tuesday\n"), "ISO 8601", 5),
    ("date-bad.md", front("date-bad", "publishedDateTime: 2022-02-30T10:00:00Z\n"), "ISO", 5),
    ("date-list.md", front("date-list", "publishedDateTime: [2022]\n"), "publishedDateTime", 5),
    ("quality-text.md", front("quality-text", "quality: high\n"), "quality: must be a number", 5),
    ("quality-bool.md", front("quality-bool", "quality: yes\n"), "quality: must be a number", 5),
    ("published-text.md", front("published-text", "published: draft\n"), "true or false", 5),
    ("provider-text.md", front("provider-text", "provider: Reuters\n"), "provider", 5),
    ("images-text.md", front("images-text", "images: a.png\n"), "images", 5),
    ("topics-map.md", front("topics-map", "topics: {a: 1}\n"), "topics", 5),
    ("pins-number.md", front("pins-number", "relatedPinned: [1, 2]\n"), "relatedPinned", 5),
    ("pins-bad-url.md", front("pins-bad-url", "relatedPinned: [nope]\n"), "relatedPinned", 5),
    ("no-url.md", b'---\ntitle: "t"\nexcerpt: "e"\n---\n', "no 'webUrl' or 'originalUrl'", None),
    # Escapes YAML allows, characters no article needs: they reach terminals and pages.
    ("title-esc.md", front("title-esc").replace(b'"T"', b'"T\\e[2J"'), "U+001B", 2),
    ("title-nul.md", front("title-nul").replace(b'"T"', b'"T\\0"'), "U+0000", 2),
    ("title-tab.md", front("title-tab").replace(b'"T"', b'"T\\tx"'), "U+0009", 2),
    ("excerpt-c1.md", front("excerpt-c1").replace(b'"E"', b'"\\x9b31m"'), "U+009B", 3),
    ("excerpt-rlo.md", front("excerpt-rlo").replace(b'"E"', b'"a\\u202eb"'), "U+202E", 3),
    (
        "excerpt-raw-rli.md",
        front("excerpt-raw-rli").replace(b'"E"', '"a\u2067b"'.encode()),
        "U+2067",
        3,
    ),
    ("provider-bel.md", front("provider-bel", 'provider: {name: "a\\a"}\n'), "U+0007", 5),
    ("topics-lre.md", front("topics-lre", 'topics: ["\\u202a"]\n'), "topics[0]: holds", 5),
    (
        "image-js.md",
        front("image-js", 'images: [{url: "javascript:alert(1)"}]\n'),
        "images[0].url",
        5,
    ),
    (
        "image-data.md",
        front("image-data", "images:\n  - url: data:,x\n"),
        "not an absolute http",
        5,
    ),
    ("image-file.md", front("image-file", "images:\n  - url: file:///etc/passwd\n"), "http://", 5),
]
NOT_URLS = [
    "not a url",
    "ftp://files.example/a",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "https://",
    "//no-scheme.example/a",
    "http://[::1",
    "https://a.example:99999/x",
    "https://exa mple.com/",
    "https://a.example/\x07bell",
    "https://" + "a" * 5000 + ".example/",
]
BAD += [
    (
        f"not-url-{n}.md",
        front("x").replace(b'"https://hostile.example/x"', json.dumps(url).encode()),
        "webUrl",
        4,
    )
    for n, url in enumerate(NOT_URLS)
]
BAD += [
    (
        f"not-original-{n}.md",
        front(f"not-original-{n}", f"originalUrl: {json.dumps(url)}\n"),
        "originalUrl",
        5,
    )
    for n, url in enumerate(NOT_URLS[:4])
]

GOOD: list[tuple[str, bytes]] = [
    ("plain.md", front("plain")),
    ("bom.md", b"\xef\xbb\xbf" + front("bom")),
    ("crlf.md", front("crlf").replace(b"\n", b"\r\n")),
    ("cr-only.md", front("cr-only").replace(b"\n", b"\r")),
    (
        "mixed-endings.md",
        b'---\r\ntitle: "T"\nexcerpt: "E"\r'
        + b'webUrl: "https://hostile.example/mixed-endings"\r\n---\nBody\r\n',
    ),
    ("dots-close.md", front("dots-close").replace(b"---\nBody", b"...\nBody")),
    ("tabs.md", front("tabs").replace(b"Body.", b"\tBody\twith tabs")),
    ("merge-keys.md", front("merge-keys", "base: &b {x: 1}\nmore: {<<: [*b, *b, *b]}\n")),
    ("small-alias.md", front("small-alias", "a: &a [x, y]\nb: [*a, *a]\n")),
    ("unicode.md", front("unicode").replace(b'"E"', '"Ünïcödé 😀 \\u00e9 \u2028"'.encode())),
    ("date-only.md", front("date-only", "publishedDateTime: 2022-02-21\n")),
    ("excerpt-lines.md", front("excerpt-lines").replace(b'"E"', b'"E\\tone\\r\\ntwo\\nthree"')),
    # Right-to-left marks (not overrides) are text: they stay.
    ("marks.md", front("marks").replace(b'"E"', '"\u05e9\u05dc\u05d5\u05dd \u200f(1)"'.encode())),
    ("body-only-fences.md", front("body-only-fences").replace(b"Body.", b"---\n---\n")),
]


def write_files(folder: Path, files: list[tuple[str, bytes]]) -> None:
    for name, data in files:
        (folder / name).write_bytes(data)


def problems_by_path(corpus) -> dict[str, list]:
    out: dict[str, list] = {}
    for problem in corpus.problems:
        out.setdefault(problem.path, []).append(problem)
    return out


@pytest.mark.parametrize(("name", "data", "reason", "line"), BAD, ids=[b[0] for b in BAD])
def test_each_hostile_file_is_one_clear_problem(tmp_path, name, data, reason, line):
    write_files(tmp_path, [(name, data), ("ok.md", front("ok"))])
    corpus = read_corpus(tmp_path)
    assert [a.source for a in corpus.articles] == ["ok.md"]
    assert len(corpus.problems) == 1, corpus.problems
    problem = corpus.problems[0]
    assert problem.path == name
    assert reason in problem.reason, problem.reason
    if line is not None:
        assert problem.line == line, problem
    assert str(problem).startswith(f"{name}:")
    assert "\n" not in str(problem)


def test_tags_are_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_files(tmp_path, [b[:2] for b in BAD if b[0].startswith("python-")])
    corpus = read_corpus(tmp_path)
    assert corpus.articles == [] and len(corpus.problems) == 4
    assert not (tmp_path / MARKER).exists()
    # The loader is a safe one: the same text through it builds no Python object.
    with pytest.raises(ArticleError, match="could not determine a constructor"):
        frontmatter.load_yaml("x: !!python/object/apply:os.getcwd []")


@pytest.mark.parametrize(("name", "data"), GOOD, ids=[g[0] for g in GOOD])
def test_odd_but_valid_files_are_read(name, data):
    article = parse_article_text(data, name)
    assert article.title == "T" or name == "unicode.md"
    assert article.url == f"https://hostile.example/{Path(name).stem}"


def test_line_endings_and_bom_do_not_change_what_is_read():
    plain = parse_article_text(front("x", "provider:\n  name: P\n  domain: p.example\n"), "a.md")
    for variant in (b"\r\n", b"\r"):
        raw = front("x", "provider:\n  name: P\n  domain: p.example\n").replace(b"\n", variant)
        other = parse_article_text(b"\xef\xbb\xbf" + raw, "b.md")
        assert dict(other.fields) == dict(plain.fields)


def test_ten_megabyte_excerpt_is_refused_by_size_or_read_when_allowed(tmp_path):
    excerpt = "word " * 2_000_000
    data = (
        "---\n" + HEAD.format(name="big").replace('"E"', json.dumps(excerpt)) + "---\n"
    ).encode()
    assert len(data) > 10_000_000
    write_files(tmp_path, [("big.md", data), ("ok.md", front("ok"))])
    corpus = read_corpus(tmp_path)
    assert [a.source for a in corpus.articles] == ["ok.md"]
    assert str(corpus.problems[0]) == (
        f"big.md: file is {len(data):,} bytes; an article file may have at most 1,000,000 "
        "(RECS_MAX_FILE_BYTES)"
    )
    allowed = read_corpus(tmp_path, ReadOptions(max_file_bytes=20_000_000))
    assert len(allowed.articles) == 2 and allowed.problems == []
    assert len(allowed.articles[0].excerpt) == len(excerpt)


def test_duplicate_urls_keep_the_first_and_name_both_files(tmp_path):
    same = "https://hostile.example/same"
    write_files(
        tmp_path,
        [
            ("b.md", front("b").replace(b"https://hostile.example/b", same.encode())),
            (
                "a.md",
                front("a").replace(b"https://hostile.example/a", b"http://HOSTILE.example/same/"),
            ),
            ("c.jsonl", json.dumps({"title": "C", "excerpt": "c", "webUrl": same}).encode()),
        ],
    )
    corpus = read_corpus(tmp_path)
    assert [a.source for a in corpus.articles] == ["a.md"]
    assert sorted(str(p) for p in corpus.problems) == [
        f"b.md: same URL {same} as a.md, which is used instead",
        f"c.jsonl:1: same URL {same} as a.md, which is used instead",
    ]


# --- the file system: links, permissions, names -----------------------------------------


def test_symlink_loops_and_broken_links_are_reported(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.md").write_bytes(front("a"))
    os.symlink(tmp_path, tmp_path / "d" / "up")  # a loop through the root
    os.symlink(tmp_path / "d" / "self.md", tmp_path / "d" / "self.md")  # points at itself
    os.symlink(tmp_path / "nowhere.md", tmp_path / "broken.md")
    os.symlink("b", tmp_path / "c.md")
    os.symlink("c.md", tmp_path / "b")  # c.md -> b -> c.md
    (tmp_path / "picture.png").write_bytes(b"\x89PNG")
    os.symlink(tmp_path / "picture.png", tmp_path / "d" / "picture.png")  # not an article
    corpus = read_corpus(tmp_path)
    assert [a.source for a in corpus.articles] == ["d/a.md"]
    reasons = {p.path: p.reason for p in corpus.problems}
    assert len(corpus.problems) == len(reasons) == 5
    assert reasons.pop("d/up") == "symlink loop: directory already visited"
    assert reasons.pop("broken.md") == "broken or looping symlink"
    assert set(reasons) == {"b", "c.md", "d/self.md"}  # the OS says ELOOP or nothing at all
    assert all(r in LOOPING for r in reasons.values()), reasons


LOOPING = ("broken or looping symlink", "cannot read: Too many levels of symbolic links")


def test_unreadable_files_and_folders_are_reported(tmp_path, monkeypatch):
    """CI runs as root, whom chmod 000 does not stop: the OS errors are raised instead."""
    (tmp_path / "closed").mkdir()
    (tmp_path / "closed" / "x.md").write_bytes(front("x"))
    write_files(
        tmp_path,
        [
            ("locked.md", front("locked")),
            ("locked.jsonl", b'{"title": "j", "excerpt": "j", "webUrl": "https://j.example/"}\n'),
            ("ok.md", front("ok")),
        ],
    )
    real_open, real_scandir = open, os.scandir

    def open_(path, *args, **kwargs):
        if Path(path).name == "locked.md":
            raise PermissionError(13, "Permission denied")
        if Path(path).name == "locked.jsonl":
            raise OSError(5, "Input/output error")
        return real_open(path, *args, **kwargs)

    def scandir(path):
        if Path(path).name == "closed":
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(corpus, "open", open_, raising=False)
    monkeypatch.setattr(corpus.os, "scandir", scandir)
    found = read_corpus(tmp_path)
    assert [a.source for a in found.articles] == ["ok.md"]
    assert sorted(str(p) for p in found.problems) == [
        "closed: cannot list directory: Permission denied",
        "locked.jsonl: cannot read: Input/output error",
        "locked.md: cannot read: Permission denied",
    ]


def test_file_names_that_are_not_utf8_are_reported_not_stored(tmp_path):
    root = os.fsencode(tmp_path)
    with open(os.path.join(root, b"caf\xe9.md"), "wb") as handle:
        handle.write(front("cafe"))
    os.mkdir(os.path.join(root, b"dir\xff"))
    with open(os.path.join(root, b"dir\xff", b"x.md"), "wb") as handle:
        handle.write(front("x"))
    (tmp_path / "ok.md").write_bytes(front("ok"))
    corpus = read_corpus(tmp_path)
    assert [a.source for a in corpus.articles] == ["ok.md"]
    assert sorted(str(p) for p in corpus.problems) == [
        "caf\ufffd.md: the name is not valid UTF-8; rename it",
        "dir\ufffd: the name is not valid UTF-8; rename it",
    ]
    build(tmp_path, tmp_path / ".store", HashingEncoder(), RankSettings())
    assert len(store.load(tmp_path / ".store")) == 1


# --- .jsonl ------------------------------------------------------------------------------


def test_jsonl_bad_lines_are_reported_and_good_lines_kept(tmp_path):
    good = {"title": "G", "excerpt": "g", "webUrl": "https://j.example/g"}
    lines = [
        json.dumps(good).encode(),
        b"{not json",
        b"[1, 2]",
        json.dumps({**good, "title": ["x"], "webUrl": "https://j.example/t"}).encode(),
        b'{"title": "s\\ud800", "excerpt": "e", "webUrl": "https://j.example/s"}',
        b"\xff\xfe",
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps(
            {
                **good,
                "webUrl": "https://j.example/d",
                "x": [[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]],
            }
        ).encode(),
        b"",
        json.dumps({**good, "webUrl": "https://j.example/last"}).encode(),
    ]
    (tmp_path / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines))
    corpus = read_corpus(tmp_path)
    assert [(a.url, a.line) for a in corpus.articles] == [
        ("https://j.example/g", 1),
        ("https://j.example/last", 10),
    ]
    reasons = {p.line: p.reason for p in corpus.problems}
    assert set(reasons) == {2, 3, 4, 5, 6, 7, 8}
    assert reasons[2].startswith("invalid JSON")
    assert "must be a mapping" in reasons[3]
    assert reasons[4].startswith("title: must be text")
    assert "lone surrogate" in reasons[5]
    assert "not UTF-8" in reasons[6]
    assert "nest" in reasons[7] or "invalid JSON" in reasons[7]
    assert "nested more than 20" in reasons[8]


def test_jsonl_is_read_one_bounded_line_at_a_time(tmp_path):
    limit = 64 * 1024
    huge = b'{"title": "h", "excerpt": "' + b"x" * 8_000_000 + b'"}'
    ok = b'{"title": "o", "excerpt": "o", "webUrl": "https://j.example/o"}'
    (tmp_path / "big.jsonl").write_bytes(ok + b"\n" + huge + b"\n" + ok.replace(b"/o", b"/p"))
    tracemalloc.start()
    try:
        corpus = read_corpus(tmp_path, ReadOptions(max_file_bytes=limit))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [a.line for a in corpus.articles] == [1, 3]
    assert [str(p) for p in corpus.problems] == [
        f"big.jsonl:2: line is {len(huge) + 1:,} bytes; an article may have at most "
        f"{limit:,} (RECS_MAX_FILE_BYTES)"
    ]
    assert peak < 2_000_000  # the 8 MB line was never held


def test_a_jsonl_of_garbage_lists_a_hundred_problems_then_counts(tmp_path):
    (tmp_path / "junk.jsonl").write_bytes(b"nope\n" * 50_000)
    corpus = read_corpus(tmp_path)
    assert len(corpus.problems) == 101
    assert str(corpus.problems[-1]) == "junk.jsonl: 49,900 more bad lines (not listed)"


# --- memory -------------------------------------------------------------------------------


def test_a_million_item_list_is_refused_before_it_is_built():
    """1 MB of `[a,a,a,...]` would be about 150 MB of Python objects once loaded."""
    data = front("wide", "d: [" + ",".join(["a"] * 490_000) + "]\n")
    assert len(data) < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(ArticleError, match="more than 20000 values"):
            parse_article_text(data, "wide.md")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12_000_000


# --- the whole corpus ---------------------------------------------------------------------


def hostile_corpus(folder: Path) -> Path:
    folder.mkdir()
    write_files(folder, [b[:2] for b in BAD] + GOOD)
    (folder / "huge.md").write_bytes(b"---\ntitle: t\nexcerpt: " + b"x" * 10_500_000 + b"\n---\n")
    (folder / "d").mkdir()
    (folder / "d" / "article.md").write_bytes(front("d-article"))
    os.symlink(folder, folder / "d" / "loop")
    (folder / "lines.jsonl").write_bytes(
        b"\n".join([b"[" * 200_000, b"x" * 40_000_000, b"{}"] + [b"nope"] * 1000)
    )
    return folder


def test_a_hostile_corpus_builds_what_it_can(tmp_path, capsys):
    content = hostile_corpus(tmp_path / "content")
    snapshot, report = build(content, tmp_path / "store", HashingEncoder(), RankSettings())
    assert sorted(a.source for a in snapshot.articles) == sorted(
        [g[0] for g in GOOD] + ["d/article.md"]
    )
    named = {p.path for p in report.problems}
    assert named == {b[0] for b in BAD} | {"huge.md", "d/loop", "lines.jsonl"}
    # The CLI: one line per problem, one summary line, exit 0, no traceback.
    code = main(["build", str(content), "--store", str(tmp_path / "cli"), "--model", "hashing"])
    out, err = capsys.readouterr()
    assert code == 0
    assert out.count("\n") == 1 and f"{len(GOOD) + 1} articles" in out
    lines = err.splitlines()
    assert all(line.startswith("skipped ") for line in lines)
    assert len(lines) == len(report.problems)
    assert len(store.load(tmp_path / "cli")) == len(GOOD) + 1


PEAK_RSS = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(done.returncode, peak, done.stderr.count("skipped "), "Traceback" in done.stderr)
"""


def peak_rss(command: list[str], env: dict[str, str]) -> tuple[int, int, int, bool]:
    """Exit code, peak RSS in bytes, skipped lines and traceback of a command, measured in a
    fresh parent so no earlier child of the test process counts."""
    out = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout.split()
    return int(out[0]), int(out[1]), int(out[2]), out[3] == "True"


# Over the same build of the clean files alone. Measured: about 1 MiB. Without the
# streaming checks the 1 MB flat list alone costs about 87 MiB and the 40 MB .jsonl line 60.
MEMORY_BOUND = 32 * 1024 * 1024


@pytest.mark.e2e
def test_recs_build_memory_stays_bounded_on_a_hostile_corpus(tmp_path):
    """Peak RSS of `recs build` over the hostile corpus (a 10 MB file, a 600 kB flat list of
    300,000 items, an alias bomb, a 40 MB .jsonl line, ...) stays within MEMORY_BOUND of the
    same build over its clean files alone (docs/reliability.md states the bound)."""
    hostile = hostile_corpus(tmp_path / "hostile")
    clean = tmp_path / "clean"
    clean.mkdir()
    write_files(clean, GOOD)
    (clean / "article.md").write_bytes(front("d-article"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env.update(RECS_MODEL="hashing", RECS_MAX_FILE_BYTES=str(2_000_000))
    recs = str(BIN / "recs")
    base = peak_rss([recs, "build", str(clean), "--store", str(tmp_path / "s1")], env)
    bad = peak_rss([recs, "build", str(hostile), "--store", str(tmp_path / "s2")], env)
    assert base[0] == bad[0] == 0 and not base[3] and not bad[3]
    assert bad[2] == len(read_corpus(hostile, ReadOptions(max_file_bytes=2_000_000)).problems)
    print(f"peak RSS: clean {base[1] / 2**20:.0f} MiB, hostile {bad[1] / 2**20:.0f} MiB")
    assert bad[1] - base[1] < MEMORY_BOUND


# --- generated inputs -------------------------------------------------------------------

TOKENS = [
    *("title: ", "excerpt: ", "webUrl: ", "originalUrl: ", "publishedDateTime: ", "quality: "),
    *("provider: ", "images: ", "topics: ", "relatedPinned: ", "published: ", "related: "),
    *("name: ", "url: ", "&a ", "*a", "&b ", "*b", "<<: ", "? ", "- ", "-", ": ", ":", ","),
    *("!!python/object/apply:os.system ", "!!python/name:os.system ", "!!binary ", "!!set "),
    *("!!timestamp ", "!!float ", "!!int ", "!!bool ", "!!str ", "!!omap ", "!custom "),
    *("%YAML 1.1\n", "%TAG ! tag:x,2000:\n", ".nan", ".inf", "1e400", "0x1F", "2020-13-01"),
    *("2022-02-21T03:37:00Z", "https://a.example/x", "http://[::1", "mailto:x", "yes", "~"),
    *("12", "-3.5", "[", "]", "{", "}", "|", ">-", "'", '"', "\\", "\\ud800", "#", "...", "---"),
    *("\n", "\n  ", "\n    ", "  ", "\t", "\r\n", "\r", "\ufeff", "\x00", "\x85", "\u2028"),
    *("é", "😀", "\x1b", "%", "x"),
]
yaml_soup = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
fields = st.dictionaries(
    st.sampled_from(
        [
            *("title", "excerpt", "webUrl", "originalUrl", "publishedDateTime", "quality"),
            *("provider", "images", "topics", "relatedPinned", "relatedExclude", "published"),
            *("type", "related"),
        ]
    ),
    json_values,
    max_size=6,
)
ENTRY = {"title": 'R "q" é', "excerpt": "x: y # z", "webUrl": "https://r.example/1", "quality": 5}


def usable(article: Article) -> None:
    """What the rest of recs relies on for every accepted article."""
    assert isinstance(article.title, str) and article.title.strip()
    assert isinstance(article.excerpt, str)
    json.dumps(dict(article.fields), ensure_ascii=False).encode("utf-8")  # the store's form
    assert len(article.text_hash) == 32
    article.entry()


def parses_or_says_why(raw: bytes) -> Article | None:
    try:
        article = parse_article_text(raw, "f.md")
    except ArticleError as error:
        assert error.reason and "\n" not in error.reason.strip()
        return None
    usable(article)
    return article


fuzz = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fuzz
@given(
    yaml_soup,
    yaml_soup,
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.sampled_from(["---", "...", ""]),
    st.binary(max_size=8),
)
def test_generated_front_matter_never_crashes_and_rewrites_safely(before, after, nl, close, junk):
    required = nl.join(['title: "t"', 'excerpt: "e"', 'webUrl: "https://a.example/x"'])
    text = "---" + nl + before + nl + required + nl + after + nl + close + nl + "body"
    raw = text.encode("utf-8", "surrogatepass") + junk
    article = parses_or_says_why(raw)
    if article is None:
        return
    # What regenerate does with it: a block replaced, or the file reported; never damaged.
    try:
        new = rewrite(raw, [ENTRY])
    except RewriteError:
        return
    again = parse_article_text(new, "f.md")
    assert again.fields == article.fields and "related" not in again.fields
    assert read_front_matter(new)["related"] == [ENTRY]


@fuzz
@given(st.binary(max_size=400), st.sampled_from([b"", b"---\n", b"\xef\xbb\xbf---\r\n"]))
def test_generated_bytes_never_crash(body, head):
    raw = head + body
    parses_or_says_why(raw)
    parses_or_says_why(raw + b"\n---\n")
    good, bad = parse_jsonl(raw, "f.jsonl")
    for article in good:
        usable(article)
    assert all(p.path == "f.jsonl" and p.reason for p in bad)


@fuzz
@given(fields)
def test_generated_wrong_types_are_refused_or_usable(extra):
    data = {"title": "t", "excerpt": "e", "webUrl": "https://a.example/x", **extra}
    as_yaml = "---\n" + yaml.safe_dump(data, allow_unicode=True) + "---\n"
    parses_or_says_why(as_yaml.encode("utf-8", "surrogatepass"))
    good, bad = parse_jsonl(json.dumps(data).encode(), "f.jsonl")
    assert len(good) + len(bad) == 1
    for article in good:
        usable(article)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(st.sampled_from([".md", ".jsonl", ".txt"]), st.binary(max_size=200)), max_size=8
    )
)
def test_generated_folders_account_for_every_file(tmp_path_factory, files):
    folder = tmp_path_factory.mktemp("gen")
    names = []
    for number, (suffix, data) in enumerate(files):
        name = f"f{number}{suffix}"
        head = front(f"f{number}") if number % 2 else b""
        (folder / name).write_bytes(head + data)
        names.append(name)
    corpus = read_corpus(folder)
    accounted = {a.source for a in corpus.articles} | {p.path for p in corpus.problems}
    assert {n for n in names if not n.endswith(".jsonl")} <= accounted
    for article in corpus.articles:
        usable(article)
