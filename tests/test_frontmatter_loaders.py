"""Front matter of three kinds: found by the opening fence, loaded to the same shapes under
the same limits."""

from __future__ import annotations

import pytest

from recs.corpus import parse_article_text, read_front_matter
from recs.frontmatter import MAX_DEPTH, MAX_NODES, ArticleError, find_front_matter
from recs.frontmatter_loaders import load_front_matter, load_json, load_toml

YAML = b'---\ntitle: "T"\nexcerpt: "E"\nwebUrl: "https://a.example/x"\ndate: 2024-01-05\n---\nB\n'
TOML = (
    b'+++\ntitle = "T"\nexcerpt = "E"\nwebUrl = "https://a.example/x"\ndate = 2024-01-05\n+++\nB\n'
)
JSON = (
    b'{\n  "title": "T",\n  "excerpt": "E",\n  "webUrl": "https://a.example/x",\n'
    b'  "date": "2024-01-05"\n}\nB\n'
)


@pytest.mark.parametrize(("raw", "kind"), [(YAML, "yaml"), (TOML, "toml"), (JSON, "json")])
def test_each_kind_is_found_by_its_opening_and_reads_the_same(raw, kind):
    text = raw.decode()
    fm = find_front_matter(text)
    assert fm.kind == kind
    assert text[fm.body :] == "B\n"
    assert read_front_matter(raw) == {
        "title": "T",
        "excerpt": "E",
        "webUrl": "https://a.example/x",
        "date": "2024-01-05",
    }
    article = parse_article_text(raw, "x.md")
    assert (article.title, article.excerpt, article.url) == ("T", "E", "https://a.example/x")
    assert article.fields["publishedDateTime"] == "2024-01-05"


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_toml_fences_with_crlf_and_cr(newline):
    text = f'+++{newline}title = "T"{newline}+++{newline}body'
    fm = find_front_matter(text)
    assert fm.kind == "toml" and text[fm.body :] == "body"
    assert load_front_matter(text, fm) == {"title": "T"}


def test_json_front_matter_ends_at_its_closing_brace_whatever_the_strings_hold():
    text = '{"title": "a } b { c", "n": {"x": "}"}}\nbody {with} braces\n'
    fm = find_front_matter(text)
    assert text[fm.body :] == "body {with} braces\n"
    assert load_front_matter(text, fm) == {"title": "a } b { c", "n": {"x": "}"}}


def test_toml_dates_and_times_become_their_iso_text():
    data = load_toml(
        "a = 1979-05-27T07:32:00Z\nb = 1979-05-27T00:32:00-07:00\nc = 1979-05-27\n"
        "d = 07:32:00\ne = 1979-05-27T07:32:00\n[t]\nf = [2024-01-01]\n"
    )
    assert data == {
        "a": "1979-05-27T07:32:00Z",
        "b": "1979-05-27T00:32:00-07:00",
        "c": "1979-05-27",
        "d": "07:32:00",
        "e": "1979-05-27T07:32:00",
        "t": {"f": ["2024-01-01"]},
    }


@pytest.mark.parametrize(
    ("raw", "reason", "line"),
    [
        (b'+++\ntitle = "T"\ntitle = "U"\n+++\n', "set twice", None),
        (b'+++\ntitle = "T"\nexcerpt = \n+++\n', "invalid TOML", 3),
        (b'+++\ntitle = "T"\n', "never closed", 1),
        (b'{"title": "T", "title": "U"}\n', "duplicate key 'title'", None),
        (b'{"title": "T",\n "n": NaN}\n', "NaN is not a number", None),
        (b'{"title": "T",\n "n": }\n', "invalid JSON", 2),
        (b'{"title": "T"\n', "never closed", 1),
        (b'{"title": "T", "excerpt": "E", "x": 1e999}\n', "non-finite", None),
        (b'+++\ntitle = "T"\nx = inf\n+++\n', "non-finite", None),
        (b"+++\nx = " + b"9" * 5000 + b"\n+++\n", "invalid TOML", None),
        (b'{"x": ' + b"9" * 5000 + b"}\n", "invalid JSON", None),
        (b"[1, 2]\n", "no front matter", 1),
    ],
)
def test_bad_toml_and_json_are_one_clear_problem(raw, reason, line):
    with pytest.raises(ArticleError) as error:
        parse_article_text(raw, "bad.md")
    assert reason in error.value.reason
    if line is not None:
        assert error.value.line == line


@pytest.mark.parametrize("loader", [load_toml, load_json])
def test_depth_and_size_limits_hold_for_toml_and_json(loader):
    deep = "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)
    with pytest.raises(ArticleError, match="nested more than"):
        loader(f"x = {deep}\n" if loader is load_toml else f'{{"x": {deep}}}')
    for brackets in (9_000, 100_000):  # past Python's recursion limit; past the value count
        very_deep = "[" * brackets + "]" * brackets
        with pytest.raises(ArticleError, match="more than"):
            loader(f"x = {very_deep}\n" if loader is load_toml else f'{{"x": {very_deep}}}')
    wide = ", ".join(["1"] * (MAX_NODES * 3))
    with pytest.raises(ArticleError, match="more than"):
        loader(f"x = [{wide}]\n" if loader is load_toml else f'{{"x": [{wide}]}}')


def test_a_wide_but_allowed_front_matter_is_read():
    text = ", ".join(f'"{n}, {n}"' for n in range(MAX_NODES // 2))  # commas inside strings
    assert len(load_toml(f"x = [{text}]\n")["x"]) == MAX_NODES // 2
    assert len(load_json(f'{{"x": [{text}]}}')["x"]) == MAX_NODES // 2


def test_a_wrong_type_in_toml_names_the_key_and_its_line():
    raw = (
        b'+++\ntitle = "T"\nexcerpt = "E"\nwebUrl = "https://a.example/x"\nquality = "high"\n+++\n'
    )
    with pytest.raises(ArticleError) as error:
        parse_article_text(raw, "q.md")
    assert error.value.reason.startswith("quality: must be a number")
    assert error.value.line == 5
